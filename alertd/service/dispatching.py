"""Dispatch an alert to the nearest responders, re-dispatch when it moves, escalate on a missed deadline.

Every function here writes its timeline events and outbox messages into the caller's `Batch`, which the caller
flushes before its transaction commits.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

import asyncpg

from alertd.core import policy
from alertd.core.model import KINDS, Location, Responder
from alertd.service.context import Context
from alertd.service.timeline import Batch
from alertd.store import queries

ANSWERED = ("acknowledged", "en_route", "on_scene", "resolved")


def units_seen_since(ctx: Context, now: datetime) -> datetime:
    """A mobile unit whose terminal has reported, but not since then, counts as off duty."""
    return now - timedelta(seconds=ctx.settings.unit_silence_s)


async def nearest_each(conn: asyncpg.Connection, ctx: Context, now: datetime, kinds: tuple[str, ...] | list[str],
                       loc: Location, exclude: list[str] | None = None) -> dict[str, Responder]:
    """The nearest on-duty responder of each kind (one query); a kind with nobody on duty is absent."""
    rows = await conn.fetch(queries.nearest_responder, list(kinds), loc.lon, loc.lat, exclude or [],
                            units_seen_since(ctx, now))
    return {row["kind"]: Responder.from_row(row) for row in rows}


async def nearest(conn: asyncpg.Connection, ctx: Context, now: datetime, kind: str, loc: Location,
                  exclude: list[str]) -> Responder | None:
    return (await nearest_each(conn, ctx, now, [kind], loc, exclude)).get(kind)


async def dispatch_to(conn: asyncpg.Connection, ctx: Context, batch: Batch, alert, responders: list[Responder],
                      loc: Location, *, attempt: int = 1, broadcast: bool = False,
                      cause: str = "dispatched") -> list[str]:
    """Dispatch to each responder with its kind's deadline (one insert), queueing events and messages."""
    if not responders:
        return []
    now = batch.now
    ids = [uuid.uuid4() for _ in responders]
    deadlines = [now + timedelta(seconds=ctx.settings.ack_deadline(r.kind)) for r in responders]
    codes = [policy.new_code() for _ in responders]
    todo = list(range(len(responders)))
    for _ in range(5):  # a taken code (27^6 of them) skips its row: draw again for those rows only
        inserted = {row["id"] for row in await conn.fetch(
            queries.insert_dispatches, alert["id"], attempt, broadcast, now, [ids[i] for i in todo],
            [responders[i].kind for i in todo], [responders[i].id for i in todo], [codes[i] for i in todo],
            [responders[i].distance_m for i in todo], [deadlines[i] for i in todo])}
        todo = [i for i in todo if ids[i] not in inserted]
        if not todo:
            break
        for i in todo:
            codes[i] = policy.new_code()
    else:
        raise RuntimeError("could not find a free dispatch code")
    for responder, dispatch_id, code, deadline in zip(responders, ids, codes, deadlines, strict=True):
        batch.event(alert["id"], cause, dispatch_id=dispatch_id, responder_id=responder.id, kind=responder.kind,
                    attempt=attempt, code=code, deadline=deadline.isoformat(),
                    distance_m=None if responder.distance_m is None else round(responder.distance_m))
        payload = policy.dispatch_payload(code=code, kind=responder.kind, location=loc, deadline=deadline,
                                          priority=alert["priority"], duress=alert["duress"], attempt=attempt)
        batch.tell(responder.contacts, "dispatch", payload, alert_id=alert["id"], dispatch_id=dispatch_id)
    # No wake-up for the deadline: it is seconds away, and every engine polls more often than that.
    return [str(i) for i in ids]


def region_of(found: dict[str, Responder]) -> str | None:
    """The region an alert falls in: its police post's, else any dispatched responder's."""
    for kind in KINDS:
        if kind in found:
            return found[kind].region
    return None


async def dispatch_all(conn: asyncpg.Connection, ctx: Context, batch: Batch, alert, loc: Location,
                       found: dict[str, Responder]) -> list[str]:
    """Dispatch the nearest responder of each kind found; a kind with nobody on duty goes to the supervisor."""
    for kind in KINDS:
        if kind not in found:
            batch.event(alert["id"], "no_responder", kind=kind)
            batch.tell_supervisor(alert["region"], "no_responder", {"kind": kind}, alert_id=alert["id"])
    return await dispatch_to(conn, ctx, batch, alert, [found[k] for k in KINDS if k in found], loc)


