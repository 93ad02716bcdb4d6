"""Several alertd instances (issue 13): three `alertd serve` on one database and one broker, one of them killed
with SIGKILL in the middle of a burst of due deadlines and button presses, then started again (as systemd would).

None lost, none doubled: every deadline fires exactly once (a firing cut off with the killed instance rolled
back, and another instance claims it), every acknowledged press is one alert; the killed instance's share of
unacknowledged MQTT messages comes back when it returns, and the buttons' own retries reach the others meanwhile.
Slow: `scripts/test.sh -m slow tests/integration/test_ha_instances.py`.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
from datetime import UTC, datetime, timedelta

import aiohttp
import pytest

from alertd.clock import FakeClock, SystemClock
from alertd.context import Context
from alertd.local.services import free_port, wait_port
from alertd.service import intake
from alertd.store.db import create_pool
from tests.buttons_support import (  # noqa: F401  (fixtures)
    PressLoop,
    connected_button,
    eventually,
    provision_button,
    secured_broker,
    secured_broker_process,
    secured_settings,
)
from tests.ha_support import committed_keys
from tests.helpers import app_alert, enrol, offset, seed_responders
from tests.integration.test_serve_processes import _not_routine, _ready, _spawn

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]
ALERTS = 40  # each with a police deadline coming due during the burst


async def _alerts_due_soon(settings, db, first_due_s: float, bursts: int = 4, gap_s: float = 2.0) -> None:
    """ALERTS alerts in `bursts` groups; each group's police deadlines (60 s) all come due at once, the first
    group's first_due_s from now, the next ones gap_s apart."""
    people = [await enrol(db, datetime.now(UTC)) for _ in range(ALERTS)]
    first_due = datetime.now(UTC) + timedelta(seconds=first_due_s)
    pool = await create_pool(settings.database_url, 1, 2)
    try:
        for b in range(bursts):
            raised = FakeClock(first_due + timedelta(seconds=b * gap_s - 60))
            group = people[b::bursts]
            async with pool.acquire() as conn, conn.transaction():
                await intake.raise_group(conn, Context(settings, raised), [
                    app_alert(p, f"d{b}-{i}", raised, i % 9, 30.0) for i, p in enumerate(group)])
    finally:
        await pool.close()


async def test_three_instances_one_killed_mid_burst_lose_and_double_nothing(settings, secured_broker, db, tmp_path):
    await seed_responders(db)
    base = secured_settings(settings, secured_broker, engine_poll_s=0.5, ack_deadline_crisis_centre=3600,
                            ack_deadline_mobile_unit=3600)
    person = await enrol(db, datetime.now(UTC), home=offset(1))
    buttons = []
    for _ in range(6):
        creds = await provision_button(db, base, SystemClock(), person.person_id)
        buttons.append(await connected_button(secured_broker, creds, SystemClock(), retry_s=0.5))

    ports = [free_port() for _ in range(3)]
    instances = [base.replace(mqtt_client_id=f"{base.mqtt_client_id}-{i}") for i in range(3)]
    procs = [_spawn(s, port, tmp_path) for s, port in zip(instances, ports, strict=True)]
    try:
        for port in ports:
            await asyncio.to_thread(wait_port, port, 30)
        async with aiohttp.ClientSession() as http:
            for port in ports:
                assert await _ready(http, port, timeout=30), f"instance on {port} never became ready"
        await _alerts_due_soon(base, db, first_due_s=8)
        presses = PressLoop(buttons, presses=25, gap_s=0.2, wait_s=90)
        # kill one instance in the middle of the bursts of due deadlines, with presses streaming in
        due = await db.fetchval("SELECT min(ack_deadline) FROM dispatches WHERE kind = 'police_post'")
        await asyncio.sleep(max(0.0, (due - datetime.now(UTC)).total_seconds() + 3.0))
        fired_before = await db.fetchval("SELECT count(*) FROM dispatches WHERE kind = 'police_post' "
                                         "AND attempt = 1 AND expired_at IS NOT NULL")
        os.kill(procs[0].pid, signal.SIGKILL)
        await asyncio.to_thread(procs[0].wait)
        killed_at = time.monotonic()
        await asyncio.sleep(3.0)
        procs[0] = _spawn(instances[0], ports[0], tmp_path)  # it returns, with its MQTT session
        acked = await presses.join(timeout=120)
        last_due = await db.fetchval("SELECT max(ack_deadline) FROM dispatches WHERE kind = 'police_post' "
                                     "AND attempt = 1")
        await asyncio.sleep(max(0.0, (last_due - datetime.now(UTC)).total_seconds()))
        assert await eventually(lambda: db.fetchval(
            "SELECT count(*) = 0 FROM dispatches WHERE status = 'pending' AND attempt = 1 "
            "AND kind = 'police_post'"), timeout=30)
    finally:
        for button in buttons:
            button.close()
        for p in procs:
            if p.poll() is None:
                p.terminate()
        for p in procs:
            p.wait(30)

    assert 0 < fired_before < ALERTS  # the kill came in the middle of the bursts, not before or after them
    assert time.monotonic() - killed_at > 3
    expired = await db.fetch("SELECT dispatch_id, count(*) AS n FROM alert_events WHERE type = 'expired' "
                             "GROUP BY dispatch_id")
    assert len(expired) >= ALERTS and {r["n"] for r in expired} == {1}  # each first police deadline fired, once
    assert await db.fetchval("SELECT count(*) FROM (SELECT alert_id, kind, attempt FROM dispatches "
                             "GROUP BY alert_id, kind, attempt HAVING count(*) > 1) x") == 0
    # her presses while her alert is open join it as repeats: each press is one alert or one repeat, never both
    keys = await committed_keys(db, [b.device_id for b in buttons])
    assert all(len(ids) == 1 for ids in keys.values())
    committed = sorted((device, int(key.removeprefix("seq:"))) for device, key in keys)
    assert len(acked) == 150 and committed == acked  # every acked press committed, none twice
    for p, port in zip(procs[1:], ports[1:], strict=True):
        log = (tmp_path / f"serve-{port}.log").read_text()
        assert p.returncode == 0, _not_routine(log)
