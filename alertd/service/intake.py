"""Alert intake: raise, add locations, cancel. Each call is one transaction; callers answer after it commits."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import asyncpg

from alertd.core.location import best_location, moved_enough
from alertd.core.model import ACTIVE_DISPATCH, KINDS, Conflict, Forbidden, Location, NotFound, Responder
from alertd.service import dispatching
from alertd.service.context import Context
from alertd.service.group_commit import GroupCommit
from alertd.service.pins import check_pins_async
from alertd.service.timeline import Batch, event, security_event, tell_responder, tell_supervisor
from alertd.store import queries


@dataclass(frozen=True)
class Raised:
    alert_id: str
    status: str
    created: bool


@dataclass(frozen=True)
class NewAlert:
    """An alert to raise, from any channel. `details` adds channel details to its `raised` event."""

    person_id: str
    device_id: str | None
    channel: str
    client_alert_id: str | None
    triggered_at: datetime
    location: Location | None = None
    stale_token: bool = False
    verified: bool = True
    details: Mapping[str, Any] = field(default_factory=dict)


def group_committer(pool: asyncpg.Pool, ctx: Context, **options: Any) -> GroupCommit[NewAlert, Raised]:
    """App alerts committed in groups under load, each answered after its own group's commit."""
    return GroupCommit(pool, lambda conn, news: raise_group(conn, ctx, news), name="intake",
                       order=lambda n: (n.device_id or "", n.client_alert_id or ""), **options)


async def raise_group(conn: asyncpg.Connection, ctx: Context, news: list[NewAlert]) -> list[Raised]:
    """In the caller's transaction: create_alerts, and for each alert already raised under its client_alert_id,
    the one that stands."""
    ids = await create_alerts(conn, ctx, ctx.clock.now(), news)
    repeats = [n for n, alert_id in zip(news, ids, strict=True) if alert_id is None]
    first = {}
    if repeats:
        rows = await conn.fetch(queries.alerts_by_client_ids, [n.device_id for n in repeats],
                                [n.client_alert_id for n in repeats])
        first = {(r["device_id"], r["client_alert_id"]): r for r in rows}
    return [Raised(str(alert_id), "open", created=True) if alert_id is not None else
            Raised(str(first[n.device_id, n.client_alert_id]["id"]),
                   first[n.device_id, n.client_alert_id]["status"], created=False)
            for n, alert_id in zip(news, ids, strict=True)]


async def create_alert(conn: asyncpg.Connection, ctx: Context, now: datetime, *, person_id: str,
                       device_id: str | None, channel: str, client_alert_id: str | None, triggered_at: datetime,
                       location: Location | None, stale_token: bool = False, verified: bool = True,
                       **details: Any):
    """create_alerts for one alert: its id, or None when this device already sent this client_alert_id."""
    new = NewAlert(person_id, device_id, channel, client_alert_id, triggered_at, location, stale_token, verified,
                   details)
    return (await create_alerts(conn, ctx, now, [new]))[0]


