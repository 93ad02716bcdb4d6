"""What duty officers do: list their dispatches, acknowledge, update status, read an alert (audited)."""

from __future__ import annotations

import uuid

import asyncpg

from alertd.context import Context
from alertd.core.model import ACTIVE_DISPATCH, OFFICER_STATUSES, Conflict, Dispatch, Invalid, Location, NotFound
from alertd.service import places
from alertd.service.timeline import event, security_event, tell_responder
from alertd.store import queries

# Which status may follow which; an expired dispatch may still be acknowledged (late).
_NEXT = {
    "acknowledged": {"pending", "expired"},
    "en_route": {"pending", "expired", "acknowledged"},
    "on_scene": {"pending", "expired", "acknowledged", "en_route"},
    "resolved": {"pending", "expired", "acknowledged", "en_route", "on_scene"},
}


class InactiveDispatch(Conflict):
    """A dispatch nobody can act on any more: resolved, cancelled, or expired on an alert that is closed."""


def _in_play(alert, dispatch) -> bool:
    """Active, or expired while her alert is still open or unanswered (a late ack is still someone coming)."""
    return dispatch["status"] in ACTIVE_DISPATCH or (
        dispatch["status"] == "expired" and alert["status"] in ("open", "unanswered"))


def _uuid(value: str, what: str):
    try:
        return uuid.UUID(value)
    except ValueError:
        raise NotFound(f"no such {what}") from None


async def list_dispatches(pool: asyncpg.Pool, responder_id: str, status: str | None, limit: int = 200) -> list[dict]:
    async with pool.acquire() as conn:
        rows = await conn.fetch(queries.list_responder_dispatches, responder_id, status, limit)
    items = []
    for row in rows:
        dispatch = Dispatch.from_row(row)
        item = dispatch.as_json()
        item.update(place=places.console_place(row, dispatch.location), priority=row["priority"], duress=row["duress"], alert_status=row["alert_status"],
                    broadcast=row["broadcast"], created_at=row["created_at"].isoformat(), channel=row["channel"],
                    person_id=row["person_id"], repeats=row["repeats"], drill=row["drill"])
        items.append(item)
    return items


async def _lock(conn: asyncpg.Connection, dispatch_id: str, responder_id: str | None):
    """Lock the alert, then the dispatch (the one lock order every writer uses)."""
    key = _uuid(dispatch_id, "dispatch")
    alert_id = await conn.fetchval(queries.get_dispatch_alert_id, key)
    if alert_id is None:
        raise NotFound("no such dispatch")
    alert = await conn.fetchrow(queries.lock_alert, alert_id)
    dispatch = await conn.fetchrow(queries.lock_dispatch, key, responder_id)
    if dispatch is None:
        raise NotFound("no such dispatch")
    return alert, dispatch


async def acknowledge(pool: asyncpg.Pool, ctx: Context, dispatch_id: str, *, responder_id: str | None,
                      actor: str, via: str = "api") -> dict:
    """Acknowledge a dispatch; after its deadline it is still accepted, and recorded as late."""
    return await set_status(pool, ctx, dispatch_id, "acknowledged", responder_id=responder_id, actor=actor, via=via)


async def set_status(pool: asyncpg.Pool, ctx: Context, dispatch_id: str, status: str, *, responder_id: str | None,
                     actor: str, note: str | None = None, via: str = "api", in_play_only: bool = False) -> dict:
    """Move a dispatch on; in_play_only refuses (InactiveDispatch) a change to a dispatch no longer in play."""
    if status not in ("acknowledged", *OFFICER_STATUSES):
        raise Invalid(f"status must be one of acknowledged, {', '.join(OFFICER_STATUSES)}")
    async with pool.acquire() as conn, conn.transaction():
        now = ctx.clock.now()
        alert, d = await _lock(conn, dispatch_id, responder_id)
        if d["status"] == status:
            return await _dispatch_json(conn, d["id"])
        if in_play_only and not _in_play(alert, d):
            raise InactiveDispatch(f"dispatch is {d['status']}, alert is {alert['status']}")
        if d["status"] not in _NEXT[status]:
            raise Conflict(f"dispatch is {d['status']}")
        first_ack = d["acknowledged_at"] is None
        if first_ack:
            late = d["status"] == "expired" or now > d["ack_deadline"]
            await conn.execute(queries.ack_dispatch, d["id"], now, late)
            await event(conn, d["alert_id"], now, "late_ack" if late else "acknowledged", dispatch_id=d["id"],
                        responder_id=d["responder_id"], actor=actor, via=via,
                        seconds=round((now - d["ack_deadline"]).total_seconds(), 3))
            for sibling in await conn.fetch(queries.cancel_broadcast_siblings, d["alert_id"], d["kind"], now):
                await tell_responder(conn, now, sibling["responder_id"], "stand_down", {"code": sibling["code"]},
                                     alert_id=d["alert_id"], dispatch_id=sibling["id"])
            if alert["status"] == "unanswered":
                await conn.execute(queries.set_alert_status, d["alert_id"], "open", now)
        if status != "acknowledged":
            await conn.execute(queries.set_dispatch_status, d["id"], status, note, now)
            await event(conn, d["alert_id"], now, "status", dispatch_id=d["id"], responder_id=d["responder_id"],
                        actor=actor, status=status, note=note, via=via)
        if status == "resolved":
            await _resolve_alert_if_done(conn, now, d["alert_id"], actor)
        return await _dispatch_json(conn, d["id"])


