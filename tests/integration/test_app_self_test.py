"""The phone app's self-test (`POST /v1/tests`) on the real services: recorded once per client_test_id, her
caseworker told, nothing dispatched; a neutral confirmation SMS only if she opted in (fake Twilio), and its delivery
proves SMS reaches her; the console shows when each of her channels last worked."""

from __future__ import annotations

import json

from alertd.channels.sms.templates import TO_HER
from alertd.web.keys import ENGINE
from tests.buttons_support import provision_button
from tests.fake_twilio import fake_twilio, sms_client, sms_settings  # noqa: F401 (fixtures)
from tests.helpers import bearer, device_token, enrol, officer_token, offset, refusals, seed_responders

HER_PHONE = "+77015559876"


async def _self_test(client, token, client_test_id, **extra):
    resp = await client.post("/v1/tests", json={"client_test_id": client_test_id, **extra}, headers=bearer(token))
    return resp.status, await resp.json()


async def test_self_test_is_idempotent_dispatches_nothing_and_texts_only_who_opted_in(
        sms_client, sms_settings, clock, db, fake_twilio):
    await seed_responders(db)
    quiet = await enrol(db, clock.now(), home=offset(1), phone="+77015550001")  # never opted in
    her = await enrol(db, clock.now(), home=offset(1), phone=HER_PHONE, opt_in_sms=True)
    button = await provision_button(db, sms_settings, clock, her.person_id, caseworker_id="cc-1")
    engine = sms_client.app[ENGINE]

    status, quiet_answer = await _self_test(sms_client, device_token(sms_settings, quiet, clock.now()), "t-1")
    assert status == 201 and quiet_answer["status"] == "ok"
    token = device_token(sms_settings, her, clock.now())
    status, first = await _self_test(sms_client, token, "t-1", language="kk")
    assert status == 201 and first["status"] == "ok" and first["test_id"] != quiet_answer["test_id"]
    status, again = await _self_test(sms_client, token, "t-1", language="kk")
    assert (status, again) == (200, first)  # the same answer, recorded once
    await engine.run_once()

    assert await db.fetchval("SELECT count(*) FROM alerts") == 0
    assert await db.fetchval("SELECT count(*) FROM dispatches") == 0
    rows = await db.fetch("SELECT person_id, device_id, channel, client_test_id FROM channel_tests ORDER BY person_id")
    assert sorted((r["person_id"], r["device_id"], r["channel"]) for r in rows) == sorted([
        (quiet.person_id, quiet.device_id, "app"), (her.person_id, her.device_id, "app")])
    # her caseworker is told (the one without a button: her region's supervisors); no number in any notice
    notices = await db.fetch("SELECT recipient, payload FROM outbox WHERE template = 'channel_proven' ORDER BY id")
    assert [(n["recipient"], n["payload"]["person_id"]) for n in notices] == [
        ("supervisor:unknown", quiet.person_id), ("cc-1", her.person_id)]
    assert "+7701555" not in json.dumps([dict(n["payload"]) for n in notices])
    # one SMS, to her who opted in, neutral and in her language; nothing to the one who did not
    assert fake_twilio.unexpected == []
    [sent] = fake_twilio.messages
    assert (sent.to, sent.body) == (HER_PHONE, TO_HER["self_test"]["kk"])
    for word in ("alertd", "alert", "тревог", "дабыл", "помощ", "police", "полиц", her.person_id):
        assert word.lower() not in sent.body.lower()
    assert fake_twilio.sent_to("+77015550001") == []

    # SMS is proven once her confirmation is delivered, not before
    caseworker = bearer(officer_token(sms_settings, "cc-1", clock.now()))
    caseload = (await (await sms_client.get("/console/api/caseload", headers=caseworker)).json())["items"]
    assert caseload == [{"person_id": her.person_id, "channels": [
        {"channel": "app", "device_id": her.device_id, "last_proven_at": clock.now().isoformat()},
        {"channel": "button", "device_id": button.device_id, "last_proven_at": None},
        {"channel": "sms", "device_id": None, "last_proven_at": None}]}]
    clock.advance(30)
    for status in ("sent", "delivered", "delivered"):  # a repeated callback proves nothing twice
        resp = await fake_twilio.post_status(sms_client, sent, status)
        assert resp.status == 200
    caseload = (await (await sms_client.get("/console/api/caseload", headers=caseworker)).json())["items"]
    assert caseload[0]["channels"][2] == {"channel": "sms", "device_id": None,
                                          "last_proven_at": clock.now().isoformat()}
    assert await db.fetchval("SELECT count(*) FROM channel_tests WHERE channel = 'sms'") == 1
    assert [n["payload"]["channel"] for n in await db.fetch(
        "SELECT payload FROM outbox WHERE template = 'channel_proven' AND recipient = 'cc-1' ORDER BY id")] == [
        "app", "sms"]
    assert await db.fetchval("SELECT count(*) FROM alerts") == 0


async def test_opting_out_before_sending_stops_the_text_and_bad_requests_change_nothing(
        sms_client, sms_settings, clock, db, fake_twilio):
    await seed_responders(db)
    her = await enrol(db, clock.now(), phone=HER_PHONE, opt_in_sms=True)
    token = device_token(sms_settings, her, clock.now())
    assert (await _self_test(sms_client, token, "t-9"))[0] == 201
    await db.execute("UPDATE people SET opt_in_sms = false WHERE id = $1", her.person_id)
    await sms_client.app[ENGINE].run_once()
    assert fake_twilio.messages == []  # checked again when sending: nothing to her phone once she opted out
    assert await db.fetchval("SELECT status FROM outbox WHERE channel = 'sms'") == "failed"

    before = await db.fetchval("SELECT count(*) FROM channel_tests")
    for body in ({}, {"client_test_id": ""}, {"client_test_id": "x" * 101}, {"client_test_id": 5},
                 {"client_test_id": "t", "language": "de"}):
        resp = await sms_client.post("/v1/tests", json=body, headers=bearer(token))
        assert resp.status == 400, body
    resp = await sms_client.post("/v1/tests", json={"client_test_id": "t"},
                                 headers=bearer(officer_token(sms_settings, "cc-1", clock.now())))
    assert resp.status == 403
    resp = await sms_client.post("/v1/tests", json={"client_test_id": "t"})
    assert resp.status == 401
    assert await db.fetchval("SELECT count(*) FROM channel_tests") == before
    assert await refusals(db) >= 2
