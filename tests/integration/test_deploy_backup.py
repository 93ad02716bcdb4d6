"""Restore drill with deploy/pgbackrest/: back up a live cluster, raise more alerts, restore to a new cluster at a
point in time, start `alertd serve` on it: exactly the alerts committed before that point are there with their
dispatches, and the deadlines pending at that point fire once."""

from __future__ import annotations

import asyncio
import json
import os
import pwd
import secrets
import shutil
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiohttp
import asyncpg
import pytest

from alertd.clock import FakeClock
from alertd.context import Context
from alertd.local.services import LocalPostgres, free_port, wait_port
from alertd.service import intake
from alertd.settings import Settings
from alertd.store.db import connect, create_pool
from alertd.store.migrate import migrate
from tests.helpers import app_alert, enrol, seed_responders
from tests.tls_support import render

DEPLOY = Path(__file__).resolve().parents[2] / "deploy" / "pgbackrest"
pytestmark = pytest.mark.slow


def _chown_to_postgres(*paths: Path) -> None:
    if os.geteuid() == 0:
        pw = pwd.getpwnam("postgres")
        for path in paths:
            for p in [path, *path.rglob("*")]:
                os.chown(p, pw.pw_uid, pw.pw_gid)


def _as_postgres(pg: LocalPostgres, env: dict[str, str], *command: str) -> str:
    """Run a deploy script as the postgres user (as on a database host), its output or the failure."""
    run = subprocess.run([*pg.run_as, "env", *(f"{k}={v}" for k, v in env.items()), *command],
                         capture_output=True, text=True, timeout=180)
    assert run.returncode == 0, f"{command[0]} failed:\n{run.stdout}\n{run.stderr}"
    return run.stdout


async def _raise(pool: asyncpg.Pool, settings: Settings, clock: FakeClock, person, n: int) -> str:
    async with pool.acquire() as conn, conn.transaction():
        raised = await intake.raise_group(conn, Context(settings, clock),
                                          [app_alert(person, f"drill-{n}", clock, n, 30.0)])
    return raised[0].alert_id


