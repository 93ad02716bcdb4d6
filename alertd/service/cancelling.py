"""Cancelling an alert with her PIN: the real PIN cancels, the duress PIN only seems to, guessing gets nowhere.

Whoever holds her phone may not be her. Every answer looks and takes the same whatever happened behind it: the real
PIN and the duress PIN answer the same `cancelled`, every wrong PIN the same 403, and none comes sooner than
`cancel_answer_floor_s`. After `cancel_max_wrong_pins` wrong PINs on an alert it is guarded: responders and the
supervisor are told someone may be guessing her PIN and its priority is raised; from then on the real PIN is taken
as duress (it answers `cancelled` and cancels nothing), and wrong PINs keep getting the same 403.
"""

from __future__ import annotations

import asyncio
from datetime import datetime

import asyncpg

from alertd.context import Context
from alertd.core.model import ACTIVE_DISPATCH, Conflict, Forbidden
from alertd.service.intake import open_alert_of, refuse_stale_token, stale_token_may_act
from alertd.service.pins import verdict_for
from alertd.service.timeline import event, security_event, tell_responder, tell_supervisor
from alertd.store import queries


async def cancel(pool: asyncpg.Pool, ctx: Context, *, alert_id: str, person_id: str, pin: str, source: str,
                 device_id: str | None = None, stale_token: bool = False) -> dict:
    """Cancel her alert with a PIN; every answer (cancel, duress, wrong or guarded) comes no sooner than
    `cancel_answer_floor_s` after the request, so someone timing her phone learns nothing from it."""
    loop = asyncio.get_running_loop()
    answer_at = loop.time() + ctx.settings.cancel_answer_floor_s
    try:
        return await _cancel(pool, ctx, alert_id=alert_id, person_id=person_id, pin=pin, source=source,
                             device_id=device_id, stale_token=stale_token)
    finally:
        await asyncio.sleep(max(0.0, answer_at - loop.time()))


async def _cancel(pool: asyncpg.Pool, ctx: Context, *, alert_id: str, person_id: str, pin: str, source: str,
                  device_id: str | None, stale_token: bool) -> dict:
    verdict = await verdict_for(pool, person_id, pin)
    async with pool.acquire() as conn:
        now = ctx.clock.now()
        async with conn.transaction():
            alert = await open_alert_of(conn, alert_id, person_id)
            stale = stale_token and not await stale_token_may_act(conn, alert, device_id)
            if not stale:
                guard = await conn.fetchrow(queries.get_cancel_guard, alert["id"])
                if verdict == "cancel" and guard["cancel_guarded_at"] is not None:
                    return await _cancel_or_duress(conn, now, alert, "duress", reason="guarded_after_wrong_pins")
                if verdict != "wrong":
                    return await _cancel_or_duress(conn, now, alert, verdict)
                wrong_pins = await _wrong_pin(conn, ctx, now, alert, guard)
        # Refusals are recorded once the transaction is over: the refusal (and the count) is kept, nothing else.
        if stale:
            await refuse_stale_token(conn, now, alert, device_id, source)
        await security_event(conn, now, "wrong_pin", source, alert_id=str(alert["id"]), wrong_pins=wrong_pins)
    raise Forbidden("wrong PIN")


async def _wrong_pin(conn: asyncpg.Connection, ctx: Context, now: datetime, alert, guard) -> int:
    """Count a wrong PIN; the one that reaches the limit guards a live alert and tells its responders."""
    counted = await conn.fetchrow(queries.count_wrong_pin, alert["id"], now, ctx.settings.cancel_max_wrong_pins)
    just_guarded = guard["cancel_guarded_at"] is None and counted["cancel_guarded_at"] is not None
    if just_guarded and alert["status"] in ("open", "unanswered"):
        await conn.execute(queries.raise_alert_priority, alert["id"])
        await event(conn, alert["id"], now, "cancel_guarded", wrong_pins=counted["wrong_pins"], priority="high")
        for d in await conn.fetch(queries.list_alert_dispatches, alert["id"]):
            if d["status"] in ACTIVE_DISPATCH:
                await tell_responder(conn, now, d["responder_id"], "pin_guessing", {"code": d["code"]},
                                     alert_id=alert["id"], dispatch_id=d["id"])
        await tell_supervisor(conn, now, alert["region"], "pin_guessing", {"wrong_pins": counted["wrong_pins"]},
                              alert_id=alert["id"])
    return counted["wrong_pins"]


async def _cancel_or_duress(conn: asyncpg.Connection, now: datetime, alert, verdict: str, **why) -> dict:
    # The same answer either way: a watcher looking at her screen must not learn which PIN she typed.
    answer = {"alert_id": str(alert["id"]), "status": "cancelled"}
    if alert["status"] == "cancelled" or (verdict == "duress" and alert["duress"]):
        return answer
    if alert["status"] not in ("open", "unanswered"):
        raise Conflict(f"alert is {alert['status']}")
    if verdict == "duress":
        await mark_duress(conn, now, alert, **why)
        return answer
    dispatches = await conn.fetch(queries.list_alert_dispatches, alert["id"])
    active = [d for d in dispatches if d["status"] in ACTIVE_DISPATCH]
    await conn.execute(queries.set_alert_status, alert["id"], "cancelled", now)
    for d in active:
        await conn.execute(queries.set_dispatch_status, d["id"], "cancelled", None, now)
        await tell_responder(conn, now, d["responder_id"], "cancelled", {"code": d["code"]},
                             alert_id=alert["id"], dispatch_id=d["id"])
    await event(conn, alert["id"], now, "cancelled", by="person")
    return answer


async def mark_duress(conn: asyncpg.Connection, now: datetime, alert, **why) -> None:
    """Her live alert (locked) was touched under duress: priority high, her responders and supervisor told.
    The duress PIN of a cancel and of a timer's check-in both end here."""
    await conn.execute(queries.set_alert_duress, alert["id"])
    await event(conn, alert["id"], now, "duress", priority="high", **why)
    for d in await conn.fetch(queries.list_alert_dispatches, alert["id"]):
        if d["status"] in ACTIVE_DISPATCH:
            await tell_responder(conn, now, d["responder_id"], "duress", {"code": d["code"]},
                                 alert_id=alert["id"], dispatch_id=d["id"])
    await tell_supervisor(conn, now, alert["region"], "duress", dict(why), alert_id=alert["id"])
