"""Check-in timers: if she has not checked in with her PIN by the time it runs out, her alert is raised.

She starts a timer before something dangerous (from the phone app or by SMS), may extend it while it runs, and
checks in with her PIN. Whoever holds her phone may not be her, so a check-in answers as the cancel flow does
(service/cancelling.py): the real PIN and the duress PIN give the same answer, every wrong PIN the same 403, none
sooner than `cancel_answer_floor_s`. The duress PIN also raises a duress alert at once. After
`cancel_max_wrong_pins` wrong PINs on a timer it is guarded: the real PIN is taken as duress from then on.

Bounds: a timer runs 1 minute to 24 hours. An extension adds its duration to the current due time (the time she
had left is kept, not lost), and the new due time may be at most 24 hours from now. Only a running timer is
extended; a timer past its due time is the engine's (engine/timers.py), even in the moment before it fires.
"""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

import asyncpg

from alertd.context import Context
from alertd.core.location import best_location
from alertd.core.model import Conflict, Forbidden, Invalid, Location, NotFound
from alertd.service import intake
from alertd.service.cancelling import mark_duress
from alertd.service.pins import verdict_for
from alertd.service.timeline import security_event
from alertd.store import queries

MIN_DURATION_S = 60
MAX_DURATION_S = 24 * 3600
# "Her phone's last fix" is believed for this long: an older fix says little about where she is now.
PHONE_FIX_MAX_AGE = timedelta(hours=1)


@dataclass(frozen=True)
class Started:
    answer: dict
    created: bool


def _answer(row) -> dict:
    return {"timer_id": str(row["id"]), "status": row["status"], "due_at": row["due_at"].isoformat()}


def _check_duration(duration_s: int) -> None:
    if not MIN_DURATION_S <= duration_s <= MAX_DURATION_S:
        raise Invalid(f"duration_s must be between {MIN_DURATION_S} and {MAX_DURATION_S} seconds (1 min to 24 h)")


def _key(timer_id: str) -> uuid.UUID:
    try:
        return uuid.UUID(timer_id)
    except ValueError:
        raise NotFound("no such timer") from None


async def _mine(conn: asyncpg.Connection, timer_id: str, person_id: str):
    """Lock a timer of hers; someone else's timer is 'not found', exactly like a missing one."""
    row = await conn.fetchrow(queries.lock_timer, _key(timer_id))
    if row is None or row["person_id"] != person_id:
        raise NotFound("no such timer")
    return row


async def _add_fix(conn: asyncpg.Connection, timer_id, fix: Location | None, now: datetime) -> None:
    if fix is not None:
        await conn.execute(queries.insert_timer_fix, timer_id, fix.lon, fix.lat, fix.accuracy_m, fix.source,
                           fix.fix_time, now)


async def start(pool: asyncpg.Pool, ctx: Context, *, person_id: str, device_id: str | None, channel: str,
                client_timer_id: str, duration_s: int, location: Location | None = None) -> Started:
    """Start her timer; the same key from the same device again finds the timer it started (created False)."""
    _check_duration(duration_s)
    async with pool.acquire() as conn, conn.transaction():
        now = ctx.clock.now()
        row = await conn.fetchrow(queries.insert_timer, uuid.uuid4(), person_id, device_id, client_timer_id, channel,
                                  now, now + timedelta(seconds=duration_s))
        if row is None:
            row = await conn.fetchrow(queries.get_timer_by_client, device_id, client_timer_id)
            if row["person_id"] != person_id:  # a device belongs to one person: only a re-enrolled device gets here
                raise Conflict("this client_timer_id belongs to another timer")
            return Started(_answer(row), created=False)
        await _add_fix(conn, row["id"], location, now)
        # Wake every engine to plan its next sleep with this due time (its poll interval bounds it anyway).
        await conn.execute(queries.notify_wake, "schedule")
        return Started(_answer(row), created=True)


async def extend(pool: asyncpg.Pool, ctx: Context, *, timer_id: str, person_id: str, duration_s: int,
                 location: Location | None = None) -> dict:
    """Add duration_s to her running timer's due time (at most 24 h from now)."""
    _check_duration(duration_s)
    async with pool.acquire() as conn, conn.transaction():
        now = ctx.clock.now()
        timer = await _mine(conn, timer_id, person_id)
        if timer["status"] != "running" or timer["due_at"] <= now:
            raise Conflict(f"timer is {'expired' if timer['status'] == 'running' else timer['status']}")
        due_at = timer["due_at"] + timedelta(seconds=duration_s)
        if due_at > now + timedelta(seconds=MAX_DURATION_S):
            raise Invalid("a timer runs out at most 24 hours from now")
        row = await conn.fetchrow(queries.set_timer_due, timer["id"], due_at)
        await _add_fix(conn, timer["id"], location, now)
        return _answer(row)


