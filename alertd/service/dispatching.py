"""Dispatch an alert to the nearest responders, re-dispatch when it moves, escalate on a missed deadline."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

import asyncpg

from alertd.core import policy
from alertd.core.model import KINDS, Location, Responder
from alertd.service.context import Context
from alertd.service.timeline import event, tell_responder, tell_supervisor
from alertd.store import queries


async def nearest(conn: asyncpg.Connection, kind: str, loc: Location, exclude: list[str],
                  seen_since: datetime | None = None) -> Responder | None:
    """seen_since: a mobile unit whose terminal has reported, but not since then, counts as off duty."""
    row = await conn.fetchrow(queries.nearest_responder, kind, loc.lon, loc.lat, exclude, seen_since)
    return Responder.from_row(row) if row else None


def units_seen_since(ctx: Context, now: datetime) -> datetime:
    return now - timedelta(seconds=ctx.settings.unit_silence_s)


async def dispatch_to(conn: asyncpg.Connection, ctx: Context, now: datetime, alert, responder: Responder,
                      loc: Location, *, attempt: int = 1, broadcast: bool = False, cause: str = "dispatched") -> str:
    """Create one dispatch with its deadline, its timeline event and its outbox rows."""
    dispatch_id = uuid.uuid4()
    deadline = now + timedelta(seconds=ctx.settings.ack_deadline(responder.kind))
    for _ in range(5):  # a code collision is rare (27^6 codes); draw again
        code = policy.new_code()
        if await conn.fetchval(queries.insert_dispatch, dispatch_id, alert["id"], responder.kind, responder.id,
                               code, attempt, broadcast, responder.distance_m, deadline, now):
            break
    else:
        raise RuntimeError("could not find a free dispatch code")
    await event(conn, alert["id"], now, cause, dispatch_id=dispatch_id, responder_id=responder.id,
                kind=responder.kind, attempt=attempt, code=code, deadline=deadline.isoformat(),
                distance_m=None if responder.distance_m is None else round(responder.distance_m))
    payload = policy.dispatch_payload(code=code, kind=responder.kind, location=loc, deadline=deadline,
                                      priority=alert["priority"], duress=alert["duress"], attempt=attempt)
    await tell_responder(conn, now, responder.id, "dispatch", payload, alert_id=alert["id"],
                         dispatch_id=dispatch_id)
    await conn.execute(queries.notify_wake, "deadline")
    return str(dispatch_id)


async def dispatch_all(conn: asyncpg.Connection, ctx: Context, now: datetime, alert, loc: Location) -> list[str]:
    """Dispatch the nearest on-duty responder of each kind; a kind with nobody on duty goes to the supervisor."""
    ids = []
    for kind in KINDS:
        responder = await nearest(conn, kind, loc, [], units_seen_since(ctx, now))
        if responder is None:
            await event(conn, alert["id"], now, "no_responder", kind=kind)
            await tell_supervisor(conn, now, alert["region"], "no_responder", {"kind": kind},
                                  alert_id=alert["id"])
            continue
        if kind == "police_post" or alert["region"] is None:
            await conn.execute(queries.set_alert_region, alert["id"], responder.region)
            alert = {**alert, "region": alert["region"] or responder.region}
        ids.append(await dispatch_to(conn, ctx, now, alert, responder, loc))
    return ids


async def redispatch_if_nearer(conn: asyncpg.Connection, ctx: Context, now: datetime, alert,
                               loc: Location) -> list[str]:
    """After the alert moved: a kind whose dispatch is still unacknowledged goes to whoever is nearest now."""
    moved = []
    dispatches = await conn.fetch(queries.alert_dispatches, alert["id"])
    for kind in KINDS:
        of_kind = [d for d in dispatches if d["kind"] == kind]
        if any(d["status"] in ("acknowledged", "en_route", "on_scene", "resolved") for d in of_kind):
            continue
        pending = [d for d in of_kind if d["status"] == "pending" and not d["broadcast"]]
        if not pending:
            continue
        current = pending[-1]
        responder = await nearest(conn, kind, loc, [], units_seen_since(ctx, now))
        if responder is None or responder.id == current["responder_id"]:
            continue
        await conn.execute(queries.set_dispatch_status, current["id"], "cancelled", "re-dispatched: alert moved", now)
        await event(conn, alert["id"], now, "withdrawn", dispatch_id=current["id"],
                    responder_id=current["responder_id"], reason="alert moved; another responder is nearer")
        await tell_responder(conn, now, current["responder_id"], "withdrawn", {"code": current["code"]},
                             alert_id=alert["id"], dispatch_id=current["id"])
        moved.append(await dispatch_to(conn, ctx, now, alert, responder, loc, attempt=current["attempt"],
                                       cause="redispatched"))
    return moved


async def escalate(conn: asyncpg.Connection, ctx: Context, now: datetime, expired) -> None:
    """Carry out the escalation policy for one dispatch the engine just expired (alert row already locked)."""
    alert = await conn.fetchrow(queries.alert_get, expired["alert_id"])
    lateness = (now - expired["ack_deadline"]).total_seconds()
    await event(conn, alert["id"], now, "expired", dispatch_id=expired["id"], responder_id=expired["responder_id"],
                kind=expired["kind"], lateness_s=round(lateness, 3))
    await tell_supervisor(conn, now, alert["region"], "missed_deadline",
                          {"code": expired["code"], "kind": expired["kind"], "responder_id": expired["responder_id"]},
                          alert_id=alert["id"], dispatch_id=expired["id"])
    if alert["status"] not in ("open", "unanswered") or alert["loc_lat"] is None:
        return
    loc = Location.from_row(alert, "loc_")
    of_kind = [d for d in await conn.fetch(queries.alert_dispatches, alert["id"]) if d["kind"] == expired["kind"]]
    decision = policy.after_miss(
        misses=sum(1 for d in of_kind if d["expired_at"] is not None),
        max_misses=ctx.settings.max_misses,
        was_broadcast=expired["broadcast"],
        kind_acknowledged=any(d["status"] in ("acknowledged", "en_route", "on_scene", "resolved") for d in of_kind),
    )
    if decision.action == "none":
        return
    tried = [d["responder_id"] for d in of_kind]
    if decision.action == "next":
        responder = await nearest(conn, expired["kind"], loc, tried, units_seen_since(ctx, now))
        if responder is not None:
            await event(conn, alert["id"], now, "escalated", dispatch_id=expired["id"], kind=expired["kind"],
                        reason=decision.reason, to=responder.id)
            await dispatch_to(conn, ctx, now, alert, responder, loc, attempt=expired["attempt"] + 1,
                              cause="escalation_dispatched")
            return
    await broadcast_region(conn, ctx, now, alert, loc, expired, decision.reason, of_kind)


async def broadcast_region(conn, ctx: Context, now: datetime, alert, loc: Location, expired, reason: str,
                           of_kind) -> None:
    """Nobody answered: mark the alert unanswered and send it to every on-duty responder of the kind in the region."""
    if alert["status"] != "unanswered":
        await conn.execute(queries.set_alert_status, alert["id"], "unanswered", now)
    await event(conn, alert["id"], now, "unanswered", kind=expired["kind"], reason=reason)
    busy = [d["responder_id"] for d in of_kind if d["status"] == "pending"]
    region = alert["region"] or "unknown"
    rows = await conn.fetch(queries.region_responders, expired["kind"], region, busy, loc.lon, loc.lat)
    for row in rows:
        await dispatch_to(conn, ctx, now, alert, Responder.from_row(row), loc, attempt=expired["attempt"] + 1,
                          broadcast=True, cause="broadcast_dispatched")
    await tell_supervisor(conn, now, region, "unanswered", {"kind": expired["kind"], "sent_to": len(rows)},
                          alert_id=alert["id"])
