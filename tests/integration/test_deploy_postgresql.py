"""deploy/postgresql-alertd.conf, included by a real PostgreSQL: it parses, takes effect, and alertd's start-up
check (store.db.check_vacuum) finds nothing to warn about."""

from __future__ import annotations

import asyncio
import secrets
import subprocess
from pathlib import Path

import asyncpg

from alertd.local.services import LocalPostgres
from alertd.store.db import check_vacuum, connect

CONFIG = Path(__file__).resolve().parents[2] / "deploy" / "postgresql-alertd.conf"


async def test_postgresql_includes_the_deploy_config(workdir):
    pg = await asyncio.to_thread(LocalPostgres(workdir / f"pgconf-{secrets.token_hex(4)}", durable=False).start)
    try:
        conn = await asyncpg.connect(pg.dsn())
        await conn.execute("ALTER SYSTEM SET autovacuum_naptime = '5min'")  # something the config must override
        await conn.close()
        with (pg.datadir / "postgresql.conf").open("a") as conf:
            conf.write(f"\ninclude '{CONFIG}'\n")
        (pg.datadir / "postgresql.auto.conf").write_text("")  # ALTER SYSTEM would win over the include
        reload = subprocess.run([*pg.run_as, str(pg.bindir / "pg_ctl"), "-D", str(pg.datadir), "reload"],
                                capture_output=True, text=True)
        assert reload.returncode == 0, reload.stderr
        conn = await connect(pg.dsn())
        for _ in range(100):  # the postmaster applies a reload asynchronously
            if await conn.fetchval("SHOW autovacuum_naptime") == "1min":
                break
            await asyncio.sleep(0.05)
        assert await conn.fetchval("SHOW autovacuum_naptime") == "1min"
        assert await conn.fetchval("SHOW autovacuum") == "on"
        from_config = await conn.fetch("SELECT name, applied, error FROM pg_file_settings WHERE sourcefile = $1",
                                       str(CONFIG))
        assert {r["name"] for r in from_config} == {"autovacuum", "autovacuum_naptime"}
        assert all(r["applied"] and r["error"] is None for r in from_config)
        assert await check_vacuum(conn) is None
        await conn.close()
    finally:
        await asyncio.to_thread(pg.stop, "immediate")
