"""Retention: precise whereabouts and her words go once an alert has been closed for the precise period; security
events and the audit log after the audit period. Each pass is recorded with counts, never content."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

import asyncpg

from alertd.context import Context
from alertd.engine import versions
from alertd.settings import Settings
from alertd.store import queries

log = logging.getLogger("alertd.engine.retention")


async def purge_batch(conn: asyncpg.Connection, settings: Settings, now: datetime, batch: int) -> dict[str, int]:
    """Purge up to `batch` items of each kind that are due at `now`; the counts of what went, by kind."""
    precise = now - timedelta(days=settings.retention_precise_days)
    audit = now - timedelta(days=settings.retention_audit_days)
    counts: dict[str, int] = {}
    for query, args in ((queries.purge_alerts, (precise, batch, now)),
                        (queries.purge_sms, (precise, batch)),
                        (queries.purge_timer_fixes, (precise, batch)),
                        (queries.purge_audit, (audit, batch))):
        counts.update(dict(await conn.fetchrow(query, *args)))
    return counts


async def purge(conn: asyncpg.Connection, settings: Settings, now: datetime, *, actor: str, dry_run: bool = False,
                batch: int = 500) -> dict[str, int]:
    """Run batches until nothing more is due; what went (or, in a dry run, what would go and is left in place).

    A real purge commits batch by batch, each with its record; a dry run does the same work in one transaction
    and rolls it back, so its counts are exactly what a real purge at `now` would remove.
    """
    if not dry_run:
        return await _batches(conn, settings, now, batch, actor)
    transaction = conn.transaction()
    await transaction.start()
    try:
        return await _batches(conn, settings, now, batch, None)
    finally:
        await transaction.rollback()


async def _batches(conn: asyncpg.Connection, settings: Settings, now: datetime, batch: int,
                   actor: str | None) -> dict[str, int]:
    total: dict[str, int] = {}
    while True:
        async with conn.transaction():
            counts = await purge_batch(conn, settings, now, batch)
            if actor is not None and any(counts.values()):
                await conn.execute(queries.record_purge, now, actor, counts)
        for kind, n in counts.items():
            total[kind] = total.get(kind, 0) + n
        if max(counts.values()) < batch:
            return total


class Retention:
    name = "retention"
    version = 1

    def __init__(self, ctx: Context, batch: int = 500, sweep_s: float = 3600.0) -> None:
        self.ctx = ctx
        self.batch = batch
        # Retention counts in days: a pass runs when the earliest item falls due, and at least hourly (for what
        # the due time does not see, such as numbers of senders nobody enrolled); cycles in between cost nothing.
        self.sweep = timedelta(seconds=sweep_s)
        self._next_at: datetime | None = None

    async def process_due(self, pool: asyncpg.Pool, now: datetime) -> int:
        """Purge one batch of everything due (SKIP LOCKED: instances share the work) and record it."""
        if self._next_at is not None and now < self._next_at:
            return 0
        settings = self.ctx.settings
        async with pool.acquire() as conn:
            async with conn.transaction():
                await versions.hold(conn, self)
                counts = await purge_batch(conn, settings, now, self.batch)
                if any(counts.values()):
                    await conn.execute(queries.record_purge, now, "engine", counts)
            if max(counts.values()) < self.batch:  # a full batch may have more behind it: sweep again at once
                due = await conn.fetchval(queries.get_retention_next_due,
                                          timedelta(days=settings.retention_precise_days),
                                          timedelta(days=settings.retention_audit_days))
                self._next_at = now + self.sweep if due is None or due <= now else min(now + self.sweep, due)
        if any(counts.values()):
            log.info("retention purge", extra={"fields": counts})
        return sum(counts.values())

    async def next_due(self, pool: asyncpg.Pool) -> datetime | None:
        return self._next_at
