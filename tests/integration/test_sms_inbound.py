"""Inbound SMS on the real webhook: signatures, idempotency, code phrases, unknown numbers, triage, acks by SMS."""

from __future__ import annotations

import asyncio

from twilio.request_validator import RequestValidator

from alertd.web.keys import CTX, ENGINE, POOL
from tests.fake_twilio import fake_twilio, inbound, sign, sms_client, sms_settings  # noqa: F401  (fixtures)
from tests.helpers import bearer, enrol, officer_token, offset, responder, seed_responders

EMPTY = '<?xml version="1.0" encoding="UTF-8"?><Response />'


def here(km_north: float = 0.5) -> str:
    lat, lon = offset(km_north)
    return f"{lat:.5f}, {lon:.5f}"


async def _count(db, table: str) -> int:
    return await db.fetchval(f"SELECT count(*) FROM {table}")


async def test_sms_from_enrolled_number_raises_alert_and_gets_an_empty_reply(sms_client, sms_settings, clock, db):
    await seed_responders(db)
    await enrol(db, clock.now(), phone="+77015550001")
    resp = await inbound(sms_client, sms_settings, "+77015550001", f"help {here()}")
    assert resp.status == 200
    assert resp.content_type == "text/xml" and await resp.text() == EMPTY
    alert = await db.fetchrow("SELECT id, channel, verified, location_source, triage FROM alerts")
    assert (alert["channel"], alert["verified"], alert["location_source"], alert["triage"]) == \
        ("sms", True, "sms_text", False)
    assert await db.fetchval("SELECT count(*) FROM dispatches WHERE alert_id = $1", alert["id"]) == 3
    note = await db.fetchval("SELECT data FROM alert_events WHERE type = 'sms_received'")
    assert note["location_form"] == "text"


async def test_forged_missing_tampered_and_host_signed_webhooks_are_refused(sms_client, sms_settings, clock, db):
    await seed_responders(db)
    await enrol(db, clock.now(), phone="+77015550002")
    params = {"MessageSid": "SM" + "a" * 32, "From": "+77015550002", "To": "+15005550006", "Body": here()}
    public = sms_settings.public_url + "/v1/sms/inbound"
    as_seen_locally = str(sms_client.make_url("/v1/sms/inbound"))  # what the Host header would give
    attempts = [
        {},                                                                        # missing
        sign("not-the-token", public, params),                                     # forged
        sign(sms_settings.twilio_auth_token, as_seen_locally, params),             # signed for the Host header
        sign(sms_settings.twilio_auth_token, public, {**params, "Body": "other"}),  # body changed after signing
        sign(sms_settings.twilio_auth_token, public + "?x=1", params),             # another URL
    ]
    for headers in attempts:
        clock.advance(60)  # a minute apart: each refusal opens its own episode, with its own reason
        resp = await sms_client.post("/v1/sms/inbound", data=params, headers=headers)
        assert resp.status == 403
        assert (await resp.json())["error"]["code"] == "forbidden"
    kinds = [r["kind"] for r in await db.fetch("SELECT kind FROM security_events")]
    assert kinds == ["bad_signature"] * len(attempts)
    reasons = [r["detail"]["reason"] for r in await db.fetch("SELECT detail FROM security_events ORDER BY id")]
    assert reasons[0] == "missing" and set(reasons[1:]) == {"mismatch"}
    assert await _count(db, "alerts") == 0 and await _count(db, "sms_inbound") == 0
    assert await _count(db, "dispatches") == 0
    # the same request, signed for the public URL, passes: the proxy case works
    resp = await sms_client.post("/v1/sms/inbound", data=params,
                                 headers=sign(sms_settings.twilio_auth_token, public, params))
    assert resp.status == 200 and await _count(db, "alerts") == 1


async def test_status_callback_is_signature_checked_too(sms_client, sms_settings, db):
    params = {"MessageSid": "SM" + "b" * 32, "MessageStatus": "delivered"}
    resp = await sms_client.post("/v1/sms/status", data=params,
                                 headers=sign("forged", sms_settings.public_url + "/v1/sms/status", params))
    assert resp.status == 403
    assert await db.fetchval("SELECT kind FROM security_events") == "bad_signature"


