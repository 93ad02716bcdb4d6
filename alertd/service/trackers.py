"""What a GPS tracker's event does (trackers reach alertd through a gateway such as Traccar): an SOS raises her
alert through the core, once per gateway event id; a position of a tracker whose person has an open alert joins
its trail. Each call is one transaction (or none), committed before the caller answers."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import asyncpg

from alertd.context import Context
from alertd.core.model import Conflict, Location
from alertd.service import intake
from alertd.service.gateways import Gateway
from alertd.service.timeline import Batch, security_event
from alertd.store import queries

CHANNEL = "traccar"


@dataclass(frozen=True)
class Sos:
    """An SOS alarm as a channel hands it over: which tracker, when, where (if known), the gateway's event id."""

    unique_id: str
    event_id: int | None  # None: the gateway gave none (nothing to de-duplicate on)
    triggered_at: datetime
    location: Location | None
    details: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Outcome:
    """`made` is created, joined, duplicate, location (a fix added to her open alert) or ignored (`reason`)."""

    made: str
    alert_id: str | None = None
    reason: str | None = None


def _source(gateway: Gateway) -> str:
    return f"{CHANNEL}:{gateway.name}"


async def _tracker(conn: asyncpg.Connection, gateway: Gateway, unique_id: str):
    """The tracker's row if this gateway may speak for it and it is in use; otherwise None, with why."""
    row = await conn.fetchrow(queries.get_tracker_for_event, unique_id, gateway.id)
    if row is None:
        return None, "unknown"
    if row["removed_at"] is not None:
        return None, "removed"
    if row["other_gateway"]:
        return None, "other_gateway"
    return row, None


async def receive_sos(pool: asyncpg.Pool, ctx: Context, gateway: Gateway, sos: Sos) -> Outcome:
    """Her alert for an SOS: created, or joined to her open one as a repeat; the same gateway event again is a
    `duplicate` answered with the same alert, and changes nothing. An SOS from a tracker nobody added (or one
    removed, or bound to another gateway) raises nothing: it is recorded as a security event and told to the
    supervisors, who can find out whose tracker it is."""
    async with pool.acquire() as conn:
        tracker, why = await _tracker(conn, gateway, sos.unique_id)
        now = ctx.clock.now()
        if tracker is None:
            async with conn.transaction():
                await _unknown_tracker(conn, now, gateway, sos, why)
            return Outcome("ignored", reason="unknown_tracker")
        async with conn.transaction():
            # The claim comes first: a second copy of this event waits here for the first one's commit.
            if sos.event_id is not None and await conn.fetchval(
                    queries.claim_traccar_event, gateway.id, sos.event_id, sos.unique_id, now) is None:
                row = await conn.fetchrow(queries.get_traccar_event_alert, gateway.id, sos.event_id)
                return Outcome("duplicate", str(row["alert_id"]))
            details: dict[str, Any] = {"gateway": gateway.name, **sos.details}
            if sos.event_id is not None:
                details["gateway_event_id"] = sos.event_id
            raised = (await intake.create_alerts(conn, ctx, now, [intake.NewAlert(
                person_id=tracker["person_id"], device_id=None, channel=CHANNEL, client_alert_id=None,
                triggered_at=sos.triggered_at, location=sos.location, details=details)]))[0]
            if sos.event_id is not None:
                await conn.execute(queries.set_traccar_event_alert, gateway.id, sos.event_id,
                                   uuid.UUID(raised.alert_id))
        return Outcome(raised.made, raised.alert_id)


async def _unknown_tracker(conn: asyncpg.Connection, now: datetime, gateway: Gateway, sos: Sos, why: str) -> None:
    """Record an SOS nobody's tracker sent: a security event, and a notice to the duty desk (no location)."""
    unique_id = sos.unique_id[:128]
    await security_event(conn, now, "unknown_tracker", _source(gateway), unique_id=unique_id, why=why,
                         event_id=sos.event_id)
    batch = Batch(now)
    batch.tell_supervisor(None, "tracker_unknown", {"gateway": gateway.name, "unique_id": unique_id, "why": why})
    await batch.flush(conn)


async def add_position(pool: asyncpg.Pool, ctx: Context, gateway: Gateway, unique_id: str,
                       fix: Location) -> Outcome:
    """A tracker's position joins her open alert's trail (as a phone's fix does); without an open alert (or for a
    tracker nobody added) it is ignored: a tracker's everyday whereabouts are never kept."""
    async with pool.acquire() as conn:
        tracker, _why = await _tracker(conn, gateway, unique_id)
    if tracker is None:
        return Outcome("ignored", reason="unknown_tracker")
    if tracker["open_alert_id"] is None:
        return Outcome("ignored", reason="no_open_alert")
    try:
        added = await intake.add_locations(pool, ctx, alert_id=str(tracker["open_alert_id"]),
                                           person_id=tracker["person_id"], fixes=[fix], source=_source(gateway))
    except Conflict:  # closed a moment ago
        return Outcome("ignored", reason="no_open_alert")
    return Outcome("location", added["alert_id"])