async def redispatch_if_nearer(conn: asyncpg.Connection, ctx: Context, batch: Batch, alert,
                               loc: Location) -> list[str]:
    """After the alert moved: a kind whose dispatch is still unacknowledged goes to whoever is nearest now."""
    now = batch.now
    dispatches = await conn.fetch(queries.alert_dispatches, alert["id"])
    current = {}
    for kind in KINDS:
        of_kind = [d for d in dispatches if d["kind"] == kind]
        pending = [d for d in of_kind if d["status"] == "pending" and not d["broadcast"]]
        if pending and not any(d["status"] in ANSWERED for d in of_kind):
            current[kind] = pending[-1]
    if not current:
        return []
    found = await nearest_each(conn, ctx, now, list(current), loc)
    moved = []
    for kind, old in current.items():
        responder = found.get(kind)
        if responder is None or responder.id == old["responder_id"]:
            continue
        await conn.execute(queries.set_dispatch_status, old["id"], "cancelled", "re-dispatched: alert moved", now)
        batch.event(alert["id"], "withdrawn", dispatch_id=old["id"], responder_id=old["responder_id"],
                    reason="alert moved; another responder is nearer")
        contacts = await conn.fetchrow(queries.responder_contacts, old["responder_id"])
        batch.tell(contacts, "withdrawn", {"code": old["code"]}, alert_id=alert["id"], dispatch_id=old["id"])
        moved += await dispatch_to(conn, ctx, batch, alert, [responder], loc, attempt=old["attempt"],
                                   cause="redispatched")
    return moved


async def escalate(conn: asyncpg.Connection, ctx: Context, batch: Batch, expired) -> None:
    """Carry out the escalation policy for one dispatch the engine just expired (alert row already locked)."""
    now = batch.now
    alert = await conn.fetchrow(queries.alert_get, expired["alert_id"])
    lateness = (now - expired["ack_deadline"]).total_seconds()
    batch.event(alert["id"], "expired", dispatch_id=expired["id"], responder_id=expired["responder_id"],
                kind=expired["kind"], lateness_s=round(lateness, 3))
    batch.tell_supervisor(alert["region"], "missed_deadline",
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
        kind_acknowledged=any(d["status"] in ANSWERED for d in of_kind),
    )
    if decision.action == "none":
        return
    if decision.action == "next":
        responder = await nearest(conn, ctx, now, expired["kind"], loc, [d["responder_id"] for d in of_kind])
        if responder is not None:
            batch.event(alert["id"], "escalated", dispatch_id=expired["id"], kind=expired["kind"],
                        reason=decision.reason, to=responder.id)
            await dispatch_to(conn, ctx, batch, alert, [responder], loc, attempt=expired["attempt"] + 1,
                              cause="escalation_dispatched")
            return
    await broadcast_region(conn, ctx, batch, alert, loc, expired, decision.reason, of_kind)


async def broadcast_region(conn: asyncpg.Connection, ctx: Context, batch: Batch, alert, loc: Location, expired,
                           reason: str, of_kind) -> None:
    """Nobody answered: mark the alert unanswered and send it to every on-duty responder of the kind in the region."""
    if alert["status"] != "unanswered":
        await conn.execute(queries.set_alert_status, alert["id"], "unanswered", batch.now)
    batch.event(alert["id"], "unanswered", kind=expired["kind"], reason=reason)
    busy = [d["responder_id"] for d in of_kind if d["status"] == "pending"]
    region = alert["region"] or "unknown"
    rows = await conn.fetch(queries.region_responders, expired["kind"], region, busy, loc.lon, loc.lat)
    await dispatch_to(conn, ctx, batch, alert, [Responder.from_row(r) for r in rows], loc,
                      attempt=expired["attempt"] + 1, broadcast=True, cause="broadcast_dispatched")
    batch.tell_supervisor(region, "unanswered", {"kind": expired["kind"], "sent_to": len(rows)},
                          alert_id=alert["id"])