async def test_point_in_time_restore_then_serve(workdir, tmp_path, mosquitto):
    # not under tmp_path: pytest keeps its base folder private (0700), and these servers run as postgres
    root = workdir / f"drill-{secrets.token_hex(4)}"
    live = await asyncio.to_thread(LocalPostgres(root / "live").start)
    restored = None
    try:
        admin = await asyncpg.connect(live.dsn())
        await admin.execute("CREATE DATABASE alertd")
        await admin.close()
        conn = await connect(live.dsn("alertd"))
        await migrate(conn)
        await conn.close()

        # pgBackRest as deploy/ sets it up, in this folder
        for sub in ("repo", "lock", "log", "scripts"):
            (root / sub).mkdir()
        for script in ("setup-pitr.sh", "restore-pitr.sh"):
            shutil.copy(DEPLOY / script, root / "scripts" / script)
        config = root / "pgbackrest.conf"
        config.write_text(render((DEPLOY / "pgbackrest.conf").read_text(), {
            "/var/lib/pgbackrest": str(root / "repo"),
            "CHANGE-ME-to-a-long-random-passphrase": secrets.token_urlsafe(32),
            "/tmp/pgbackrest": str(root / "lock"),
            "/var/log/pgbackrest": str(root / "log"),
            "/var/lib/postgresql/15/main": str(live.datadir),
            "pg1-port=5432": f"pg1-port={live.port}",
            "/var/run/postgresql": str(live.directory),
        }))
        _chown_to_postgres(root / "repo", root / "lock", root / "log", root / "scripts", config)
        restart = f"{live.bindir / 'pg_ctl'} -D {live.datadir} -l {live.directory / 'postgres.log'} -w restart"
        env = {"PGBACKREST_CONFIG": str(config), "PGHOST": str(live.directory), "PGPORT": str(live.port),
               "PGUSER": "postgres", "PG_RESTART": restart}
        out = await asyncio.to_thread(_as_postgres, live, env, str(root / "scripts" / "setup-pitr.sh"))
        assert "status: ok" in out and "full backup:" in out

        conn = await connect(live.dsn("alertd"))  # the setup restarted PostgreSQL (archive_mode)
        # pgBackRest records a backup's stop time in whole seconds, and restores to a time only after it: what
        # follows happens within a second, so it starts once the database's clock is past that second
        info = await asyncio.to_thread(_as_postgres, live, env, "pgbackrest", f"--config={config}",
                                       "--stanza=alertd", "--output=json", "info")
        stop = json.loads(info)[0]["backup"][-1]["timestamp"]["stop"]
        while await conn.fetchval("SELECT extract(epoch FROM clock_timestamp())") < stop + 1:
            await asyncio.sleep(0.05)  # the wall clock passing a second pgBackRest wrote, not a deadline

        # after the backup: alerts raised ten minutes ago while no alertd ran (their deadlines are overdue)
        settings = Settings(database_url=live.dsn("alertd"), mqtt_url=mosquitto.service_url,
                            jwt_secret="drill-" + "x" * 40)
        past = FakeClock(datetime.now(UTC) - timedelta(minutes=10))
        await seed_responders(conn)
        people = [await enrol(conn, past.now()) for _ in range(5)]
        pool = await create_pool(live.dsn("alertd"), 1, 2)
        before = [await _raise(pool, settings, past, people[i], i) for i in range(3)]
        target = await conn.fetchval("SELECT clock_timestamp()")
        after = [await _raise(pool, settings, past, people[i], i) for i in range(3, 5)]
        await pool.close()
        await conn.close()
        await asyncio.to_thread(_as_postgres, live, env, "pgbackrest", f"--config={config}", "--stanza=alertd",
                                "check")  # the WAL with every commit above is in the repository

        # restore at the point in time into a new cluster (a drill: it archives nothing)
        (root / "restored").mkdir()
        _chown_to_postgres(root / "restored")
        pgdata = root / "restored" / "pgdata"
        await asyncio.to_thread(_as_postgres, live, {**env, "DRILL": "1"}, str(root / "scripts" / "restore-pitr.sh"),
                                target.isoformat(sep=" "), str(pgdata))
        restored = await asyncio.to_thread(LocalPostgres(root / "restored").start)
        admin = await asyncpg.connect(restored.dsn())
        for _ in range(300):
            if not await admin.fetchval("SELECT pg_is_in_recovery()"):
                break
            await asyncio.sleep(0.1)
        assert not await admin.fetchval("SELECT pg_is_in_recovery()")
        await admin.close()
        db = await connect(restored.dsn("alertd"))
        assert sorted(str(r["id"]) for r in await db.fetch("SELECT id FROM alerts")) == sorted(before)
        assert not set(after) & {str(r["id"]) for r in await db.fetch("SELECT id FROM alerts")}
        assert await db.fetchval("SELECT count(*) FROM dispatches WHERE status = 'pending'") == 9

        # alertd serve on the restored database fires each overdue deadline once
        port = free_port()
        served = settings.replace(database_url=restored.dsn("alertd"), http_port=port,
                                  public_url=f"http://127.0.0.1:{port}")
        with open(tmp_path / "serve.log", "wb") as log:
            service = subprocess.Popen([sys.executable, "-m", "alertd", "serve"],
                                       env={**os.environ, **served.as_env()}, stdout=subprocess.DEVNULL, stderr=log)
        try:
            await asyncio.to_thread(wait_port, port, 30)
            end = time.monotonic() + 30
            while time.monotonic() < end:  # polling the database for the service's work, not a deadline
                if await db.fetchval("SELECT count(*) FROM dispatches WHERE attempt = 2") >= 9:
                    break
                await asyncio.sleep(0.1)
            async with aiohttp.ClientSession() as http, http.get(f"http://127.0.0.1:{port}/readyz") as resp:
                assert resp.status == 200
        finally:
            service.terminate()
            service.wait(15)
        expired = await db.fetch("SELECT dispatch_id, count(*) AS n FROM alert_events WHERE type = 'expired' "
                                 "GROUP BY dispatch_id")
        assert len(expired) == 9 and {r["n"] for r in expired} == {1}
        assert await db.fetchval("SELECT count(*) FROM dispatches WHERE attempt = 2") == 9
        assert sorted({str(r["alert_id"]) for r in await db.fetch("SELECT alert_id FROM dispatches")}) == sorted(before)
        await db.close()
        live_db = await connect(live.dsn("alertd"))
        assert await live_db.fetchval("SELECT count(*) FROM alerts") == 5  # the live cluster is untouched
        await live_db.close()
    finally:
        if restored is not None:
            await asyncio.to_thread(restored.stop, "immediate")
        await asyncio.to_thread(live.stop, "immediate")