async def create_alerts(conn: asyncpg.Connection, ctx: Context, now: datetime,
                        news: list[NewAlert]) -> list[uuid.UUID | None]:
    """In the caller's transaction: each alert with its fix, its best location (and, with it, the region of the
    nearest police post) and its dispatches, with their outbox rows and timeline. Every channel raises alerts
    through here, one at a time or a group at once: the statements are the same (three, four without a
    location), whatever the group's size. Returns each alert's id, None for one whose device already sent its
    client_alert_id (the first alert stands)."""
    homes = {}
    if homeless := [n.person_id for n in news if n.location is None]:  # a home is read only when there is no fix
        homes = {r["person_id"]: Location.from_row(r) for r in await conn.fetch(queries.people_homes, homeless)}
    bests = [best_location([n.location] if n.location else [], homes.get(n.person_id), ctx.settings.accurate_fix_m)
             for n in news]
    located = [i for i, best in enumerate(bests) if best is not None]
    found: list[dict[str, Responder]] = [{} for _ in news]
    for i, near in zip(located, await dispatching.nearest_at(conn, ctx, now, KINDS, [bests[i] for i in located]),
                       strict=True):
        found[i] = near
    ids = [uuid.uuid4() for _ in news]
    alerts = [{"id": alert_id, "region": dispatching.region_of(near), "priority": "normal", "duress": False}
              for alert_id, near in zip(ids, found, strict=True)]
    plan = dispatching.Plan.of(ctx, now, [a for i in located for a in dispatching.assignments(alerts[i], bests[i],
                                                                                              found[i])])
    where = [(b.lon, b.lat, b.accuracy_m, b.source, b.fix_time) if b else (None,) * 5 for b in bests]
    made = await conn.fetch(
        queries.insert_alerts, now, ids, [n.person_id for n in news], [n.device_id for n in news],
        [n.channel for n in news], [n.client_alert_id for n in news], [n.triggered_at for n in news],
        [n.stale_token for n in news], [n.verified for n in news], [a["region"] for a in alerts],
        *map(list, zip(*where, strict=True)),
        *_fix_columns([(ids[i], n.location) for i, n in enumerate(news) if n.location]), *plan.columns())
    created = {r["id"] for r in made if r["made"] == "alert"}
    plan = plan.only(lambda a: a.alert["id"] in created)
    await dispatching.insert_planned(conn, now, plan, {r["id"] for r in made if r["made"] == "dispatch"})
    batch = Batch(now)
    for i, n in enumerate(news):
        if ids[i] not in created:
            continue
        batch.event(ids[i], "raised", channel=n.channel, stale_token=n.stale_token, verified=n.verified,
                    **n.details)
        if bests[i] is None:
            _to_triage(batch, ids[i])
            continue
        batch.event(ids[i], "located", source=bests[i].source, accuracy_m=bests[i].accuracy_m)
        dispatching.unstaffed(batch, alerts[i], found[i])
    dispatching.record(batch, plan)
    await batch.flush(conn)
    return [alert_id if alert_id in created else None for alert_id in ids]


def _fix_columns(fixes: list[tuple[uuid.UUID, Location]]) -> list[list]:
    """insert_fixes' columns: alert ids, lons, lats, accuracies, sources, fix times."""
    return [[alert_id for alert_id, _ in fixes], [f.lon for _, f in fixes], [f.lat for _, f in fixes],
            [f.accuracy_m for _, f in fixes], [f.source for _, f in fixes], [f.fix_time for _, f in fixes]]


def _to_triage(batch: Batch, alert_id) -> None:
    batch.event(alert_id, "triage", reason="no usable location")
    batch.tell_supervisor(None, "triage", {"reason": "no usable location"}, alert_id=alert_id)


async def _dispatch_on(conn: asyncpg.Connection, ctx: Context, batch: Batch, alert, best: Location) -> None:
    """Record the best location (and, with it, the region of the nearest police post) and dispatch each kind."""
    found = await dispatching.nearest_each(conn, ctx, batch.now, KINDS, best)
    region = alert["region"] or dispatching.region_of(found)
    await _record_best(conn, batch, alert["id"], best, region)
    await dispatching.dispatch_all(conn, ctx, batch, {**dict(alert), "region": region}, best, found)


async def _best(conn: asyncpg.Connection, ctx: Context, person_id: str, fixes: list[Location]) -> Location | None:
    """The best of her fixes; her registered home only when there is no fix at all (read only then)."""
    home = None
    if not fixes:
        homes = await conn.fetch(queries.people_homes, [person_id])
        home = Location.from_row(homes[0]) if homes else None
    return best_location(fixes, home, ctx.settings.accurate_fix_m)


async def _record_best(conn: asyncpg.Connection, batch: Batch, alert_id, best: Location,
                       region: str | None = None) -> None:
    await conn.execute(queries.set_alert_location, alert_id, best.lon, best.lat, best.accuracy_m, best.source,
                       best.fix_time, region)
    batch.event(alert_id, "located", source=best.source, accuracy_m=best.accuracy_m)


async def open_alert_of(conn: asyncpg.Connection, alert_id: str, person_id: str):
    """Lock an alert of this person; someone else's alert is 'not found', exactly like a missing one."""
    try:
        key = uuid.UUID(alert_id)
    except ValueError:
        raise NotFound("no such alert") from None
    alert = await conn.fetchrow(queries.alert_for_update, key)
    if alert is None or alert["person_id"] != person_id:
        raise NotFound("no such alert")
    return alert