async def _resolve_alert_if_done(conn: asyncpg.Connection, now, alert_id, actor: str) -> None:
    """The alert is resolved once a responder resolved it and nobody is still on the way or waiting to answer."""
    dispatches = await conn.fetch(queries.list_alert_dispatches, alert_id)
    if any(d["status"] in ACTIVE_DISPATCH for d in dispatches):
        return
    await conn.execute(queries.set_alert_status, alert_id, "resolved", now)
    await event(conn, alert_id, now, "resolved", actor=actor)


async def _dispatch_json(conn: asyncpg.Connection, dispatch_id) -> dict:
    alert_id = await conn.fetchval(queries.get_dispatch_alert_id, dispatch_id)
    for row in await conn.fetch(queries.list_alert_dispatches, alert_id):
        if row["id"] == dispatch_id:
            return Dispatch.from_row(row).as_json()
    raise NotFound("no such dispatch")


# What a malformed alert id is looked up as: no alert has it, so it costs what a random id costs.
_NO_ALERT = uuid.UUID(int=0)


async def get_alert(pool: asyncpg.Pool, ctx: Context, alert_id: str, *, actor: str, responder_id: str | None,
                    region: str | None = None, source: str = "api") -> dict:
    """An alert with its location trail, dispatches and timeline; the read itself is recorded in the audit log.

    An officer sees only alerts dispatched to their responder, a supervisor also those of their `region`, an admin
    (responder_id and region None) any. Every other id (random, malformed, someone else's) gets the same 404 after
    the same work: one lookup, an audit entry (`read_alert_denied`) and a security event, so neither the answer
    nor its time tells whether the alert exists.
    """
    try:
        key: uuid.UUID | None = uuid.UUID(alert_id)
    except ValueError:
        key = None
    async with pool.acquire() as conn:
        async with conn.transaction():
            now = ctx.clock.now()
            alert = await conn.fetchrow(queries.get_visible_alert, key or _NO_ALERT, responder_id, region)
            if alert is None:
                # Escaped: a NUL or a lone surrogate in the path cannot be stored as JSON text.
                requested = alert_id[:100].encode("unicode_escape").decode("ascii")
                await conn.execute(queries.insert_audit, now, actor, "read_alert_denied", key,
                                   {"requested": requested})
                await security_event(conn, now, "alert_not_found", source, actor=actor)
            else:
                dispatches = await conn.fetch(queries.list_alert_dispatches, key)
                fixes = await conn.fetch(queries.list_alert_fixes, key)
                events = await conn.fetch(queries.list_alert_events, key)
                await conn.execute(queries.insert_audit, now, actor, "read_alert", key, {})
    if alert is None:
        raise NotFound("no such alert")
    location = Location.from_row(alert, "loc_")
    return {
        "alert_id": str(alert["id"]),
        "person_id": alert["person_id"],
        "channel": alert["channel"],
        "drill": alert["drill"],
        "status": alert["status"],
        "priority": alert["priority"],
        "duress": alert["duress"],
        "stale_token": alert["stale_token"],
        "verified": alert["verified"],
        "triage": alert["triage"],
        "region": alert["region"],
        "triggered_at": alert["triggered_at"].isoformat(),
        "created_at": alert["created_at"].isoformat(),
        "location": location.as_json() if location else None,
        "place": places.console_place(alert, location),
        "locations": [Location.of_row(f).as_json() for f in fixes],
        "dispatches": [Dispatch.from_row(d).as_json() for d in dispatches],
        "events": [
            {"id": e["id"], "at": e["at"].isoformat(), "type": e["type"],
             "dispatch_id": str(e["dispatch_id"]) if e["dispatch_id"] else None,
             "responder_id": e["responder_id"], "actor": e["actor"], "data": e["data"]}
            for e in events
        ],
    }
