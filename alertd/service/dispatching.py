"""Dispatch an alert to the nearest responders, re-dispatch when it moves, escalate on a missed deadline.

Every function here writes its timeline events and outbox messages into the caller's `Batch`, which the caller
flushes before its transaction commits.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import asyncpg

from alertd.context import Context
from alertd.core import policy
from alertd.core.model import KINDS, Location, Responder
from alertd.core.places import Place, Relation, relate
from alertd.service import places
from alertd.service.timeline import Batch
from alertd.store import queries

ANSWERED = ("acknowledged", "en_route", "on_scene", "resolved")


def units_seen_since(ctx: Context, now: datetime) -> datetime:
    """A mobile unit whose terminal has reported, but not since then, counts as off duty."""
    return now - timedelta(seconds=ctx.settings.unit_silence_s)


async def nearest_each(conn: asyncpg.Connection, ctx: Context, now: datetime, kinds: tuple[str, ...] | list[str],
                       loc: Location, exclude: list[str] | None = None) -> dict[str, Responder]:
    """The nearest on-duty responder of each kind (one query); a kind with nobody on duty is absent."""
    return (await nearest_at(conn, ctx, now, kinds, [loc], exclude))[0]


async def nearest_at(conn: asyncpg.Connection, ctx: Context, now: datetime, kinds: tuple[str, ...] | list[str],
                     locs: list[Location], exclude: list[str] | None = None,
                     near: dict[Location, Relation | None] | None = None) -> list[dict[str, Responder]]:
    """nearest_each for several locations in one query: one dict per location, in their order. Given `near`, the
    same query fills it with the nearest named place of each location that has a responder (what `places_of`
    would read for dispatches there: the intake's round trip saved)."""
    found: list[dict[str, Responder]] = [{} for _ in locs]
    if not locs:
        return found
    rows = await conn.fetch(queries.find_nearest_responders, list(kinds), [loc.lon for loc in locs],
                            [loc.lat for loc in locs], exclude or [], units_seen_since(ctx, now), near is not None)
    for row in rows:
        loc = locs[row["n"] - 1]
        found[row["n"] - 1][row["kind"]] = Responder.from_row(row)
        if near is not None and loc not in near:  # a point's place comes on each of its kinds' rows: related once
            near[loc] = (relate(Place.from_row(row, "place_"), loc.lat, loc.lon)
                         if row["place_geonameid"] is not None else None)
    return found


async def nearest(conn: asyncpg.Connection, ctx: Context, now: datetime, kind: str, loc: Location,
                  exclude: list[str]) -> Responder | None:
    return (await nearest_each(conn, ctx, now, [kind], loc, exclude)).get(kind)


@dataclass(frozen=True)
class Assignment:
    """One dispatch to make: this alert (id, priority, duress) to this responder, at this location."""

    alert: Mapping[str, Any]
    responder: Responder
    loc: Location


async def dispatch_to(conn: asyncpg.Connection, ctx: Context, batch: Batch, alert, responders: list[Responder],
                      loc: Location, *, attempt: int = 1, broadcast: bool = False,
                      cause: str = "dispatched") -> list[str]:
    """Dispatch one alert to each responder with its kind's deadline (one insert), queueing events and messages."""
    return await dispatch_many(conn, ctx, batch, [Assignment(alert, r, loc) for r in responders], attempt=attempt,
                               broadcast=broadcast, cause=cause)


@dataclass
class Plan:
    """Dispatches about to be made: for each assignment its id, its code and its deadline."""

    todo: list[Assignment]
    ids: list[uuid.UUID]
    codes: list[str]
    deadlines: list[datetime]

    @classmethod
    def of(cls, ctx: Context, now: datetime, todo: list[Assignment]) -> Plan:
        return cls(todo, [uuid.uuid4() for _ in todo], [policy.new_code() for _ in todo],
                   [now + timedelta(seconds=ctx.settings.ack_deadline(a.responder.kind)) for a in todo])

    def columns(self, only: list[int] | None = None) -> list[list]:
        """insert_dispatches' columns for these rows (all by default): ids, alert ids, kinds, responder ids,
        codes, distances, deadlines."""
        rows = range(len(self.todo)) if only is None else only
        return [[self.ids[i] for i in rows], [self.todo[i].alert["id"] for i in rows],
                [self.todo[i].responder.kind for i in rows], [self.todo[i].responder.id for i in rows],
                [self.codes[i] for i in rows], [self.todo[i].responder.distance_m for i in rows],
                [self.deadlines[i] for i in rows]]

    def rows(self, rows: list[int]) -> Plan:
        """A plan of these of its rows only."""
        return Plan([self.todo[i] for i in rows], [self.ids[i] for i in rows], [self.codes[i] for i in rows],
                    [self.deadlines[i] for i in rows])


async def dispatch_many(conn: asyncpg.Connection, ctx: Context, batch: Batch, todo: list[Assignment], *,
                        attempt: int = 1, broadcast: bool = False, cause: str = "dispatched") -> list[str]:
    """Make each dispatch with its kind's deadline, for one alert or a group of them (one insert), queueing
    their events and messages."""
    if not todo:
        return []
    plan = Plan.of(ctx, batch.now, todo)
    await insert_planned(conn, batch.now, plan, attempt=attempt, broadcast=broadcast)
    return record(batch, plan, await places_of(conn, plan), attempt=attempt, cause=cause)


async def places_of(conn: asyncpg.Connection, plan: Plan) -> dict[Location, Relation | None]:
    """The nearest named place of each location the plan dispatches to (one query however many): looked up once
    here, when the dispatch is made, and carried in its messages; a later, better fix gets its own. (The intake
    has nearest_at read them with the responders.)"""
    locs = list(dict.fromkeys(a.loc for a in plan.todo))
    return dict(zip(locs, await places.nearest_to(conn, locs), strict=True))


async def insert_planned(conn: asyncpg.Connection, now: datetime, plan: Plan, *, attempt: int = 1,
                         broadcast: bool = False) -> None:
    """Insert the planned dispatches. A taken code (27^6 of them) skips its row: draw again for those rows only."""
    left = list(range(len(plan.ids)))
    for _ in range(5):
        if not left:
            return
        done = {row["id"] for row in await conn.fetch(queries.insert_dispatches, attempt, broadcast, now,
                                                       *plan.columns(left))}
        left = [i for i in left if plan.ids[i] not in done]
        for i in left:
            plan.codes[i] = policy.new_code()
    if left:
        raise RuntimeError("could not find a free dispatch code")


def record(batch: Batch, plan: Plan, near: dict[Location, Relation | None], *, attempt: int = 1,
           cause: str = "dispatched") -> list[str]:
    """Queue the events and messages of dispatches just inserted (each told its place's nearest named place,
    `near`: places_of); their ids."""
    for a, dispatch_id, code, deadline in zip(plan.todo, plan.ids, plan.codes, plan.deadlines, strict=True):
        responder, alert_id = a.responder, a.alert["id"]
        batch.event(alert_id, cause, dispatch_id=dispatch_id, responder_id=responder.id, kind=responder.kind,
                    attempt=attempt, code=code, deadline=deadline.isoformat(),
                    distance_m=None if responder.distance_m is None else round(responder.distance_m))
        payload = policy.dispatch_payload(code=code, kind=responder.kind, location=a.loc, deadline=deadline,
                                          priority=a.alert["priority"], duress=a.alert["duress"], attempt=attempt,
                                          place=near.get(a.loc))
        batch.tell(responder.contacts, "dispatch", payload, alert_id=alert_id, dispatch_id=dispatch_id)
    # No wake-up for the deadline: it is seconds away, and every engine polls more often than that.
    return [str(i) for i in plan.ids]


def region_of(found: dict[str, Responder]) -> str | None:
    """The region an alert falls in: its police post's, else any dispatched responder's."""
    for kind in KINDS:
        if kind in found:
            return found[kind].region
    return None


def assignments(alert, loc: Location, found: dict[str, Responder]) -> list[Assignment]:
    """The dispatches an alert gets: the nearest responder of each kind found."""
    return [Assignment(alert, found[kind], loc) for kind in KINDS if kind in found]


def unstaffed(batch: Batch, alert, found: dict[str, Responder]) -> None:
    """Record each kind with nobody on duty to dispatch, and tell the supervisor."""
    for kind in KINDS:
        if kind not in found:
            batch.event(alert["id"], "no_responder", kind=kind)
            batch.tell_supervisor(alert["region"], "no_responder", {"kind": kind}, alert_id=alert["id"])


async def dispatch_all(conn: asyncpg.Connection, ctx: Context, batch: Batch, alert, loc: Location,
                       found: dict[str, Responder]) -> list[str]:
    """Dispatch the nearest responder of each kind found; a kind with nobody on duty goes to the supervisor."""
    unstaffed(batch, alert, found)
    return await dispatch_many(conn, ctx, batch, assignments(alert, loc, found))


async def dispatch_located(conn: asyncpg.Connection, ctx: Context, batch: Batch, alert, best: Location) -> None:
    """An alert that waited in triage has a location: record it (and, with it, the region of the nearest police
    post) and dispatch each kind."""
    found = await nearest_each(conn, ctx, batch.now, KINDS, best)
    region = alert["region"] or region_of(found)
    await record_best(conn, batch, alert["id"], best, region)
    await dispatch_all(conn, ctx, batch, {**dict(alert), "region": region}, best, found)


async def record_best(conn: asyncpg.Connection, batch: Batch, alert_id, best: Location,
                      region: str | None = None) -> None:
    """Record the alert's new best location ($region only if it has none yet)."""
    await conn.execute(queries.set_alert_location, alert_id, best.lon, best.lat, best.accuracy_m, best.source,
                       best.fix_time, region)
    batch.event(alert_id, "located", source=best.source, accuracy_m=best.accuracy_m)


async def redispatch_if_nearer(conn: asyncpg.Connection, ctx: Context, batch: Batch, alert,
                               loc: Location) -> list[str]:
    """After the alert moved: a kind whose dispatch is still unacknowledged goes to whoever is nearest now."""
    now = batch.now
    dispatches = await conn.fetch(queries.list_alert_dispatches, alert["id"])
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
        contacts = await conn.fetchrow(queries.get_responder_contacts, old["responder_id"])
        batch.tell(contacts, "withdrawn", {"code": old["code"]}, alert_id=alert["id"], dispatch_id=old["id"])
        moved += await dispatch_to(conn, ctx, batch, alert, [responder], loc, attempt=old["attempt"],
                                   cause="redispatched")
    return moved


async def escalate(conn: asyncpg.Connection, ctx: Context, batch: Batch, expired) -> None:
    """Carry out the escalation policy for one dispatch the engine just expired (alert row already locked)."""
    now = batch.now
    alert = await conn.fetchrow(queries.get_alert, expired["alert_id"])
    lateness = (now - expired["ack_deadline"]).total_seconds()
    batch.event(alert["id"], "expired", dispatch_id=expired["id"], responder_id=expired["responder_id"],
                kind=expired["kind"], lateness_s=round(lateness, 3))
    batch.tell_supervisor(alert["region"], "missed_deadline",
                          {"code": expired["code"], "kind": expired["kind"], "responder_id": expired["responder_id"]},
                          alert_id=alert["id"], dispatch_id=expired["id"])
    if alert["status"] not in ("open", "unanswered") or alert["loc_lat"] is None:
        return
    loc = Location.of_row(alert, "loc_")
    of_kind = [d for d in await conn.fetch(queries.list_alert_dispatches, alert["id"]) if d["kind"] == expired["kind"]]
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
    """Nobody answered: mark the alert unanswered and call out the region: the `broadcast_max_responders` on-duty
    responders of the kind nearest to her within `broadcast_radius_m` (tried ones too: a second chance), not every
    one of the region (hundreds of SMS in a large one); the supervisor is told how many were called."""
    if alert["status"] != "unanswered":
        await conn.execute(queries.set_alert_status, alert["id"], "unanswered", batch.now)
    batch.event(alert["id"], "unanswered", kind=expired["kind"], reason=reason)
    busy = [d["responder_id"] for d in of_kind if d["status"] == "pending"]
    region = alert["region"] or "unknown"
    rows = await conn.fetch(queries.find_region_responders, expired["kind"], region, busy, loc.lon, loc.lat,
                            ctx.settings.broadcast_radius_m, ctx.settings.broadcast_max_responders)
    await dispatch_to(conn, ctx, batch, alert, [Responder.from_row(r) for r in rows], loc,
                      attempt=expired["attempt"] + 1, broadcast=True, cause="broadcast_dispatched")
    batch.tell_supervisor(region, "unanswered", {"kind": expired["kind"], "sent_to": len(rows)},
                          alert_id=alert["id"])
