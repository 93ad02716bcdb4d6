"""Alert intake: raise, add locations, cancel. Each call is one transaction; callers answer after it commits."""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass
from datetime import datetime

import asyncpg

from alertd.core.location import best_location, moved_enough
from alertd.core.model import ACTIVE_DISPATCH, KINDS, Conflict, Forbidden, Location, NotFound
from alertd.service import dispatching
from alertd.service.context import Context
from alertd.service.pins import check_pins_async
from alertd.service.timeline import Batch, event, security_event, tell_responder, tell_supervisor
from alertd.store import queries


@dataclass(frozen=True)
class Raised:
    alert_id: str
    status: str
    created: bool


async def raise_alert(pool: asyncpg.Pool, ctx: Context, *, person_id: str, device_id: str | None, channel: str,
                      client_alert_id: str | None, triggered_at: datetime, location: Location | None,
                      stale_token: bool = False, verified: bool = True) -> Raised:
    """Commit an alert with its fix, its best location, its dispatches, outbox rows and timeline together."""
    async with pool.acquire() as conn, conn.transaction():
        alert_id = await create_alert(conn, ctx, ctx.clock.now(), person_id=person_id, device_id=device_id,
                                      channel=channel, client_alert_id=client_alert_id, triggered_at=triggered_at,
                                      location=location, stale_token=stale_token, verified=verified)
        if alert_id is None:  # the same client_alert_id again: the first alert stands
            row = await conn.fetchrow(queries.alert_by_client_id, device_id, client_alert_id)
            return Raised(str(row["id"]), row["status"], created=False)
        return Raised(str(alert_id), "open", created=True)


async def create_alert(conn: asyncpg.Connection, ctx: Context, now: datetime, *, person_id: str,
                       device_id: str | None, channel: str, client_alert_id: str | None, triggered_at: datetime,
                       location: Location | None, stale_token: bool = False, verified: bool = True,
                       **raised: object):
    """In the caller's transaction: the alert, its fix, its best location and its dispatches, with their outbox
    rows and timeline. Every channel raises alerts through here. None when this device already sent this
    client_alert_id (the first alert stands). `raised` adds channel details to the `raised` event."""
    alert_id = await conn.fetchval(queries.insert_alert, uuid.uuid4(), person_id, device_id, channel,
                                   client_alert_id, triggered_at, now, stale_token, verified)
    if alert_id is None:
        return None
    batch = Batch(now)
    batch.event(alert_id, "raised", channel=channel, stale_token=stale_token, verified=verified, **raised)
    if location is not None:
        await conn.execute(queries.insert_fix, alert_id, location.lon, location.lat, location.accuracy_m,
                           location.source, location.fix_time, now)
    # A new alert's only fix is the one it came with: no need to read its trail back.
    fixes = [location] if location is not None else []
    await _locate_and_dispatch(conn, ctx, batch, _new_alert(alert_id), person_id, fixes)
    await batch.flush(conn)
    return alert_id


def _new_alert(alert_id) -> dict:
    """What dispatching needs of an alert that was inserted in this transaction."""
    return {"id": alert_id, "region": None, "priority": "normal", "duress": False}


async def _locate_and_dispatch(conn: asyncpg.Connection, ctx: Context, batch: Batch, alert, person_id: str,
                               fixes: list[Location]) -> None:
    best = await _best(conn, ctx, person_id, fixes)
    if best is None:
        await conn.execute(queries.set_alert_triage, alert["id"], True)
        batch.event(alert["id"], "triage", reason="no usable location")
        batch.tell_supervisor(None, "triage", {"reason": "no usable location"}, alert_id=alert["id"])
        return
    await _dispatch_on(conn, ctx, batch, alert, best)


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
        home_row = await conn.fetchrow(queries.person_home, person_id)
        home = Location.from_row(home_row) if home_row else None
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
        for fix in fixes:
            await conn.execute(queries.insert_fix, alert["id"], fix.lon, fix.lat, fix.accuracy_m, fix.source,
                               fix.fix_time, now)
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
