"""Timeline events, outbox rows and security events: the writes every workflow shares."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import asyncpg

from alertd.store import queries

# Every responder gets the console; a responder with a phone also gets SMS.
CONSOLE, SMS, LOG = "console", "sms", "log"
MQTT = "mqtt"  # a mobile unit's terminal


async def event(conn: asyncpg.Connection, alert_id, at: datetime, type_: str, *, dispatch_id=None,
                responder_id: str | None = None, actor: str | None = None, **data: Any) -> int:
    """Append one event to an alert's timeline (NOTIFY to every console happens in the trigger)."""
    return await conn.fetchval(queries.insert_event, alert_id, at, type_, dispatch_id, responder_id, actor, data)


async def tell_responder(conn: asyncpg.Connection, now: datetime, responder_id: str, template: str,
                         payload: dict[str, Any], *, alert_id=None, dispatch_id=None) -> None:
    """Queue a message to a responder on each channel it can be reached by."""
    contacts = await conn.fetchrow(queries.responder_contacts, responder_id)
    channels = [CONSOLE]
    if contacts and contacts["phone"]:
        channels.append(SMS)
    if contacts and contacts["has_terminal"]:
        channels.append(MQTT)
    for channel in channels:
        await conn.execute(queries.insert_outbox, channel, responder_id, template,
                           {**payload, "language": contacts["language"] if contacts else "ru"},
                           alert_id, dispatch_id, now)
    await conn.execute(queries.notify_wake, "outbox")


async def tell_supervisor(conn: asyncpg.Connection, now: datetime, region: str | None, template: str,
                          payload: dict[str, Any], *, alert_id=None, dispatch_id=None) -> None:
    """Queue a notice to the supervisors of a region (their console, and the log)."""
    recipient = f"supervisor:{region or 'unknown'}"
    for channel in (CONSOLE, LOG):
        await conn.execute(queries.insert_outbox, channel, recipient, template, payload, alert_id,
                           dispatch_id, now)


async def security_event(conn: asyncpg.Connection, at: datetime, kind: str, source: str,
                         **detail: Any) -> int:
    """Record refused input: what was refused and from which channel, never a survivor's details."""
    return await conn.fetchval(queries.insert_security_event, at, kind, source, detail)