async def test_secondary_token_is_accepted_while_rotating(settings, clock, db, fake_twilio):
    from aiohttp.test_utils import TestClient, TestServer

    from alertd.app import create_app

    rotating = settings.replace(twilio_auth_token="old-token-aaaaaaaaaaaaaaaaaaaaaaaa",
                                twilio_auth_token_secondary="new-token-bbbbbbbbbbbbbbbbbbbbbbbb")
    await seed_responders(db)
    await enrol(db, clock.now(), phone="+77015550003")
    client = TestClient(TestServer(create_app(rotating, clock, run_engine=False)))
    await client.start_server()
    try:
        for token in ("old-token-aaaaaaaaaaaaaaaaaaaaaaaa", "new-token-bbbbbbbbbbbbbbbbbbbbbbbb"):
            resp = await inbound(client, rotating, "+77015550003", here(), token=token)
            assert resp.status == 200
        resp = await inbound(client, rotating, "+77015550003", here(), token="retired-token")
        assert resp.status == 403
    finally:
        await client.close()
    assert await _count(db, "sms_inbound") == 2


async def test_replayed_message_sid_makes_one_alert(sms_client, sms_settings, clock, db):
    await seed_responders(db)
    await enrol(db, clock.now(), phone="+77015550004")
    sid = "SM" + "c" * 32
    first = await inbound(sms_client, sms_settings, "+77015550004", here(), sid=sid)
    again = await asyncio.gather(*[inbound(sms_client, sms_settings, "+77015550004", here(), sid=sid)
                                   for _ in range(3)])
    assert [first.status, *(r.status for r in again)] == [200] * 4
    assert await _count(db, "alerts") == 1 and await _count(db, "dispatches") == 3
    assert await db.fetchval("SELECT outcome FROM sms_inbound WHERE message_sid = $1", sid) == "raised"
    assert await db.fetchval("SELECT count(*) FROM alert_events WHERE type = 'sms_received'") == 1


async def test_concurrent_messages_from_one_person_make_one_alert(sms_client, sms_settings, clock, db):
    await seed_responders(db)
    await enrol(db, clock.now(), phone="+77015550005")
    answers = await asyncio.gather(*[inbound(sms_client, sms_settings, "+77015550005", f"{here(n)} #{n}")
                                     for n in range(4)])
    assert all(r.status == 200 for r in answers)
    assert await _count(db, "alerts") == 1
    outcomes = sorted(r["outcome"] for r in await db.fetch("SELECT outcome FROM sms_inbound"))
    assert outcomes == ["added", "added", "added", "raised"]


async def test_code_phrase_gates_alerts_in_any_script(sms_client, sms_settings, clock, db):
    await seed_responders(db)
    await enrol(db, clock.now(), phone="+77015550006", code_phrase="Көк қызғалдақ", home=offset(1))
    for text in ("сәлем, қалайсың?", "hello", "көк"):
        resp = await inbound(sms_client, sms_settings, "+77015550006", text)
        assert resp.status == 200 and await resp.text() == EMPTY
    assert await _count(db, "alerts") == 0
    assert {r["outcome"] for r in await db.fetch("SELECT outcome FROM sms_inbound")} == {"ignored"}
    assert await _count(db, "outbox") == 0  # nothing is sent anywhere, least of all to her
    resp = await inbound(sms_client, sms_settings, "+77015550006", "кок кызгалдак!!")  # typed without Kazakh letters
    assert resp.status == 200 and await resp.text() == EMPTY
    alert = await db.fetchrow("SELECT location_source, verified FROM alerts")
    assert alert["location_source"] == "home" and alert["verified"]
    # while her alert is open, a message without the phrase still adds (a location, a note)
    await inbound(sms_client, sms_settings, "+77015550006", f"https://maps.google.com/?q={here(2.5).replace(' ', '')}")
    assert await _count(db, "alerts") == 1
    assert await db.fetchval("SELECT location_source FROM alerts") == "sms_text"


async def test_aml_from_her_number_needs_no_code_phrase(sms_client, sms_settings, clock, db):
    await seed_responders(db)
    await enrol(db, clock.now(), phone="+77015550009", code_phrase="blue tulip")
    lat, lon = offset(0.5)
    resp = await inbound(sms_client, sms_settings, "+77015550009", AML.format(lat=lat, lon=lon))
    assert resp.status == 200 and await resp.text() == EMPTY
    row = await db.fetchrow("SELECT verified, location_source FROM alerts")
    assert (row["verified"], row["location_source"]) == (True, "aml")


