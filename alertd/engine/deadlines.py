"""Missed acknowledgement deadlines: expire, escalate, tell the supervisor. Each fires once, on any instance."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime

import asyncpg

from alertd.context import Context
from alertd.engine import versions
from alertd.service import dispatching
from alertd.service.timeline import Batch
from alertd.store import queries

log = logging.getLogger("alertd.engine.deadlines")


class Deadlines:
    name = "deadlines"
    version = 1

    def __init__(self, ctx: Context, batch: int = 100,
                 observe: Callable[[float, str, bool], None] | None = None) -> None:
        self.ctx = ctx
        self.batch = batch
        # observe(lateness_s, kind, drill): a drill's misses are counted apart from real alerts'
        self.observe = observe or (lambda _lateness, _kind, _drill: None)

    async def process_due(self, pool: asyncpg.Pool, now: datetime) -> int:
        """Claim up to a batch of due dispatches (SKIP LOCKED: another instance takes the rest) and escalate each."""
        async with pool.acquire() as conn, conn.transaction():
            await versions.hold(conn, self)
            expired = await conn.fetch(queries.claim_due_dispatches, now, self.batch)
            writes = Batch(now)
            for row in expired:
                await dispatching.escalate(conn, self.ctx, writes, row)
            await writes.flush(conn)
        for row in expired:
            lateness = (now - row["ack_deadline"]).total_seconds()
            self.observe(lateness, row["kind"], row["drill"])
            log.info("deadline missed", extra={"fields": {
                "dispatch_id": str(row["id"]), "kind": row["kind"], "responder_id": row["responder_id"],
                "lateness_s": round(lateness, 3), "drill": row["drill"]}})
        return len(expired)

    async def next_due(self, pool: asyncpg.Pool) -> datetime | None:
        async with pool.acquire() as conn:
            return await conn.fetchval(queries.get_next_deadline)
