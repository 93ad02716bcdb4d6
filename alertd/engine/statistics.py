"""First statistics: a new database's alert tables are analyzed as soon as they hold enough rows to say anything.

Autovacuum analyzes a table once it has changed by a tenth, but only on its rounds (`autovacuum_naptime`, a minute),
so a database that goes from empty to tens of thousands of alerts in its first minute (a new deployment under load,
or one restored from a dump, which carries no statistics) is planned on none: PostgreSQL then takes any
`alert_id = $1` to match 0.5% of the table and reads every dispatch to find an alert's three (31.8 ms a call in
bench/sustained.py, against 0.1 with statistics). One ANALYZE with a thousand rows records how alert ids spread as a
share of the table, which stays true as it grows; from then on autovacuum keeps them.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import asyncpg

from alertd.context import Context
from alertd.engine import versions
from alertd.store import queries


class FirstStatistics:
    name = "statistics"
    version = 1

    def __init__(self, ctx: Context, min_rows: int = 1000, sweep_s: float = 10.0) -> None:
        self.ctx = ctx
        self.min_rows = min_rows
        self.sweep = timedelta(seconds=sweep_s)
        self._last_sweep: datetime | None = None
        self.analyzed = 0  # times this instance analyzed the alert tables

    async def process_due(self, pool: asyncpg.Pool, now: datetime) -> int:
        """Every sweep: if an alert table has rows but has never been analyzed, analyze them all (once; any
        instance may, and two at once do no harm). Returns 0: nothing else waits on it."""
        if self._last_sweep is not None and self._last_sweep <= now < self._last_sweep + self.sweep:
            return 0
        async with pool.acquire() as conn, conn.transaction():
            await versions.hold(conn, self)
            if await conn.fetch(queries.find_unanalyzed_alert_tables, self.min_rows):
                await conn.execute(queries.update_alert_statistics)
                self.analyzed += 1
        self._last_sweep = now
        return 0

    async def next_due(self, pool: asyncpg.Pool) -> datetime | None:
        return None
