"""Button supervision: a button silent past its period, or with a low battery, raises a notice (once per episode).

Notices go to the button's caseworker (or, without one, the region's supervisors) on the console, and to the
engineers' log; never to the survivor's own phone.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import asyncpg

from alertd.context import Context
from alertd.engine import versions
from alertd.service.timeline import Batch
from alertd.store import queries


class Supervision:
    name = "supervision"
    version = 1

    def __init__(self, ctx: Context, batch: int = 100, sweep_s: float = 1.0) -> None:
        self.ctx = ctx
        self.batch = batch
        # The engine cycles on every wake (several per alert); supervision needs no more than a sweep a second.
        self.sweep = timedelta(seconds=sweep_s)
        self._last_sweep: datetime | None = None

    @property
    def silence(self) -> timedelta:
        return timedelta(seconds=self.ctx.settings.button_silence_s)

    async def process_due(self, pool: asyncpg.Pool, now: datetime) -> int:
        """Claim buttons newly silent or low on battery (SKIP LOCKED: any instance) and queue their notices."""
        if self._last_sweep is not None and self._last_sweep <= now < self._last_sweep + self.sweep:
            return 0
        async with pool.acquire() as conn, conn.transaction():
            await versions.hold(conn, self)
            silent = await conn.fetch(queries.claim_silent_buttons, now - self.silence, now, self.batch)
            low = await conn.fetch(queries.claim_low_battery_buttons, self.ctx.settings.button_low_battery, now,
                                   self.batch)
            for row in silent:
                await _notice(conn, now, row, "button_silent")
            for row in low:
                await _notice(conn, now, row, "button_low_battery")
            if silent or low:
                await conn.execute(queries.notify_wake, "outbox")
        done = len(silent) + len(low)
        if done < self.batch:  # a full batch may have more behind it: sweep again at once
            self._last_sweep = now
        return done

    async def next_due(self, pool: asyncpg.Pool) -> datetime | None:
        async with pool.acquire() as conn:
            oldest = await conn.fetchval(queries.get_next_silence)
        if oldest is None:
            return None
        due = oldest + self.silence
        # never earlier than the next sweep, or the engine would spin until then
        return due if self._last_sweep is None else max(due, self._last_sweep + self.sweep)


async def _notice(conn: asyncpg.Connection, now: datetime, row, template: str) -> None:
    payload = {
        "device_id": row["device_id"],
        "person_id": row["person_id"],  # pseudonymous; the caseworker knows whose it is
        "last_seen_at": row["last_seen_at"].isoformat() if row["last_seen_at"] else None,
        "battery": None if row["battery"] is None else round(row["battery"], 2),
    }
    recipient = row["caseworker_id"] or f"supervisor:{row['region'] or 'unknown'}"
    batch = Batch(now)
    batch.message("console", recipient, template, payload)
    batch.message("log", "engineers", template, payload)
    await batch.flush(conn)
