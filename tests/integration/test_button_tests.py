"""Test presses over the real Mosquitto: a button's test is checked like a press, acknowledged as a test, recorded,
told to her caseworker's console, and dispatches nothing; a press's MAC cannot pass as a test nor a test's as a press;
a replayed test is refused and recorded like a press."""

from __future__ import annotations

import asyncio
import json

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
from tests.helpers import bearer, enrol, officer_token, offset, refusals, seed_responders


async def _counts(db) -> tuple[int, int]:
    return (await db.fetchval("SELECT count(*) FROM alerts"), await db.fetchval("SELECT count(*) FROM dispatches"))


async def _tests(db, device_id):
    return [r["client_test_id"] for r in await db.fetch(
        "SELECT client_test_id FROM channel_tests WHERE device_id = $1 AND channel = 'button' ORDER BY at, client_test_id",
        device_id)]


async def test_a_test_press_is_acked_as_a_test_recorded_told_to_her_caseworker_and_dispatches_nothing(
        button_service, button_settings, secured_broker, clock, db):
    await seed_responders(db)
    person = await enrol(db, clock.now(), home=offset(1), phone="+77015550177")
    creds = await provision_button(db, button_settings, clock, person.person_id, caseworker_id="cc-1")
    button = await connected_button(secured_broker, creds, clock)
    acks: list[dict] = []
    on_ack = button.conn.on_message
    button.conn.on_message = lambda topic, payload: (acks.append(json.loads(payload)), on_ack(topic, payload))
    try:
        seq = await asyncio.to_thread(button.test, bat=0.8)
        assert {"seq": seq, "test": True} in acks
        assert await _counts(db) == (0, 0)
        assert await _tests(db, creds.device_id) == [f"seq:{seq}"]
        state = await db.fetchrow("SELECT last_seq, last_seen_at, battery FROM buttons WHERE device_id = $1",
                                  creds.device_id)
        assert (state["last_seq"], state["last_seen_at"]) == (seq, clock.now()) and abs(state["battery"] - 0.8) < 1e-6
        notices = await db.fetch("SELECT channel, recipient, template, payload FROM outbox ORDER BY id")
        assert [(n["channel"], n["recipient"], n["template"]) for n in notices] == [
            ("console", "cc-1", "channel_proven")]
        assert dict(notices[0]["payload"]) == {"channel": "button", "device_id": creds.device_id,
                                               "person_id": person.person_id}
        assert "+7701555" not in json.dumps([dict(n["payload"]) for n in notices])
        await button_service.app[ENGINE].run_once()  # the notice reaches the console; nothing else is sent
        assert await db.fetchval("SELECT count(*) FROM outbox WHERE channel <> 'console'") == 0
        caseworker = bearer(officer_token(button_settings, "cc-1", clock.now()))
        items = (await (await button_service.get("/console/api/notices", headers=caseworker)).json())["items"]
        assert [(n["template"], n["payload"]["device_id"]) for n in items] == [("channel_proven", creds.device_id)]
        caseload = await (await button_service.get("/console/api/caseload", headers=caseworker)).json()
        assert caseload["items"] == [{"person_id": person.person_id, "channels": [
            {"channel": "app", "device_id": person.device_id, "last_proven_at": None},
            {"channel": "button", "device_id": creds.device_id, "last_proven_at": clock.now().isoformat()},
            {"channel": "sms", "device_id": None, "last_proven_at": None}]}]

        # the firmware retrying the same test (its ack lost) is acknowledged again, as a test, and recorded once
        topic, payload = firmware.message(creds.device_id, creds.hmac_secret, "test", seq, int(clock.now().timestamp()))
        button.acked.clear()
        button.tests_acked.clear()
        await asyncio.to_thread(button.send_until_acked, seq, topic, payload, 30.0)
        assert seq in button.tests_acked
        assert await _tests(db, creds.device_id) == [f"seq:{seq}"]
        assert await db.fetchval("SELECT count(*) FROM outbox WHERE template = 'channel_proven'") == 1

        # seq is shared with presses: the next press is above the test, and raises her alert as always
        pressed = await asyncio.to_thread(button.press)
        assert pressed == seq + 1 and await _counts(db) == (1, 3)
        assert seq + 1 not in button.tests_acked
    finally:
        button.close()


