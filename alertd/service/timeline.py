"""Timeline events, outbox rows and security events: the writes every workflow shares.

A workflow collects its events and messages in a `Batch` and writes them with `flush` just before its
transaction commits: one statement and one wake-up, however many dispatches it made.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import asyncpg

from alertd.store import queries

# The messages of the work running in this context go to this instance's own outbox sender (see `leasing`).
_LEASING: ContextVar[tuple[float, list] | None] = ContextVar("alertd_outbox_leasing", default=None)


@contextlib.contextmanager
def leasing(lease_s: float | None) -> Iterator[list]:
    """Within: every batch flushed inserts its outbox messages leased for lease_s to this instance's own sender, and
    adds their rows to the list yielded, for the caller to hand over once its transaction has committed (and to
    drop if it rolled back). With lease_s None, messages are queued for any instance's claim, as outside."""
    leased: list = []
    token = _LEASING.set((lease_s, leased) if lease_s is not None else None)
    try:
        yield leased
    finally:
        _LEASING.reset(token)


# Every responder gets the console; a responder with a phone also gets SMS; a unit with a terminal, MQTT.
CONSOLE, SMS, LOG = "console", "sms", "log"
MQTT = "mqtt"


def channels_for(contacts) -> list[str]:
    """The channels a responder can be reached on, from its contacts (phone, has_terminal)."""
    channels = [CONSOLE]
    if contacts is not None and contacts["phone"]:
        channels.append(SMS)
    if contacts is not None and contacts["has_terminal"]:
        channels.append(MQTT)
    return channels


@dataclass
class Batch:
    """The timeline events and outbox messages of one transaction, written together by `flush`."""

    now: datetime
    events: list[tuple] = field(default_factory=list)
    messages: list[tuple] = field(default_factory=list)

    def event(self, alert_id, type_: str, *, dispatch_id=None, responder_id: str | None = None,
              actor: str | None = None, **data: Any) -> None:
        self.events.append((alert_id, self.now, type_, dispatch_id, responder_id, actor, data))

    def message(self, channel: str, recipient: str, template: str, payload: dict[str, Any], *, alert_id=None,
                dispatch_id=None) -> None:
        self.messages.append((channel, recipient, template, payload, alert_id, dispatch_id))

    def tell(self, contacts, template: str, payload: dict[str, Any], *, alert_id=None, dispatch_id=None) -> None:
        """A message to a responder on each of its channels; `contacts` has id, phone, language, has_terminal."""
        body = {**payload, "language": contacts["language"] or "ru"}
        for channel in channels_for(contacts):
            self.message(channel, contacts["id"], template, body, alert_id=alert_id, dispatch_id=dispatch_id)

    def tell_supervisor(self, region: str | None, template: str, payload: dict[str, Any], *, alert_id=None,
                        dispatch_id=None) -> None:
        """A notice to the supervisors of a region (their console, and the log)."""
        for channel in (CONSOLE, LOG):
            self.message(channel, f"supervisor:{region or 'unknown'}", template, payload, alert_id=alert_id,
                         dispatch_id=dispatch_id)

    async def flush(self, conn: asyncpg.Connection) -> None:
        """Write what was collected, in one statement (NOTIFY to every console happens in the events' trigger);
        within `leasing`, its messages are leased to this instance's sender."""
        if self.events or self.messages:
            self.written(await conn.fetch(queries.write_timeline_and_outbox, self.now, *self.columns()))

    def columns(self) -> list:
        """write_timeline_and_outbox's parameters after its first (`now`): the events' columns, the messages'
        columns and the lease; for a statement that writes them with other rows (intake's insert_alerts)."""
        lease = _LEASING.get()
        return [*_columns(self.events, 7), *_columns(self.messages, 6), lease[0] if lease else None]

    def written(self, rows: list) -> None:
        """The statement that was given `columns` ran: its leased messages (rows with an outbox id) join the
        caller's `leasing` list, and the batch is empty again."""
        if (lease := _LEASING.get()) is not None:
            lease[1].extend(row for row in rows if row["id"] is not None)
        self.events.clear()
        self.messages.clear()


def _columns(rows: list[tuple], width: int) -> list[list]:
    """Rows as columns (unnest's arrays); no rows: `width` empty columns."""
    return [list(column) for column in zip(*rows, strict=True)] if rows else [[] for _ in range(width)]


async def event(conn: asyncpg.Connection, alert_id, at: datetime, type_: str, *, dispatch_id=None,
                responder_id: str | None = None, actor: str | None = None, **data: Any) -> None:
    """Append one event to an alert's timeline now."""
    batch = Batch(at)
    batch.event(alert_id, type_, dispatch_id=dispatch_id, responder_id=responder_id, actor=actor, **data)
    await batch.flush(conn)


async def tell_responder(conn: asyncpg.Connection, now: datetime, responder_id: str, template: str,
                         payload: dict[str, Any], *, alert_id=None, dispatch_id=None) -> None:
    """Queue a message to a responder on each channel it can be reached by."""
    contacts = await conn.fetchrow(queries.get_responder_contacts, responder_id)
    if contacts is None:
        return
    batch = Batch(now)
    batch.tell(contacts, template, payload, alert_id=alert_id, dispatch_id=dispatch_id)
    await batch.flush(conn)


async def tell_supervisor(conn: asyncpg.Connection, now: datetime, region: str | None, template: str,
                          payload: dict[str, Any], *, alert_id=None, dispatch_id=None) -> None:
    """Queue a notice to the supervisors of a region (their console, and the log)."""
    batch = Batch(now)
    batch.tell_supervisor(region, template, payload, alert_id=alert_id, dispatch_id=dispatch_id)
    await batch.flush(conn)


async def security_event(conn: asyncpg.Connection, at: datetime, kind: str, source: str,
                         **detail: Any) -> int | None:
    """Record refused input: what was refused and from which channel, never a survivor's details.

    At most one event per source and kind per minute (an episode): the first refusal is an event with its
    detail, the next ones in that minute only count on it (`refusals`, `last_at`), so a flood of refusals is
    one row, not one per request. Returns the event's id (None only if that event was purged meanwhile)."""
    episode = await conn.fetchrow(queries.open_refusal_episode, at, kind, source)
    # A statement of its own, after the episode's row lock: it sees the event a concurrent refusal just committed.
    if episode["new"]:
        await conn.execute(queries.insert_refusal_event, episode["event_id"], at, kind, source, detail)
        return episode["event_id"]
    return await conn.fetchval(queries.count_refusal, episode["event_id"], at)
