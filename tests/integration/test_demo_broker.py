"""`alertd demo`'s broker is secured like production, tried with Debian's own MQTT clients (mosquitto_pub, _sub,
_rr: nobody here wrote them): anonymous clients and wrong passwords are refused, each button and unit terminal
may publish only under its own topics and read only its own ack or dispatch topic, and nothing they are refused
changes anything."""

from __future__ import annotations

import asyncio
import json
import os
import shlex
import signal
import subprocess
import sys
import time
from urllib.parse import urlsplit

import aiohttp
import asyncpg

from clients.button import protocol as firmware
from tests.buttons_support import eventually, mqtt_client, refused_at_connect


def _read_document(process: subprocess.Popen) -> dict:
    """The JSON document `alertd demo --json` prints once it serves (one object, closed by a lone '}')."""
    lines = []
    for line in process.stdout:
        lines.append(line)
        if line.rstrip() == "}":
            return json.loads("".join(lines))
    raise AssertionError(f"demo ended without its document: {''.join(lines)[-2000:]}")


def _curl_request(curl: str) -> tuple[str, dict, dict]:
    """URL, headers and JSON body of the demo's curl line (the test raises exactly what a user would)."""
    words = shlex.split(curl)
    url = next(w for w in words if w.startswith("http"))
    headers = dict(words[i + 1].split(": ", 1) for i, w in enumerate(words) if w == "-H")
    return url, headers, json.loads(words[words.index("-d") + 1])


async def _run(tool: str, url: str, *args: str, account: tuple[str, str] | None = None,
               client_id: str | None = None) -> subprocess.CompletedProcess:
    """One of Debian's MQTT clients against the demo broker, as `account` (username, password) or anonymous."""
    if account:
        parts = urlsplit(url)
        url = f"mqtt://{account[0]}:{account[1]}@{parts.hostname}:{parts.port}"
    return await mqtt_client(tool, url, *args, client_id=client_id)


