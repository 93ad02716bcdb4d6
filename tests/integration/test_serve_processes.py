"""Real `alertd serve` processes: deadlines that passed while none ran fire on start, once, across instances."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta

import aiohttp

from alertd.clock import FakeClock
from alertd.context import Context
from alertd.local.services import free_port, wait_port
from alertd.service import intake
from alertd.store.db import create_pool
from tests.helpers import app_alert, enrol, seed_responders


def _spawn(settings, port: int, logdir) -> subprocess.Popen:
    env = {**os.environ, **settings.replace(http_port=port, public_url=f"http://127.0.0.1:{port}").as_env()}
    with open(logdir / f"serve-{port}.log", "wb") as log:
        return subprocess.Popen([sys.executable, "-m", "alertd", "serve"], env=env,
                                stdout=subprocess.DEVNULL, stderr=log)


def _not_routine(log: str) -> str:
    """A failed process's log without its routine info lines (what went wrong is in the rest), and its end."""
    lines = log.splitlines()
    unusual = [line for line in lines if '"level": "info"' not in line]
    return "\n".join(unusual[-60:]) + "\n...\n" + "\n".join(lines[-5:])


def _listeners(port: int) -> int:
    """Sockets listening on 127.0.0.1:port (from /proc/net/tcp: state 0A is LISTEN)."""
    wanted = f"0100007F:{port:04X}"
    with open("/proc/net/tcp") as f:
        return sum(1 for line in f.readlines()[1:] if line.split()[1] == wanted and line.split()[3] == "0A")


async def _ready(http: aiohttp.ClientSession, port: int, timeout: float = 15) -> bool:
    """Poll /readyz: 200 once the database and the broker both answer."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        async with http.get(f"http://127.0.0.1:{port}/readyz") as resp:
            if resp.status == 200:
                return True
        await asyncio.sleep(0.1)
    return False


async def test_three_serve_processes_fire_overdue_deadlines_exactly_once(settings, db, tmp_path):

    await seed_responders(db)
    # Alerts raised 10 minutes ago, while no alertd was running: every first deadline is overdue now.
    past = FakeClock(datetime.now(UTC) - timedelta(minutes=10))
    pool = await create_pool(settings.database_url, 1, 2)
    try:
        for i in range(15):
            person = await enrol(db, past.now())
            async with pool.acquire() as conn, conn.transaction():
                await intake.raise_group(conn, Context(settings, past), [app_alert(person, f"p{i}", past, i % 9, 30.0)])
    finally:
        await pool.close()
    assert await db.fetchval("SELECT count(*) FROM dispatches WHERE status = 'pending'") == 45

    ports = [free_port() for _ in range(3)]
    procs = [_spawn(settings, port, tmp_path) for port in ports]
    try:
        for port in ports:
            await asyncio.get_running_loop().run_in_executor(None, wait_port, port, 20)
        async with aiohttp.ClientSession() as http:
            for port in ports:
                assert await _ready(http, port), f"instance on {port} never became ready"
        # wait for the work to be done (polling the database, not sleeping for a deadline)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if await db.fetchval("SELECT count(*) FROM dispatches WHERE expired_at IS NOT NULL") >= 45:
                break
            await asyncio.sleep(0.1)
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            p.wait(15)
    expired = await db.fetch("SELECT dispatch_id, count(*) AS n FROM alert_events WHERE type = 'expired' "
                             "GROUP BY dispatch_id")
    assert len(expired) == 45 and {r["n"] for r in expired} == {1}
    # each missed dispatch got exactly one successor
    assert await db.fetchval("SELECT count(*) FROM dispatches WHERE attempt = 2") == 45
    lateness = await db.fetchval("SELECT max(expired_at - ack_deadline) FROM dispatches WHERE expired_at IS NOT NULL")
    assert lateness > timedelta(minutes=5)  # they were overdue, and fired on start
    for p, port in zip(procs, ports, strict=True):
        log = (tmp_path / f"serve-{port}.log").read_text()
        assert p.returncode == 0, _not_routine(log)
        assert "+7701" not in log  # no survivor phone number in the logs


async def test_serve_processes_share_one_port_with_reuse_port(settings, db, tmp_path):
    """ALERTD_HTTP_REUSE_PORT: a second `alertd serve` on the same port listens beside the first; without it, the
    port is taken and the process exits."""
    port = free_port()
    shared = settings.replace(http_reuse_port=True)
    procs = [_spawn(shared, port, tmp_path)]
    try:
        await asyncio.get_running_loop().run_in_executor(None, wait_port, port, 20)
        procs.append(_spawn(shared, port, tmp_path))
        async with aiohttp.ClientSession() as http:
            assert await _ready(http, port)
            deadline = time.monotonic() + 20
            listening = 0
            while listening < 2 and time.monotonic() < deadline and all(p.poll() is None for p in procs):
                listening = _listeners(port)
                await asyncio.sleep(0.1)
        assert all(p.poll() is None for p in procs), "a process sharing the port exited"
        assert listening == 2
        taken = _spawn(settings, port, tmp_path)  # no reuse_port: the port is taken
        assert taken.wait(timeout=20) != 0
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            p.wait(timeout=20)