async def test_further_sms_adds_location_and_note_to_the_open_alert(sms_client, sms_settings, clock, db):
    await seed_responders(db)
    await enrol(db, clock.now(), phone="+77015550007", home=offset(13.5))
    await inbound(sms_client, sms_settings, "+77015550007", "help")
    alert_id = await db.fetchval("SELECT id FROM alerts")
    assert await db.fetchval("SELECT location_source FROM alerts") == "home"
    clock.advance(30)
    lat, lon = offset(0.5)
    resp = await inbound(sms_client, sms_settings, "+77015550007", f"geo:{lat:.5f},{lon:.5f};u=20")
    assert resp.status == 200
    assert await _count(db, "alerts") == 1
    row = await db.fetchrow("SELECT location_source, location_accuracy_m FROM alerts WHERE id = $1", alert_id)
    assert (row["location_source"], row["location_accuracy_m"]) == ("sms_text", 20.0)
    assert await db.fetchval("SELECT count(*) FROM location_fixes WHERE alert_id = $1", alert_id) == 1
    notes = [r["data"]["note"] for r in await db.fetch(
        "SELECT data FROM alert_events WHERE type = 'sms_received' ORDER BY id")]
    assert notes == ["help", f"geo:{lat:.5f},{lon:.5f};u=20"]
    # it moved ~13 km: the police dispatch went to the post that is nearest now
    assert await db.fetchval("SELECT responder_id FROM dispatches WHERE kind = 'police_post' AND status = 'pending'") \
        == "pol-1"


async def test_no_location_and_no_home_puts_the_alert_in_triage(sms_client, sms_settings, clock, db):
    await seed_responders(db)
    await enrol(db, clock.now(), phone="+77015550008")
    await inbound(sms_client, sms_settings, "+77015550008", "help")
    assert await db.fetchval("SELECT triage FROM alerts") is True
    assert await _count(db, "dispatches") == 0


AML = 'A"ML=1;lt=+{lat:.5f};lg=+{lon:.5f};rd=40;top=20261126115930;lc=68;pm=G;si=401011234567890;ml=5'


async def test_unknown_number_with_aml_raises_an_unverified_alert(sms_client, sms_settings, db):
    await seed_responders(db)
    lat, lon = offset(0.5)
    resp = await inbound(sms_client, sms_settings, "+99655512345", AML.format(lat=lat, lon=lon))
    assert resp.status == 200 and await resp.text() == EMPTY
    alert = await db.fetchrow("SELECT verified, location_source, location_accuracy_m, person_id FROM alerts")
    assert (alert["verified"], alert["location_source"], alert["location_accuracy_m"]) == (False, "aml", 40.0)
    assert await _count(db, "dispatches") == 3
    flags = await db.fetchval("SELECT data->'flags' FROM alert_events WHERE type = 'sms_received'")
    assert flags == ["aml_length_mismatch"]
    # the stranger is not enrolled: no phone of hers in person_phones, a pseudonymous contact instead
    assert await _count(db, "person_phones") == 0
    assert await db.fetchval("SELECT person_id FROM sms_contacts") == alert["person_id"]
    # her next message (no location this time) joins the same alert
    await inbound(sms_client, sms_settings, "+99655512345", "he is coming back")
    assert await _count(db, "alerts") == 1 and await _count(db, "sms_triage") == 0


async def test_unknown_number_with_coordinates_or_malformed_aml(sms_client, sms_settings, db):
    await seed_responders(db)
    await inbound(sms_client, sms_settings, "+99655500001", f"помогите {here()}")
    await inbound(sms_client, sms_settings, "+99655500002", 'A"ML=1;lt=garbage;lg=+70.1;rd=50')
    rows = await db.fetch("SELECT verified, triage, location_source FROM alerts ORDER BY created_at, id")
    assert sorted((r["verified"], r["triage"], r["location_source"]) for r in rows) == \
        [(False, False, "sms_text"), (False, True, None)]


