"""Check-in timers that ran out: raise her alert, once, on any instance, at most a poll interval late.

A timer is claimed and marked expired, its alert raised and its id kept on the timer, in one transaction: another
instance skips the locked row, and after the commit the timer is no longer running, so it fires exactly once. A
timer that fell due while no engine ran is simply due at the next start.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime

import asyncpg

from alertd.context import Context
from alertd.engine import versions
from alertd.service import timers
from alertd.store import queries

log = logging.getLogger("alertd.engine.timers")


class Timers:
    name = "timers"
    version = 1

    def __init__(self, ctx: Context, batch: int = 50, observe: Callable[[float], None] | None = None) -> None:
        self.ctx = ctx
        self.batch = batch
        self.observe = observe or (lambda _lateness: None)

    async def process_due(self, pool: asyncpg.Pool, now: datetime) -> int:
        """Claim up to a batch of due running timers (SKIP LOCKED) and raise each one's alert (channel `timer`)."""
        async with pool.acquire() as conn, conn.transaction():
            await versions.hold(conn, self)
            due = await conn.fetch(queries.claim_due_timers, now, self.batch)
            raised = []
            for timer in due:
                alert = await timers.raise_alert(conn, self.ctx, now, timer, key=f"timer:{timer['id']}",
                                                 timer_event="expired")
                await conn.execute(queries.set_timer_alert, timer["id"], alert.alert_id)
                raised.append(alert)
        for timer, alert in zip(due, raised, strict=True):
            lateness = (now - timer["due_at"]).total_seconds()
            self.observe(lateness)
            log.info("timer expired: alert raised", extra={"fields": {
                "timer_id": str(timer["id"]), "alert_id": alert.alert_id, "made": alert.made,
                "lateness_s": round(lateness, 3)}})
        return len(due)

    async def next_due(self, pool: asyncpg.Pool) -> datetime | None:
        async with pool.acquire() as conn:
            return await conn.fetchval(queries.get_next_timer_due)
