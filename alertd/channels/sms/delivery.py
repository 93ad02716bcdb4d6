"""Delivery status of SMS to responders, as Twilio's status callback reports it.

An undelivered dispatch SMS means the responder cannot have read it: the timeline shows it on the dispatch, the
supervisor is told, and — unless a mobile unit's terminal received the dispatch over MQTT — the dispatch's
deadline is brought forward to now so the engine escalates it like any missed deadline (exactly once, on
whichever instance claims it). The console does not count: nobody may be watching it.
"""

from __future__ import annotations

import logging

import asyncpg

from alertd.context import Context
from alertd.service import proofs
from alertd.service.timeline import event, tell_supervisor
from alertd.store import queries

log = logging.getLogger("alertd.sms")

# Twilio's message statuses in the order they happen; callbacks can arrive out of order.
_RANK = {"accepted": 0, "scheduled": 0, "queued": 1, "sending": 2, "sent": 3,
         "delivered": 4, "undelivered": 4, "failed": 4, "canceled": 4, "read": 5}
FAILED = ("undelivered", "failed")


def supersedes(new: str, old: str | None) -> bool:
    """Whether a reported status moves a message forward (a late 'sent' never undoes 'delivered')."""
    return old is None or _RANK.get(new, 0) > _RANK.get(old, 0)


async def record_status(pool: asyncpg.Pool, ctx: Context, sid: str, status: str, error_code: str | None) -> str:
    """Record one status callback; returns what was done (for the log and tests)."""
    async with pool.acquire() as conn, conn.transaction():
        now = ctx.clock.now()
        row = await conn.fetchrow(queries.lock_sms_by_sid, sid)
        if row is None:
            log.info("status for an unknown message", extra={"fields": {"status": status}})
            return "unknown"
        if not supersedes(status, row["delivery"]):
            return "stale"
        await conn.execute(queries.set_sms_delivery, row["outbox_id"], status, error_code, now)
        if (status == "delivered" and row["template"] == proofs.SELF_TEST_SMS
                and await proofs.sms_delivered(conn, now, recipient=row["recipient"], outbox_id=row["outbox_id"])):
            return "proven"  # her confirmation arrived: SMS reaches her phone
        if row["dispatch_id"] is None or row["template"] != "dispatch":
            return "recorded"
        if status == "delivered":
            await event(conn, row["alert_id"], now, "sms_delivered", dispatch_id=row["dispatch_id"],
                        responder_id=row["recipient"])
            return "delivered"
        if status not in FAILED:
            return "recorded"
        alert = await conn.fetchrow(queries.lock_alert, row["alert_id"])  # lock order: alert, then dispatch
        await event(conn, row["alert_id"], now, "sms_undelivered", dispatch_id=row["dispatch_id"],
                    responder_id=row["recipient"], status=status, error_code=error_code)
        await tell_supervisor(conn, now, alert["region"], "sms_undelivered",
                              {"code": row["code"], "responder_id": row["recipient"], "error_code": error_code},
                              alert_id=row["alert_id"], dispatch_id=row["dispatch_id"])
        if await conn.fetchval(queries.set_deadline_now, row["dispatch_id"], now) is not None:
            await conn.execute(queries.notify_wake, "deadlines")
            return "escalating"
        return "undelivered"