async def add_locations(pool: asyncpg.Pool, ctx: Context, *, alert_id: str, person_id: str,
                        fixes: list[Location]) -> dict:
    """Append fixes; if the best location changes, record it, and re-dispatch kinds that now have a nearer responder."""
    async with pool.acquire() as conn, conn.transaction():
        now = ctx.clock.now()
        alert = await open_alert_of(conn, alert_id, person_id)
        if alert["status"] not in ("open", "unanswered"):
            raise Conflict(f"alert is {alert['status']}")
        await conn.execute(queries.insert_fixes, now, *_fix_columns([(alert["id"], fix) for fix in fixes]))
        old = Location.from_row(alert, "loc_")
        trail = [Location.from_row(r) for r in await conn.fetch(queries.alert_fixes, alert["id"])]
        best = await _best(conn, ctx, person_id, trail)
        batch = Batch(now)
        batch.event(alert["id"], "location", fixes=len(fixes))
        if best is not None and best != old:
            if old is None:  # it was waiting in triage for a location
                await _dispatch_on(conn, ctx, batch, alert, best)
            else:
                await _record_best(conn, batch, alert["id"], best)
                if moved_enough(old, best, ctx.settings.redispatch_min_move_m):
                    await dispatching.redispatch_if_nearer(conn, ctx, batch, alert, best)
        await batch.flush(conn)
        return {"alert_id": str(alert["id"]), "status": alert["status"], "accepted": len(fixes)}


async def cancel(pool: asyncpg.Pool, ctx: Context, *, alert_id: str, person_id: str, pin: str,
                 source: str) -> dict:
    """The real PIN cancels and tells responders; the duress PIN answers the same but keeps the alert live.

    Every answer (cancel, duress, wrong PIN) comes no sooner than `cancel_answer_floor_s` after the request, so
    someone timing her phone cannot tell a duress cancel from a real one by how long it took.
    """
    loop = asyncio.get_running_loop()
    answer_at = loop.time() + ctx.settings.cancel_answer_floor_s
    try:
        return await _cancel(pool, ctx, alert_id=alert_id, person_id=person_id, pin=pin, source=source)
    finally:
        await asyncio.sleep(max(0.0, answer_at - loop.time()))


async def _cancel(pool: asyncpg.Pool, ctx: Context, *, alert_id: str, person_id: str, pin: str,
                  source: str) -> dict:
    async with pool.acquire() as conn:
        pins = await conn.fetchrow(queries.person_pins, person_id)
    verdict = await check_pins_async(pins["cancel_pin_hash"] if pins else None,
                                     pins["duress_pin_hash"] if pins else None, pin)
    async with pool.acquire() as conn:
        async with conn.transaction():
            now = ctx.clock.now()
            alert = await open_alert_of(conn, alert_id, person_id)
            if verdict != "wrong":
                return await _cancel_or_duress(conn, now, alert, verdict)
        # Recorded outside the refused request's transaction: the refusal is kept, nothing else changes.
        await security_event(conn, now, "wrong_pin", source, alert_id=str(alert["id"]))
    raise Forbidden("wrong PIN")


async def _cancel_or_duress(conn: asyncpg.Connection, now: datetime, alert, verdict: str) -> dict:
    # The same answer either way: a watcher looking at her screen must not learn which PIN she typed.
    answer = {"alert_id": str(alert["id"]), "status": "cancelled"}
    if alert["status"] == "cancelled" or (verdict == "duress" and alert["duress"]):
        return answer
    if alert["status"] not in ("open", "unanswered"):
        raise Conflict(f"alert is {alert['status']}")
    dispatches = await conn.fetch(queries.alert_dispatches, alert["id"])
    active = [d for d in dispatches if d["status"] in ACTIVE_DISPATCH]
    if verdict == "duress":
        await conn.execute(queries.set_alert_duress, alert["id"])
        await event(conn, alert["id"], now, "duress", priority="high")
        for d in active:
            await tell_responder(conn, now, d["responder_id"], "duress", {"code": d["code"]},
                                 alert_id=alert["id"], dispatch_id=d["id"])
        await tell_supervisor(conn, now, alert["region"], "duress", {}, alert_id=alert["id"])
        return answer
    await conn.execute(queries.set_alert_status, alert["id"], "cancelled", now)
    for d in active:
        await conn.execute(queries.set_dispatch_status, d["id"], "cancelled", None, now)
        await tell_responder(conn, now, d["responder_id"], "cancelled", {"code": d["code"]},
                             alert_id=alert["id"], dispatch_id=d["id"])
    await event(conn, alert["id"], now, "cancelled", by="person")
    return answer
