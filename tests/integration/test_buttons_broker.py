"""Button credentials on the real Mosquitto (dynamic security): who may connect, publish and read, and revocation."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys

import pytest

from alertd import auth
from alertd.channels.buttons import protocol as button_protocol
from alertd.service import buttons as button_service_module
from clients.button import protocol as firmware
from clients.simulator.sim import Button, Refused
from tests.buttons_support import (  # noqa: F401  (fixtures)
    button_service,
    button_settings,
    connected_button,
    eventually,
    provision_button,
    secured_broker,
    secured_broker_process,
)
from tests.helpers import bearer, close_open_alerts, enrol, officer_token, offset, seed_responders


def engineer(settings, clock):
    return bearer(auth.issue(settings, role="engineer", sub="eng-1", ttl_s=3600, now=clock.now()))


async def _connect(url, device_id, secret="00" * 32):
    return await asyncio.to_thread(Button(url, device_id, secret).connect)


async def test_provision_over_http_then_only_its_own_topics(button_service, button_settings, secured_broker, clock, db):
    await seed_responders(db)
    person = await enrol(db, clock.now(), home=offset(1))
    resp = await button_service.post("/v1/buttons", json={"person_id": person.person_id},
                                     headers=bearer(officer_token(button_settings, "pol-1", clock.now())))
    assert resp.status == 403
    resp = await button_service.post("/v1/buttons", json={"person_id": "P-NOSUCH"},
                                     headers=engineer(button_settings, clock))
    assert resp.status == 404
    resp = await button_service.post("/v1/buttons", json={"person_id": person.person_id},
                                     headers=engineer(button_settings, clock))
    assert resp.status == 201, await resp.text()
    assert resp.headers["Cache-Control"] == "no-store"
    creds = await resp.json()
    assert creds["username"] == creds["device_id"] and len(creds["hmac_secret"]) == 64
    other = await (await button_service.post("/v1/buttons", json={"person_id": person.person_id},
                                             headers=engineer(button_settings, clock))).json()
    # the database keeps a salted hash, never the password
    row = await db.fetchrow("SELECT password_hash, salt FROM mqtt_accounts WHERE username = $1", creds["username"])
    assert creds["password"] not in row["password_hash"]

    url = secured_broker.user_url
    with pytest.raises(Refused):
        await _connect(secured_broker.url, creds["device_id"])  # anonymous
    with pytest.raises(Refused):
        await _connect(url(creds["username"], "wrong-password"), creds["device_id"])
    with pytest.raises(Refused):
        await _connect(url(creds["username"], creds["password"]), other["device_id"])  # someone else's client id
    button = await _connect(url(creds["username"], creds["password"]), creds["device_id"], creds["hmac_secret"])
    try:
        now = int(clock.now().timestamp())
        # a well-signed press for the other button, on the other button's topic: the broker denies it
        topic, payload = firmware.message(other["device_id"], other["hmac_secret"], "press", 1, now)
        assert await asyncio.to_thread(button.conn.publish, topic, payload) == "Not authorized"
        topic, payload = firmware.message(creds["device_id"], creds["hmac_secret"], "press", 1, now)
        assert await asyncio.to_thread(button.conn.publish, topic, payload) == "Success"
        assert await eventually(lambda: db.fetchval("SELECT count(*) FROM alerts"))
        rows = await db.fetch("SELECT device_id FROM alerts")
        assert [r["device_id"] for r in rows] == [creds["device_id"]]
        # reading another button's acks is refused too
        granted = await asyncio.to_thread(_subscribe, button, firmware.topic(other["device_id"], "ack"))
        assert granted == "Not authorized"
    finally:
        button.close()


def _subscribe(button: Button, topic: str) -> str:
    import threading

    done, result = threading.Event(), []
    button.conn.client.on_subscribe = lambda _c, _u, _m, codes, _p: (result.append(str(codes[0])), done.set())
    button.conn.client.subscribe(topic, qos=1)
    done.wait(5)
    return result[0] if result else "no answer"


async def test_revocation_cuts_a_button_off_and_rotation_replaces_its_secrets(
        button_service, button_settings, secured_broker, clock, db):
    await seed_responders(db)
    person = await enrol(db, clock.now(), home=offset(1))
    creds = await provision_button(db, button_settings, clock, person.person_id)
    button = await connected_button(secured_broker, creds, clock)
    try:
        await asyncio.to_thread(button.press)
        resp = await button_service.post(f"/v1/buttons/{creds.device_id}/rotate", headers=engineer(button_settings, clock))
        assert resp.status == 200
        rotated = await resp.json()
        assert rotated["password"] != creds.password and rotated["hmac_secret"] != creds.hmac_secret
        with pytest.raises(Refused):
            await _connect(secured_broker.user_url(creds.username, creds.password), creds.device_id)
        # a message signed with the old secret is refused by the service itself
        _s, _t, payload = button.next_message("press")
        receipt = await button_service_module.receive(_pool(button_service), _ctx(button_service),
                                                      button_protocol.inbound(creds.device_id, "press", payload))
        assert receipt.refused == "bad_mac"
        button.close()
        button = await asyncio.to_thread(Button(secured_broker.user_url(rotated["username"], rotated["password"]),
                                                creds.device_id, rotated["hmac_secret"], seq=button.seq,
                                                clock=lambda: clock.now().timestamp()).connect)
        await close_open_alerts(db)  # a new alert, not a repeat of the first press
        await asyncio.to_thread(button.press)

        resp = await button_service.post(f"/v1/buttons/{creds.device_id}/revoke", headers=engineer(button_settings, clock))
        assert resp.status == 200
        assert await eventually(lambda: _async(not button.conn.connected), timeout=20)
        with pytest.raises(Refused):
            await _connect(secured_broker.user_url(rotated["username"], rotated["password"]), creds.device_id)
        _s, _t, payload = button.next_message("press")
        receipt = await button_service_module.receive(_pool(button_service), _ctx(button_service),
                                                      button_protocol.inbound(creds.device_id, "press", payload))
        assert receipt.refused == "revoked_device"
        assert await db.fetchval("SELECT revoked_at FROM devices WHERE id = $1", creds.device_id) == clock.now()
        assert await db.fetchval("SELECT count(*) FROM mqtt_acl WHERE username = $1", creds.device_id) == 0
        assert await db.fetchval("SELECT count(*) FROM alerts") == 2
    finally:
        button.close()


def _pool(client):
    from alertd.web.keys import POOL

    return client.app[POOL]


def _ctx(client):
    from alertd.web.keys import CTX

    return client.app[CTX]


async def _async(value):
    return value


async def test_cli_provision_prints_secrets_once_with_a_qr_and_imports_cells(button_settings, clock, db, tmp_path):
    await seed_responders(db)
    person = await enrol(db, clock.now())
    env = {**os.environ, **button_settings.as_env()}
    png = tmp_path / "button.png"
    out = await asyncio.to_thread(subprocess.run, [sys.executable, "-m", "alertd", "--json", "buttons", "provision",
                                                  "--person", person.person_id, "--qr", str(png)],
                                  env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    creds = json.loads(out.stdout)
    assert creds["device_id"].startswith("B-") and creds["person_id"] == person.person_id
    assert png.read_bytes().startswith(b"\x89PNG") and oct(png.stat().st_mode)[-3:] == "600"
    assert creds["password"] not in out.stderr
    acl = await db.fetch("SELECT action, topic FROM mqtt_acl WHERE username = $1 ORDER BY topic", creds["username"])
    assert [(r["action"], r["topic"]) for r in acl] == [
        ("subscribe", f"alertd/v1/buttons/{creds['device_id']}/ack"),
        ("publish", f"alertd/v1/buttons/{creds['device_id']}/heartbeat"),
        ("publish", f"alertd/v1/buttons/{creds['device_id']}/press"),
        ("publish", f"alertd/v1/buttons/{creds['device_id']}/test")]
    csv = tmp_path / "cells.csv"
    csv.write_text("GSM,401,1,1200,33001,0,70.0,50.0,900,12,1,1500000000,1700000000,0\n"
                   "GSM,401,1,1200,33002,0,70.1,50.1,1200,3,1,1500000000,1700000000,0\n")
    for _ in range(2):  # a re-import updates (the command in-process: a subprocess start costs seconds)
        assert (await _command(button_settings, "cells", "import", str(csv)))["towers"] == 2
    assert await db.fetchval("SELECT count(*) FROM cell_towers") == 2
    assert (await _command(button_settings, "buttons", "revoke", creds["device_id"]))["kind"] == "button"
    assert await db.fetchval("SELECT revoked_at IS NOT NULL FROM mqtt_accounts WHERE username = $1",
                             creds["username"])


async def _command(settings, *argv):
    from alertd.cli import build_parser

    args = build_parser().parse_args(list(argv))
    args.json = True
    return await args.handler(args, settings)