async def get(pool: asyncpg.Pool, *, timer_id: str, person_id: str) -> dict:
    async with pool.acquire() as conn:
        row = await conn.fetchrow(queries.get_timer, _key(timer_id))
    if row is None or row["person_id"] != person_id:
        raise NotFound("no such timer")
    return _answer(row)


async def check_in(pool: asyncpg.Pool, ctx: Context, *, timer_id: str, person_id: str, pin: str,
                   source: str) -> dict:
    """Check in her timer with a PIN. Every answer (real,
    duress, wrong or guarded) comes no sooner than `cancel_answer_floor_s` after the request."""
    loop = asyncio.get_running_loop()
    answer_at = loop.time() + ctx.settings.cancel_answer_floor_s
    try:
        return await _check_in(pool, ctx, timer_id=timer_id, person_id=person_id, pin=pin, source=source)
    finally:
        await asyncio.sleep(max(0.0, answer_at - loop.time()))


async def _check_in(pool: asyncpg.Pool, ctx: Context, *, timer_id: str, person_id: str, pin: str,
                    source: str) -> dict:
    verdict = await verdict_for(pool, person_id, pin)
    async with pool.acquire() as conn:
        now = ctx.clock.now()
        async with conn.transaction():
            timer = await _mine(conn, timer_id, person_id)
            if verdict == "cancel" and timer["guarded_at"] is not None:
                verdict, why = "duress", {"reason": "guarded_after_wrong_pins"}
            else:
                why = {}
            if verdict != "wrong":
                answer = await _checked_in(conn, ctx, now, timer, duress=verdict == "duress", **why)
            else:
                answer = None
                counted = await conn.fetchrow(queries.count_timer_wrong_pin, timer["id"], now,
                                              ctx.settings.cancel_max_wrong_pins)
        if answer is None:
            # The refusal is recorded once the transaction is over: the count is kept, nothing else changed.
            await security_event(conn, now, "wrong_pin", source, timer_id=timer_id, wrong_pins=counted["wrong_pins"])
            raise Forbidden("wrong PIN")
    if answer["status"] != "checked_in":  # too late, whichever PIN: the engine raises (or raised) her alert
        raise Conflict("timer is expired")
    return answer


async def _checked_in(conn: asyncpg.Connection, ctx: Context, now: datetime, timer, *, duress: bool, **why) -> dict:
    """The same answer for the real and the duress PIN: a watcher must not learn which one she typed."""
    alert_id = None
    if duress and not timer["duress"]:
        alert_id = await raise_duress(conn, ctx, now, timer, **why)
    if timer["status"] == "expired" or (timer["status"] == "running" and timer["due_at"] <= now):
        if alert_id is not None:  # the duress is marked; the timer stays the engine's
            await conn.execute(queries.set_timer_duress, timer["id"], alert_id)
        return {"timer_id": str(timer["id"]), "status": "expired"}
    row = await conn.fetchrow(queries.set_timer_checked_in, timer["id"], now, duress, alert_id)
    return {"timer_id": str(row["id"]), "status": "checked_in"}


async def best_for(conn: asyncpg.Connection, ctx: Context, timer_id, person_id: str, now: datetime) -> Location | None:
    """Her best known location for a timer's alert: the timer's fixes, else her phone's last fix within
    PHONE_FIX_MAX_AGE (None: the alert falls back to her home, as every alert without a fix does)."""
    fixes = [Location.of_row(r) for r in await conn.fetch(queries.list_timer_fixes, timer_id)]
    if not fixes and (last := await conn.fetchrow(queries.get_phone_last_fix, person_id, now - PHONE_FIX_MAX_AGE)):
        fixes = [Location.of_row(last)]
    return best_location(fixes, None, ctx.settings.accurate_fix_m)


async def raise_alert(conn: asyncpg.Connection, ctx: Context, now: datetime, timer, *, key: str,
                      **details) -> intake.Raised:
    """In the caller's transaction: her alert for this timer, channel `timer`, at her best known location."""
    return await intake.create_alert(
        conn, ctx, now, person_id=timer["person_id"], device_id=timer["device_id"], channel="timer",
        client_alert_id=key, triggered_at=now, location=await best_for(conn, ctx, timer["id"], timer["person_id"], now),
        timer_id=str(timer["id"]), **details)


async def raise_duress(conn: asyncpg.Connection, ctx: Context, now: datetime, timer, **why) -> uuid.UUID:
    """A duress check-in: her alert raised (or her open one joined) and marked duress, as a duress cancel does."""
    raised = await raise_alert(conn, ctx, now, timer, key=f"timer-duress:{timer['id']}", timer_event="duress")
    alert = await conn.fetchrow(queries.lock_alert, uuid.UUID(raised.alert_id))
    if not alert["duress"]:
        await mark_duress(conn, now, alert, via="timer_checkin", **why)
    return alert["id"]
