"""Button presses over the real Mosquitto: committed before acknowledged, once per (device, seq), located,
refused (and recorded) when forged, replayed, stale or malformed; heartbeats feed supervision."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from datetime import UTC, datetime

from alertd.service import cells
from alertd.web.keys import ENGINE
from clients.button import protocol as firmware
from tests.buttons_support import (  # noqa: F401  (fixtures)
    button_service,
    button_settings,
    connected_button,
    eventually,
    provision_button,
    secured_broker,
    secured_broker_process,
)
from tests.helpers import (
    bearer,
    close_open_alerts,
    device_token,
    enrol,
    fix,
    officer_token,
    offset,
    refusals,
    seed_responders,
)


async def _alerts(db):
    return await db.fetch("SELECT id, device_id, client_alert_id, location_source, channel FROM alerts "
                          "WHERE channel = 'button' ORDER BY created_at")


async def _security(db, kind=None):
    return await refusals(db, kind)


async def test_press_raises_one_alert_and_is_acknowledged(button_service, button_settings, secured_broker, clock, db):
    await seed_responders(db)
    person = await enrol(db, clock.now())
    creds = await provision_button(db, button_settings, clock, person.person_id)
    button = await connected_button(secured_broker, creds, clock)
    try:
        seq = await asyncio.to_thread(button.press, loc=(*offset(0.5), 15.0))
        rows = await _alerts(db)
        assert [(r["device_id"], r["client_alert_id"], r["location_source"]) for r in rows] == [
            (creds.device_id, f"seq:{seq}", "gps")]
        kinds = {r["kind"]: r["responder_id"] for r in await db.fetch("SELECT kind, responder_id FROM dispatches")}
        assert kinds == {"police_post": "pol-1", "crisis_centre": "cc-1", "mobile_unit": "mu-1"}

        # the firmware retrying the same press (its ack lost) is acknowledged again, and makes no second alert
        topic, payload = firmware.message(creds.device_id, creds.hmac_secret, "press", seq,
                                          int(clock.now().timestamp()))
        button.acked.clear()
        await asyncio.to_thread(button.send_until_acked, seq, topic, payload, 30.0)
        assert len(await _alerts(db)) == 1
        assert await db.fetchval("SELECT count(*) FROM dispatches") == 3
        assert await _security(db) == 0
    finally:
        button.close()


async def test_bad_input_is_refused_recorded_and_the_service_keeps_running(
        button_service, button_settings, secured_broker, clock, db):
    await seed_responders(db)
    person = await enrol(db, clock.now(), home=offset(1))
    creds = await provision_button(db, button_settings, clock, person.person_id)
    button = await connected_button(secured_broker, creds, clock)
    now = int(clock.now().timestamp())
    press_topic = firmware.topic(creds.device_id, "press")
    try:
        button.seq = 4
        first = await asyncio.to_thread(button.press)
        forged = firmware.message(creds.device_id, "00" * 32, "press", first + 1, now)
        stale = firmware.message(creds.device_id, creds.hmac_secret, "press", first + 2, now - 11 * 60)
        replayed = firmware.message(creds.device_id, creds.hmac_secret, "press", first - 1, now)
        for _topic, payload in (forged, stale, replayed):
            assert await asyncio.to_thread(button.conn.publish, press_topic, payload) == "Success"
        for junk in (b"not json", b"[1, 2]", json.dumps({"seq": "1", "ts": now, "mac": "x" * 64}).encode()):
            await asyncio.to_thread(button.conn.publish, press_topic, junk)
        assert await eventually(lambda: _count_is(db, 6))
        kinds = {r["kind"]: r["refusals"] for r in await db.fetch("SELECT kind, refusals FROM security_events")}
        assert kinds == {"bad_mac": 1, "malformed_payload": 3, "replayed_seq": 1, "stale_ts": 1}
        assert all(r["source"] == f"mqtt:{creds.device_id}" for r in await db.fetch("SELECT source FROM security_events"))
        assert len(await _alerts(db)) == 1 and await db.fetchval("SELECT count(*) FROM dispatches") == 3
        # an older seq, even well signed, is a replay
        button.seq = first + 5
        await close_open_alerts(db)  # her next press is a new alert, not a repeat of the first
        later = await asyncio.to_thread(button.press)
        _seq, _t, old = button.next_message("press", seq=first + 3)
        await asyncio.to_thread(button.conn.publish, press_topic, old)
        assert await eventually(lambda: _security(db, "replayed_seq"))
        assert [r["client_alert_id"] for r in await _alerts(db)] == [f"seq:{first}", f"seq:{later}"]
    finally:
        button.close()


async def _count_is(db, n):
    return await _security(db) >= n


async def test_location_gps_then_phone_fix_then_cell_then_home(
        button_service, button_settings, secured_broker, clock, db, tmp_path):
    await seed_responders(db)
    person = await enrol(db, clock.now(), home=offset(13.5))
    creds = await provision_button(db, button_settings, clock, person.person_id)
    csv = tmp_path / "cells.csv"
    lat, lon = offset(8.2)
    csv.write_text("radio,mcc,net,area,cell,unit,lon,lat,range,samples,changeable,created,updated,averageSignal\n"
                   f"GSM,401,1,1200,33001,0,{lon},{lat},900,12,1,1500000000,1700000000,0\n")
    assert await cells.import_cells(db, cells.read(csv)) == 1
    # her phone app sent a fix a minute ago (with an alert of its own)
    phone_at = offset(5.1)
    resp = await button_service.post("/v1/alerts", json={"client_alert_id": "c-1", "location": fix(*phone_at, 25.0)},
                                      headers=bearer(device_token(button_settings, person, clock.now())))
    assert resp.status == 201
    clock.advance(60)
    tower = (401, 1, 1200, 33001)
    button = await connected_button(secured_broker, creds, clock)
    try:  # each alert closed before the next press, so that each press is an alert, not a repeat
        await close_open_alerts(db)
        await asyncio.to_thread(button.press, loc=(*offset(0.4), 10.0), cell=tower)
        await close_open_alerts(db)
        await asyncio.to_thread(button.press, cell=tower)
        await close_open_alerts(db)
        clock.advance(10 * 60)  # her phone's fix is now too old
        await asyncio.to_thread(button.press, cell=tower)
        await close_open_alerts(db)
        await asyncio.to_thread(button.press, cell=(401, 1, 1200, 99999))  # a tower nobody knows
    finally:
        button.close()
    assert [r["location_source"] for r in await _alerts(db)] == ["gps", "phone_last_fix", "cell", "home"]
    police = [r["responder_id"] for r in await db.fetch(
        "SELECT d.responder_id FROM dispatches d JOIN alerts a ON a.id = d.alert_id "
        "WHERE a.channel = 'button' AND d.kind = 'police_post' ORDER BY a.created_at")]
    assert police == ["pol-1", "pol-2", "pol-3", "pol-4"]


async def test_heartbeats_feed_supervision_notices_to_the_caseworker_never_her_phone(
        button_service, button_settings, secured_broker, clock, db):
    await seed_responders(db)
    person = await enrol(db, clock.now(), phone="+77015550123")
    creds = await provision_button(db, button_settings, clock, person.person_id, caseworker_id="cc-1")
    engine = button_service.app[ENGINE]
    ws = await button_service.ws_connect(f"/v1/events?access_token={officer_token(button_settings, 'cc-1', clock.now())}")
    assert (await ws.receive_json(timeout=5))["type"] == "ready"
    button = await connected_button(secured_broker, creds, clock)

    async def state():
        return await db.fetchrow("SELECT last_seq, battery, last_seen_at FROM buttons WHERE device_id = $1",
                                 creds.device_id)

    try:
        assert await asyncio.to_thread(button.heartbeat, 0.9) == "Success"
        assert await eventually(lambda: _battery_is(state, 0.9))
        assert (await state())["last_seen_at"] == clock.now()
        await engine.run_once()
        assert await db.fetchval("SELECT count(*) FROM outbox WHERE template LIKE 'button_%'") == 0

        await asyncio.to_thread(button.heartbeat, 0.1)
        assert await eventually(lambda: _battery_is(state, 0.1))
        clock.advance(1)  # supervision sweeps at most once a second
        await engine.run_once()
        await engine.run_once()  # a second cycle makes no second notice
        notices = await db.fetch("SELECT channel, recipient, template, payload, status FROM outbox "
                                 "WHERE template LIKE 'button_%' ORDER BY id")
        assert [(n["channel"], n["recipient"], n["template"]) for n in notices] == [
            ("console", "cc-1", "button_low_battery"), ("log", "engineers", "button_low_battery")]
        assert all(n["status"] == "sent" for n in notices)
        pushed = await _next_notification(ws)
        assert pushed["template"] == "button_low_battery" and pushed["payload"]["device_id"] == creds.device_id

        clock.advance(button_settings.button_silence_s + 1)
        await engine.run_once()
        assert (await _next_notification(ws))["template"] == "button_silent"
        templates = [r["template"] for r in await db.fetch("SELECT template FROM outbox WHERE recipient = 'cc-1'")]
        assert templates == ["button_low_battery", "button_silent"]
        # nothing ever goes to the survivor's own phone, and notices carry no phone number
        assert await db.fetchval("SELECT count(*) FROM outbox WHERE channel = 'sms'") == 0
        assert "+7701555" not in json.dumps([dict(n["payload"]) for n in notices])
    finally:
        button.close()
        await ws.close()


async def _battery_is(state, value):
    row = await state()
    return row is not None and row["battery"] is not None and abs(row["battery"] - value) < 1e-6


async def _next_notification(ws):
    while True:
        msg = await ws.receive_json(timeout=5)
        if msg.get("type") == "notification":
            return msg


async def test_the_broker_gets_its_puback_only_after_the_alert_committed(
        button_service, button_settings, secured_broker, clock, db):
    """While the press cannot commit (its button row is locked), the ingest holds back the broker's PUBACK."""
    from alertd.app import INGEST

    await seed_responders(db)
    person = await enrol(db, clock.now(), home=offset(1))
    creds = await provision_button(db, button_settings, clock, person.person_id)
    ingest = button_service.app[INGEST]
    acked = []
    real_ack = ingest.broker.client.ack
    ingest.broker.client.ack = lambda mid, qos: (acked.append(mid), real_ack(mid, qos))
    button = await connected_button(secured_broker, creds, clock)
    try:
        async with db.transaction():
            await db.execute("SELECT 1 FROM buttons WHERE device_id = $1 FOR UPDATE", creds.device_id)
            _seq, topic, payload = button.next_message("press")
            await asyncio.to_thread(button.conn.publish, topic, payload)
            assert await eventually(lambda: _async(ingest.busy == 1))
            await asyncio.sleep(0.3)
            assert acked == [] and button.acked == {}
        assert await eventually(lambda: _async(acked))
        assert len(await _alerts(db)) == 1
        assert await eventually(lambda: _async(button.acked))
    finally:
        ingest.broker.client.ack = real_ack
        button.close()