async def test_forged_and_replayed_tests_are_refused_and_recorded_like_presses(
        button_service, button_settings, secured_broker, clock, db):
    await seed_responders(db)
    person = await enrol(db, clock.now(), home=offset(1))
    creds = await provision_button(db, button_settings, clock, person.person_id)
    button = await connected_button(secured_broker, creds, clock)
    now = int(clock.now().timestamp())
    secret, device = creds.hmac_secret, creds.device_id
    try:
        button.seq = 4
        first = await asyncio.to_thread(button.test)
        pressed = await asyncio.to_thread(button.press)
        assert await _counts(db) == (1, 3)
        # a press's MAC on the test topic, and a test's MAC on the press topic: neither passes for the other
        press_mac = firmware.message(device, secret, "press", pressed + 1, now)[1]
        test_mac = firmware.message(device, secret, "test", pressed + 2, now)[1]
        assert await asyncio.to_thread(button.conn.publish, firmware.topic(device, "test"), press_mac) == "Success"
        assert await asyncio.to_thread(button.conn.publish, firmware.topic(device, "press"), test_mac) == "Success"
        assert await eventually(lambda: _refused(db, "bad_mac", 2))
        # replays: the press's seq sent as a test (never recorded as one), an old test, a forged secret, a stale ts
        for payload in (firmware.message(device, secret, "test", pressed, now)[1],
                        firmware.message(device, secret, "test", first - 1, now)[1],
                        firmware.message(device, "00" * 32, "test", pressed + 3, now)[1],
                        firmware.message(device, secret, "test", pressed + 4, now - 11 * 60)[1]):
            await asyncio.to_thread(button.conn.publish, firmware.topic(device, "test"), payload)
        assert await eventually(lambda: _refused(db, None, 6))
        kinds = {r["kind"]: r["refusals"] for r in await db.fetch("SELECT kind, refusals FROM security_events")}
        assert kinds == {"bad_mac": 3, "replayed_seq": 2, "stale_ts": 1}
        assert all(r["source"] == f"mqtt:{device}" for r in await db.fetch("SELECT source FROM security_events"))
        assert await _tests(db, device) == [f"seq:{first}"]
        assert await _counts(db) == (1, 3)
        assert await db.fetchval("SELECT last_seq FROM buttons WHERE device_id = $1", device) == pressed
    finally:
        button.close()


async def _refused(db, kind, n):
    return await refusals(db, kind) >= n


async def test_a_button_provisioned_before_tests_existed_may_test_after_allow_tests(
        button_service, button_settings, secured_broker, clock, db):
    from alertd.mqtt.dynsec import Account, Dynsec, button_acls
    from tests.buttons_support import mqtt_client

    await seed_responders(db)
    person = await enrol(db, clock.now(), home=offset(1))
    creds = await provision_button(db, button_settings, clock, person.person_id)
    old_acls = [a for a in button_acls(creds.device_id) if not a["topic"].endswith("/test")]
    await asyncio.to_thread(Dynsec(button_settings.mqtt_admin_url).replace_now, [
        Account(creds.username, creds.password, f"button-{creds.device_id}", old_acls, creds.device_id)])
    payload = firmware.message(creds.device_id, creds.hmac_secret, "test", 1, int(clock.now().timestamp()))[1]
    url = secured_broker.user_url(creds.username, creds.password)
    denied = await mqtt_client("mosquitto_pub", url, "-t", firmware.topic(creds.device_id, "test"), "-q", "1",
                               "-m", payload.decode(), client_id=creds.device_id)
    assert "not authori" in denied.stderr.lower(), denied
    assert await _tests(db, creds.device_id) == []

    for _ in range(2):  # run twice: the second changes nothing and fails nothing
        out = await _command(button_settings, "buttons", "allow-tests")
        assert out == {"buttons": 1, "allowed": 1}
    button = await connected_button(secured_broker, creds, clock)
    try:
        assert await asyncio.to_thread(button.test) == 1
        assert await _tests(db, creds.device_id) == ["seq:1"]
    finally:
        button.close()


async def _command(settings, *argv):
    from alertd.cli import build_parser

    args = build_parser().parse_args(list(argv))
    args.json = True
    return await args.handler(args, settings)