async def test_unknown_number_with_nothing_to_act_on_goes_to_the_triage_queue(sms_client, sms_settings, clock, db):
    await seed_responders(db)
    resp = await inbound(sms_client, sms_settings, "+99655500003", "please help, I can't talk")
    assert resp.status == 200 and await resp.text() == EMPTY
    assert await _count(db, "alerts") == 0 and await _count(db, "dispatches") == 0
    triage = await db.fetchrow("SELECT phone, body FROM sms_triage")
    assert (triage["phone"], triage["body"]) == ("+99655500003", "please help, I can't talk")
    notice = await db.fetch("SELECT channel, recipient, template FROM outbox")
    assert {(r["channel"], r["template"]) for r in notice} == {("console", "sms_triage"), ("log", "sms_triage")}
    # the duty desk reads the queue (audited) and resolves the message; an officer may not read it
    resp = await sms_client.get("/v1/sms/triage", headers=bearer(officer_token(sms_settings, "pol-1", clock.now())))
    assert resp.status == 403
    desk = bearer(officer_token(sms_settings, "pol-1", clock.now(), role="supervisor"))
    items = (await (await sms_client.get("/v1/sms/triage", headers=desk)).json())["items"]
    assert [(i["phone"], i["body"]) for i in items] == [("+99655500003", "please help, I can't talk")]
    assert await db.fetchval("SELECT action FROM audit_log") == "read_sms_triage"
    resp = await sms_client.post(f"/v1/sms/triage/{items[0]['id']}/resolve", headers=desk)
    assert resp.status == 200
    assert (await (await sms_client.get("/v1/sms/triage", headers=desk)).json())["items"] == []
    assert (await sms_client.post(f"/v1/sms/triage/{items[0]['id']}/resolve", headers=desk)).status == 404


async def _dispatched(sms_client, sms_settings, clock, db, sender="+77015550010"):
    await enrol(db, clock.now(), phone=sender)
    await inbound(sms_client, sms_settings, sender, here())
    return await db.fetchrow("SELECT id, code, status, responder_id FROM dispatches WHERE kind = 'crisis_centre'")


async def test_responder_acknowledges_by_sms_reply(sms_client, sms_settings, clock, db):
    await seed_responders(db)
    d = await _dispatched(sms_client, sms_settings, clock, db)
    assert d["responder_id"] == "cc-1"
    clock.advance(10)
    resp = await inbound(sms_client, sms_settings, "+77010000001", f"да {d['code'].lower()}")
    assert resp.status == 200
    assert await resp.text() == \
        f'<?xml version="1.0" encoding="UTF-8"?><Response><Message>{d["code"]} подтверждён.</Message></Response>'
    row = await db.fetchrow("SELECT status, late_ack FROM dispatches WHERE id = $1", d["id"])
    assert (row["status"], row["late_ack"]) == ("acknowledged", False)
    ack = await db.fetchrow("SELECT actor, data FROM alert_events WHERE type = 'acknowledged'")
    assert ack["actor"] == "sms:cc-1" and ack["data"]["via"] == "sms"


async def test_code_from_an_unregistered_number_acknowledges_nothing(sms_client, sms_settings, clock, db):
    await seed_responders(db)
    d = await _dispatched(sms_client, sms_settings, clock, db)
    resp = await inbound(sms_client, sms_settings, "+77019999999", f"OK {d['code']}")
    assert resp.status == 200 and await resp.text() == EMPTY
    assert await db.fetchval("SELECT status FROM dispatches WHERE id = $1", d["id"]) == "pending"
    event = await db.fetchrow("SELECT kind, detail FROM security_events")
    assert event["kind"] == "sms_ack_unregistered" and event["detail"]["dispatch_id"] == str(d["id"])


async def test_a_responder_cannot_acknowledge_another_responders_dispatch(sms_client, sms_settings, clock, db):
    await seed_responders(db, [
        responder("pol-1", "police_post", 2, phone="+77010000011", language="en"),
        responder("cc-1", "crisis_centre", 3, phone="+77010000012", language="kk"),
        responder("mu-1", "mobile_unit", 4),
    ])
    await _dispatched(sms_client, sms_settings, clock, db)
    police = await db.fetchrow("SELECT id, code FROM dispatches WHERE responder_id = 'pol-1'")
    resp = await inbound(sms_client, sms_settings, "+77010000012", f"ИӘ {police['code']}")
    assert f"{police['code']} шақыруы бұл нөмір үшін табылмады." in await resp.text()
    assert await db.fetchval("SELECT status FROM dispatches WHERE id = $1", police["id"]) == "pending"
    resp = await inbound(sms_client, sms_settings, "+77010000011", "what?")
    assert "To acknowledge, reply with the dispatch code" in await resp.text()
    resp = await inbound(sms_client, sms_settings, "+77010000011", police["code"])
    assert f"<Message>{police['code']} acknowledged.</Message>" in await resp.text()