async def _async(value):
    return value


async def test_simulator_command_line_presses_and_keeps_its_seq(
        button_service, button_settings, secured_broker, clock, db, tmp_path):
    await seed_responders(db)
    person = await enrol(db, clock.now(), home=offset(1))
    creds = await provision_button(db, button_settings, clock, person.person_id)
    clock.set(datetime.now(UTC))  # the simulator signs with the real time
    base = [sys.executable, "-m", "clients.simulator"]
    common = ["--url", secured_broker.user_url(creds.username, creds.password), "--device", creds.device_id,
              "--secret", creds.hmac_secret, "--state", str(tmp_path / "state.json")]
    for expected in (1, 2):
        await close_open_alerts(db)  # each press a new alert, not a repeat
        out = await asyncio.to_thread(subprocess.run, [*base, "press", *common, "--lat", "50.01", "--lon", "70.0"],
                                      capture_output=True, text=True, timeout=60)
        assert out.returncode == 0, out.stderr
        assert json.loads(out.stdout)["seq"] == expected
    assert [r["client_alert_id"] for r in await _alerts(db)] == ["seq:1", "seq:2"]
    wrong = [*common[:1], secured_broker.user_url(creds.username, "nope"), *common[2:]]
    out = await asyncio.to_thread(subprocess.run, [*base, "heartbeat", *wrong, "--bat", "0.5"],
                                  capture_output=True, text=True, timeout=60)
    assert out.returncode == 2 and "refused" in out.stderr
