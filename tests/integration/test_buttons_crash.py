"""No press lost and none doubled: two services splitting the buttons, alertd killed with SIGKILL mid-stream,
the broker restarted mid-stream. Buttons retry each press until its app-level ack, as the firmware does."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys

from alertd.app import INGEST
from alertd.local.services import free_port
from tests.buttons_support import (  # noqa: F401  (fixtures)
    SERVICE,
    PressLoop,
    button_settings,
    connected_button,
    eventually,
    provision_button,
    running_service,
    secured_broker,
    secured_broker_process,
    secured_settings,
    start_secured_broker,
)
from tests.helpers import enrol, offset, seed_responders


async def _buttons(db, settings, broker, clock, n, **kw):
    person = await enrol(db, clock.now(), home=offset(1))
    out = []
    for _ in range(n):
        creds = await provision_button(db, settings, clock, person.person_id)
        out.append(await connected_button(broker, creds, clock, **kw))
    return out


async def _committed(db):
    """Every press committed: the one that raised her alert, and the repeats that joined it."""
    rows = await db.fetch("SELECT device_id, client_alert_id FROM alerts WHERE channel = 'button' UNION ALL "
                          "SELECT device_id, client_alert_id FROM alert_repeats WHERE channel = 'button'")
    return sorted((r["device_id"], int(r["client_alert_id"].removeprefix("seq:"))) for r in rows)


async def test_two_services_split_the_buttons_and_handle_each_press_once(
        button_settings, secured_broker, clock, db):
    await seed_responders(db)
    other_settings = secured_settings(button_settings, secured_broker)
    async with running_service(button_settings, clock) as a, running_service(other_settings, clock) as b:
        buttons = await _buttons(db, button_settings, secured_broker, clock, 6)
        try:
            acked = await PressLoop(buttons, presses=5, gap_s=0.01).join()
        finally:
            for button in buttons:
                button.close()
        assert len(acked) == 30 and await _committed(db) == acked
        handled = (a.app[INGEST].handled, b.app[INGEST].handled)
        assert all(n > 0 for n in handled) and sum(handled) == 30, handled
    # The buttons are all hers: one alert, dispatched once, and every other press a repeat of it.
    assert await db.fetchval("SELECT count(*) FROM alerts") == 1
    assert await db.fetchval("SELECT count(*) FROM dispatches") == 3


def _serve(settings) -> subprocess.Popen:
    env = {**os.environ, **settings.as_env()}
    return subprocess.Popen([sys.executable, "-m", "alertd", "serve"], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)


async def test_alertd_killed_mid_stream_loses_no_press_and_doubles_none(settings, secured_broker, clock, db):
    """A real `alertd serve` process on the real clock, SIGKILLed while presses stream in, then started again."""
    from alertd.clock import SystemClock

    real = SystemClock()
    await seed_responders(db)
    served = secured_settings(settings, secured_broker, http_port=free_port(), engine_poll_s=0.5)
    buttons = await _buttons(db, served, secured_broker, real, 5, retry_s=0.5)
    process = _serve(served)
    try:
        loop = PressLoop(buttons, presses=8, gap_s=0.05)
        assert await eventually(lambda: _at_least(db, 8), timeout=30)
        os.kill(process.pid, signal.SIGKILL)
        await asyncio.to_thread(process.wait)
        killed_at = len(await _committed(db))
        await asyncio.sleep(0.5)  # presses keep coming while nothing serves them
        process = _serve(served)
        acked = await loop.join()
    finally:
        for button in buttons:
            button.close()
        process.send_signal(signal.SIGTERM)
        await asyncio.to_thread(process.wait, 30)
    assert killed_at < 40
    assert len(acked) == 40 and await _committed(db) == acked
    assert await db.fetchval("SELECT count(*) FROM alerts") == 1
    assert await db.fetchval("SELECT count(*) FROM dispatches") == 3


async def _at_least(db, n):
    return len(await _committed(db)) >= n


async def test_broker_restart_mid_stream_loses_no_press_and_doubles_none(settings, clock, db, tmp_path):
    await seed_responders(db)
    broker = await start_secured_broker(tmp_path / "mqtt")
    try:
        served = secured_settings(settings, broker)
        async with running_service(served, clock) as service:
            buttons = await _buttons(db, served, broker, clock, 4, retry_s=0.5)
            try:
                loop = PressLoop(buttons, presses=8, gap_s=0.05)
                assert await eventually(lambda: _at_least(db, 6), timeout=30)
                await asyncio.to_thread(broker.stop)
                await asyncio.sleep(0.3)
                await asyncio.to_thread(broker.start)
                acked = await loop.join()
            finally:
                for button in buttons:
                    button.close()
            assert service.app[INGEST].broker.is_connected
        assert len(acked) == 32 and await _committed(db) == acked
        assert await db.fetchval("SELECT count(*) FROM alerts") == 1
        assert await db.fetchval("SELECT count(*) FROM dispatches") == 3
    finally:
        await asyncio.to_thread(broker.stop)