async def test_demo_broker_refuses_strangers_and_confines_each_device_to_its_own_topics(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ALERTD_", "TWILIO_"))}
    process = subprocess.Popen([sys.executable, "-m", "alertd", "demo", "--json"], cwd=tmp_path, env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    db = None
    try:
        doc = await asyncio.wait_for(asyncio.to_thread(_read_document, process), 180)
        url = doc["urls"]["mqtt"]
        assert not urlsplit(url).username  # the printed broker URL carries no account
        button = doc["button"]
        device = (button["username"], button["password"])
        db = await asyncpg.connect(doc["urls"]["database"])

        # nobody without an account reads or writes anything: the subscription is refused at CONNECT
        assert refused_at_connect(await _run("mosquitto_sub", url, "-t", "alertd/v1/#", "-W", "3"))
        assert refused_at_connect(await _run("mosquitto_pub", url, "-t", "alertd/v1/units/mu-01/location",
                                              "-m", '{"lat": 43.2, "lon": 76.9, "acc": 5}', "-q", "1"))
        # a button with a wrong password does not get in, even with a correctly signed press
        _topic, press1 = firmware.message(button["device_id"], button["hmac_secret"], "press", 1, int(time.time()))
        wrong = await _run("mosquitto_pub", url, "-t", button["topics"]["press"], "-m", press1.decode(), "-q", "1",
                           account=(device[0], "wrong-" + device[1]), client_id=device[0])
        assert refused_at_connect(wrong)
        units = {u["unit_id"]: u for u in doc["units"]}  # each unit terminal has its own account
        assert len(units) >= 2
        (near_id, near), (other_id, other) = sorted(units.items())[:2]
        near_account = (near["username"], near["password"])
        # a device's account works only under its own client id
        assert refused_at_connect(await _run("mosquitto_sub", url, "-t", near["topics"]["dispatch"], "-W", "3",
                                              account=near_account, client_id=other_id))

        # a unit terminal may read only its own dispatch topic
        for topic in ("alertd/v1/#", other["topics"]["dispatch"], button["topics"]["ack"]):
            denied = await _run("mosquitto_sub", url, "-t", topic, "-W", "3", account=near_account,
                                client_id=near_id)
            assert "denied" in denied.stderr, (topic, denied.stderr)

        # the admin account (for `alertd buttons provision` against the demo) hears every ack the button gets
        admin_url = urlsplit(doc["env"]["ALERTD_MQTT_ADMIN_URL"])
        admin = (admin_url.username, admin_url.password)
        acks = await asyncio.to_thread(
            subprocess.Popen, ["mosquitto_sub", "-h", admin_url.hostname, "-p", str(admin_url.port), "-V", "mqttv5",
                               "-u", admin[0], "-P", admin[1], "-t", button["topics"]["ack"], "-C", "1", "-W", "30"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        await asyncio.sleep(0.5)  # let it subscribe: a message before that would not prove anything either way
        # another device cannot publish a fake {seq} ack to the button ...
        fake = await _run("mosquitto_pub", url, "-t", button["topics"]["ack"], "-m", '{"seq": 9999}', "-q", "1",
                          account=near_account, client_id=near_id)
        assert "Not authorized" in fake.stderr, fake.stderr
        # ... so the first ack it gets is alertd's own, for its real press with the right password
        _topic, press2 = firmware.message(button["device_id"], button["hmac_secret"], "press", 2, int(time.time()))
        real = await _run("mosquitto_rr", url, "-t", button["topics"]["press"], "-e", button["topics"]["ack"],
                          "-m", press2.decode(), "-q", "1", "-W", "30", account=device, client_id=device[0])
        assert json.loads(real.stdout) == {"seq": 2}, real.stderr
        heard, _err = await asyncio.to_thread(acks.communicate, timeout=30)
        assert json.loads(heard) == {"seq": 2}
        alerts = await db.fetch("SELECT client_alert_id FROM alerts WHERE device_id = $1", button["device_id"])
        assert [r["client_alert_id"] for r in alerts] == ["seq:2"]  # nothing from the wrong password

        # a unit cannot move another unit ...
        before = await db.fetchrow("SELECT location::text AS at, last_seen_at FROM responders WHERE id = $1", other_id)
        moved = await _run("mosquitto_pub", url, "-t", other["topics"]["location"], "-q", "1",
                           "-m", '{"lat": 43.2, "lon": 76.9, "acc": 5}', account=near_account, client_id=near_id)
        assert "Not authorized" in moved.stderr, moved.stderr
        # ... but moves itself (so the refusal above was not just a broken path)
        assert "Not authorized" not in (await _run(
            "mosquitto_pub", url, "-t", near["topics"]["location"], "-q", "1",
            "-m", json.dumps({"lat": 50.3, "lon": 72.9, "acc": 5, "ts": int(time.time())}),
            account=near_account, client_id=near_id)).stderr
        assert await eventually(lambda: db.fetchval("SELECT last_seen_at FROM responders WHERE id = $1", near_id))
        assert await db.fetchrow("SELECT location::text AS at, last_seen_at FROM responders WHERE id = $1",
                                 other_id) == before

        # an alert that goes to a unit (her alert from the button press, which this one joins as a repeat with a
        # better location): only that unit's terminal can acknowledge or resolve its dispatch
        curl_url, headers, body = _curl_request(doc["curl"])
        async with aiohttp.ClientSession() as http, http.post(curl_url, json=body, headers=headers) as resp:
            assert resp.status == 201, await resp.text()
            alert_id = (await resp.json())["alert_id"]
        dispatch = await db.fetchrow("SELECT id, responder_id FROM dispatches WHERE alert_id = $1 "
                                     "AND kind = 'mobile_unit' AND status = 'pending'", alert_id)
        target = units[dispatch["responder_id"]]
        stranger = next(u for u in units.values() if u["unit_id"] != target["unit_id"])
        resolve = json.dumps({"dispatch_id": str(dispatch["id"]), "status": "resolved"})
        forged = await _run("mosquitto_pub", url, "-t", target["topics"]["ack"], "-m", resolve, "-q", "1",
                            account=(stranger["username"], stranger["password"]), client_id=stranger["unit_id"])
        assert "Not authorized" in forged.stderr, forged.stderr
        assert refused_at_connect(await _run("mosquitto_pub", url, "-t", target["topics"]["ack"], "-m", resolve,
                                              "-q", "1"))
        en_route = json.dumps({"dispatch_id": str(dispatch["id"]), "status": "en_route"})
        assert "Not authorized" not in (await _run(
            "mosquitto_pub", url, "-t", target["topics"]["ack"], "-m", en_route, "-q", "1",
            account=(target["username"], target["password"]), client_id=target["unit_id"])).stderr
        assert await eventually(lambda: _status_is(db, dispatch["id"], "en_route"))
        actors = await db.fetch("SELECT actor FROM alert_events WHERE dispatch_id = $1 AND type IN "
                                "('acknowledged', 'status') ORDER BY id", dispatch["id"])
        assert [r["actor"] for r in actors] == [f"unit:{target['unit_id']}"] * 2  # its ack, then en_route
    finally:
        if db is not None:
            await db.close()
        process.send_signal(signal.SIGTERM)
        await asyncio.to_thread(process.wait, 60)
        process.stdout.close()
    assert process.returncode == 0


async def _status_is(db, dispatch_id, status: str) -> bool:
    return await db.fetchval("SELECT status FROM dispatches WHERE id = $1", dispatch_id) == status