async def test_ack_after_the_deadline_is_accepted_as_late(sms_client, sms_settings, clock, db):
    await seed_responders(db)
    d = await _dispatched(sms_client, sms_settings, clock, db)
    clock.advance(sms_settings.ack_deadline("crisis_centre") + 1)
    await sms_client.app[ENGINE].run_once()
    assert await db.fetchval("SELECT status FROM dispatches WHERE id = $1", d["id"]) == "expired"
    resp = await inbound(sms_client, sms_settings, "+77010000001", d["code"])
    assert "подтверждён" in await resp.text()
    row = await db.fetchrow("SELECT status, late_ack FROM dispatches WHERE id = $1", d["id"])
    assert (row["status"], row["late_ack"]) == ("acknowledged", True)
    assert await db.fetchval("SELECT count(*) FROM alert_events WHERE type = 'late_ack'") == 1


async def test_ack_of_a_cancelled_dispatch_is_refused(sms_client, sms_settings, clock, db):
    from alertd.service import cancelling

    await seed_responders(db)
    d = await _dispatched(sms_client, sms_settings, clock, db)
    person_id = await db.fetchval("SELECT person_id FROM alerts")
    await cancelling.cancel(sms_client.app[POOL], sms_client.app[CTX], alert_id=str(await db.fetchval(
        "SELECT id FROM alerts")), person_id=person_id, pin="1234", source="test")
    resp = await inbound(sms_client, sms_settings, "+77010000001", f"OK {d['code']}")
    assert f"Вызов {d['code']} уже не активен." in await resp.text()
    assert await db.fetchval("SELECT status FROM dispatches WHERE id = $1", d["id"]) == "cancelled"


async def test_malformed_webhook_after_a_good_signature_is_400(sms_client, sms_settings):
    params = {"Body": "no sid, no sender"}
    headers = RequestValidator(sms_settings.twilio_auth_token).compute_signature(
        sms_settings.public_url + "/v1/sms/inbound", params)
    resp = await sms_client.post("/v1/sms/inbound", data=params, headers={"X-Twilio-Signature": headers})
    assert resp.status == 400


def test_sms_endpoints_are_in_the_api_spec():
    from alertd.http.openapi import SPEC

    for path in ("/v1/sms/inbound", "/v1/sms/status", "/v1/sms/triage", "/v1/sms/triage/{id}/resolve"):
        assert path in SPEC["paths"]


def _failing(*_args, **_kwargs):
    raise ConnectionResetError("database went away mid-transaction")


async def test_failure_midway_answers_503_and_twilios_retry_makes_one_alert(sms_client, sms_settings, clock, db,
                                                                           monkeypatch):
    from alertd.service import dispatching

    await seed_responders(db)
    await enrol(db, clock.now(), phone="+77015550020")
    sid = "SM" + "d" * 32
    monkeypatch.setattr(dispatching, "record", _failing)  # after the lock and the nearest responders were read
    resp = await inbound(sms_client, sms_settings, "+77015550020", here(), sid=sid)
    assert resp.status == 503  # the database went away: Twilio hears no 200, so it retries (issue 13: was 500)
    assert await _count(db, "alerts") == 0 and await _count(db, "sms_inbound") == 0
    monkeypatch.undo()
    resp = await inbound(sms_client, sms_settings, "+77015550020", here(), sid=sid)
    assert resp.status == 200 and await _count(db, "alerts") == 1 and await _count(db, "dispatches") == 3


async def test_crash_after_a_location_was_added_is_finished_by_the_retry(sms_client, sms_settings, clock, db,
                                                                         monkeypatch):
    from alertd.channels.sms import inbound as sms_inbound

    await seed_responders(db)
    await enrol(db, clock.now(), phone="+77015550021")
    await inbound(sms_client, sms_settings, "+77015550021", here())
    sid = "SM" + "e" * 32
    monkeypatch.setattr(sms_inbound, "_record_note", _failing)
    resp = await inbound(sms_client, sms_settings, "+77015550021", f"now {here(0.6)}", sid=sid)
    assert resp.status == 503  # the fix committed, the note and the answer were lost (issue 13: was 500)
    monkeypatch.undo()
    resp = await inbound(sms_client, sms_settings, "+77015550021", f"now {here(0.6)}", sid=sid)
    assert resp.status == 200
    assert await _count(db, "alerts") == 1 and await _count(db, "dispatches") == 3
    assert await db.fetchval("SELECT outcome FROM sms_inbound WHERE message_sid = $1", sid) == "added"
    assert await db.fetchval("SELECT count(*) FROM alert_events WHERE type = 'sms_received'") == 2
