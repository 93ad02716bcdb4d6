"""First statistics: alert tables that grew from empty faster than autovacuum's rounds are analyzed once they
hold enough rows, so reads by alert id stop being planned as reads of every row."""

from __future__ import annotations

from alertd.context import Context
from alertd.engine.statistics import FirstStatistics
from alertd.service import intake
from alertd.store.db import create_pool
from tests.helpers import app_alert, enrol, seed_responders

TABLES = ("alerts", "dispatches", "alert_events", "location_fixes", "alert_repeats")


async def test_alert_tables_without_statistics_are_analyzed_once_they_have_rows(settings, clock, db):
    await seed_responders(db)
    for table in TABLES:
        # as on a new database before autovacuum's first round: no statistics, never analyzed (earlier tests may
        # have left some, and the test cluster's autovacuum must not analyze them while this test runs)
        await db.execute(f"ALTER TABLE {table} SET (autovacuum_enabled = false)")
        await db.execute(f"DELETE FROM pg_statistic WHERE starelid = '{table}'::regclass")
        await db.execute(f"SELECT pg_stat_reset_single_table_counters('{table}'::regclass)")
    try:
        await _first_statistics(settings, clock, db)
    finally:
        for table in TABLES:
            await db.execute(f"ALTER TABLE {table} RESET (autovacuum_enabled)")


async def _first_statistics(settings, clock, db):
    ctx = Context(settings, clock)
    pool = await create_pool(settings.database_url, 1, 2)
    try:
        module = FirstStatistics(ctx, min_rows=50, sweep_s=0)
        for i in range(80):  # 80 alerts, 240 dispatches: from empty, no statistics yet
            person = await enrol(db, clock.now())
            async with pool.acquire() as conn:
                async with conn.transaction():
                    await intake.raise_group(conn, ctx, [app_alert(person, f"s{i}", clock, i % 9, 30.0)])
                # the writer's row counts reach pg_stat before this returns (a backend reports them at most once a
                # second on its own: a quick test would look at none)
                await conn.execute("SELECT pg_stat_force_next_flush()")
        assert await db.fetchval("SELECT count(*) FROM pg_stats WHERE tablename = 'dispatches'") == 0
        assert await module.process_due(pool, clock.now()) == 0
        assert module.analyzed == 1
        n_distinct = await db.fetchval("SELECT n_distinct FROM pg_stats WHERE tablename = 'dispatches' "
                                       "AND attname = 'alert_id'")
        assert n_distinct is not None and n_distinct < 0  # a share of the table: it holds as the table grows
        estimate = await db.fetchval("SELECT n_distinct FROM pg_stats WHERE tablename = 'alert_events' "
                                     "AND attname = 'alert_id'")
        assert estimate is not None  # every alert table, in one go
        # analyzed now: the next sweeps do nothing
        assert await module.process_due(pool, clock.now()) == 0
        assert module.analyzed == 1
    finally:
        await pool.close()


async def test_the_engine_runs_it(app_client):
    from alertd.web.keys import ENGINE

    assert "statistics" in {module.name for module in app_client.app[ENGINE].modules}
