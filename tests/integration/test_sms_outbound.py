"""Responders told by SMS through the outbox: Twilio (fake REST API) and a generic HTTP gateway, never twice."""

from __future__ import annotations

import json

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from alertd.notifiers.log import LogNotifier
from alertd.web.keys import ENGINE
from tests.fake_twilio import FROM_NUMBER, fake_twilio, inbound, sms_client, sms_settings  # noqa: F401 (fixtures)
from tests.helpers import bearer, enrol, officer_token, offset, responder, seed_responders

SURVIVOR = "+77015551234"


def here(km_north: float = 0.5) -> str:
    lat, lon = offset(km_north)
    return f"{lat:.5f},{lon:.5f}"


async def _alert(client, settings, clock, db, **responders_kw):
    await enrol(db, clock.now(), phone=SURVIVOR)
    resp = await inbound(client, settings, SURVIVOR, here())
    assert resp.status == 200


async def _sms_outbox(db):
    return await db.fetch("SELECT id, recipient, template, status, attempts, provider_ref, last_error, "
                          "next_attempt_at FROM outbox WHERE channel = 'sms' ORDER BY id")


async def test_dispatch_sms_in_each_responders_language_with_validity_and_callback(sms_client, sms_settings, clock,
                                                                                   db, fake_twilio):
    await seed_responders(db, [
        responder("pol-1", "police_post", 2, phone="+77010000021", language="en"),
        responder("cc-1", "crisis_centre", 3, phone="+77010000022", language="kk"),
        responder("mu-1", "mobile_unit", 4, phone="+77010000023", language="ru"),
    ])
    await _alert(sms_client, sms_settings, clock, db)
    await sms_client.app[ENGINE].run_once()
    assert fake_twilio.unexpected == []
    assert len(fake_twilio.messages) == 3
    codes = {r["responder_id"]: r["code"] for r in await db.fetch("SELECT responder_id, code FROM dispatches")}
    by_to = {m.to: m for m in fake_twilio.messages}
    assert by_to["+77010000021"].body.startswith(f"ALERT {codes['pol-1']} police: maps.google.com/?q=")
    assert by_to["+77010000022"].body.startswith(f"ДАБЫЛ {codes['cc-1']} дағдарыс орталығы")
    assert by_to["+77010000023"].body.startswith(f"ТРЕВОГА {codes['mu-1']} моб. группа")
    person_id = await db.fetchval("SELECT person_id FROM alerts")
    for m in fake_twilio.messages:
        assert m.from_ == FROM_NUMBER and m.validity_period == "600"
        assert m.status_callback == "https://alertd.example.org/v1/sms/status"
        assert person_id not in m.body and SURVIVOR not in m.body
    assert fake_twilio.sent_to(SURVIVOR) == []
    rows = await _sms_outbox(db)
    assert {r["status"] for r in rows} == {"sent"}
    assert {r["provider_ref"] for r in rows} == {m.sid for m in fake_twilio.messages}


async def test_rate_limited_send_backs_off_and_is_sent_once(sms_client, sms_settings, clock, db, fake_twilio):
    await seed_responders(db)  # only cc-1 has a phone
    fake_twilio.script = [429, 429]
    await _alert(sms_client, sms_settings, clock, db)
    await sms_client.app[ENGINE].run_once()
    [row] = await _sms_outbox(db)
    assert (row["status"], row["attempts"]) == ("pending", 1) and "429" in row["last_error"]
    assert (row["next_attempt_at"] - clock.now()).total_seconds() == 2  # backoff 2^attempts
    await sms_client.app[ENGINE].run_once()
    assert len(fake_twilio.requests) == 1  # not due yet
    clock.advance(2)
    await sms_client.app[ENGINE].run_once()
    [row] = await _sms_outbox(db)
    assert (row["status"], row["attempts"]) == ("pending", 2)
    assert (row["next_attempt_at"] - clock.now()).total_seconds() == 4
    clock.advance(4)
    await sms_client.app[ENGINE].run_once()
    [row] = await _sms_outbox(db)
    assert row["status"] == "sent" and len(fake_twilio.messages) == 1 and len(fake_twilio.requests) == 3


async def test_rejected_number_is_not_retried(sms_client, sms_settings, clock, db, fake_twilio):
    await seed_responders(db)
    fake_twilio.script = [400]
    await _alert(sms_client, sms_settings, clock, db)
    await sms_client.app[ENGINE].run_once()
    clock.advance(600)
    await sms_client.app[ENGINE].run_once()
    [row] = await _sms_outbox(db)
    assert row["status"] == "failed" and "21211" in row["last_error"]
    assert len(fake_twilio.requests) == 1 and fake_twilio.messages == []


@pytest.mark.parametrize("failure, accepted", [
    ("accept_then_timeout", True),   # Twilio took it, the answer never came: reconcile finds it, no resend
    ("timeout", False),              # nothing reached Twilio: reconcile finds nothing, send once
    (500, False),                    # a 5xx may or may not have been accepted: reconcile first
])
async def test_ambiguous_failure_is_reconciled_never_sent_twice(sms_client, sms_settings, clock, db, fake_twilio,
                                                                failure, accepted):
    await seed_responders(db)
    fake_twilio.hang_s = 2.0  # the client gives up after sms_send_timeout_s = 1.5
    fake_twilio.script = [failure]
    await _alert(sms_client, sms_settings, clock, db)
    await sms_client.app[ENGINE].run_once()
    [row] = await _sms_outbox(db)
    assert row["status"] == "pending"
    assert await db.fetchval("SELECT state FROM sms_messages WHERE outbox_id = $1", row["id"]) == "ambiguous"
    assert len(fake_twilio.messages) == (1 if accepted else 0)
    clock.advance(2)
    await sms_client.app[ENGINE].run_once()
    [row] = await _sms_outbox(db)
    assert row["status"] == "sent"
    assert len(fake_twilio.messages) == 1, "sent twice"
    assert len(fake_twilio.requests) == (1 if accepted else 2)
    assert row["provider_ref"] == fake_twilio.messages[0].sid
    state = await db.fetchrow("SELECT state, sid FROM sms_messages WHERE outbox_id = $1", row["id"])
    assert (state["state"], state["sid"]) == ("accepted", fake_twilio.messages[0].sid)


async def test_when_the_reconcile_fails_nothing_is_sent_until_it_succeeds(sms_client, sms_settings, clock, db,
                                                                           fake_twilio):
    await seed_responders(db)
    fake_twilio.hang_s = 2.0
    fake_twilio.script = ["accept_then_timeout"]
    fake_twilio.list_script = [500]
    await _alert(sms_client, sms_settings, clock, db)
    await sms_client.app[ENGINE].run_once()
    clock.advance(2)
    await sms_client.app[ENGINE].run_once()  # the reconcile gets a 500: no resend on a guess
    [row] = await _sms_outbox(db)
    assert row["status"] == "pending" and "reconcile" in row["last_error"]
    assert len(fake_twilio.requests) == 1 and fake_twilio.lists == 1
    clock.advance(4)
    await sms_client.app[ENGINE].run_once()
    [row] = await _sms_outbox(db)
    assert row["status"] == "sent" and len(fake_twilio.messages) == 1 and len(fake_twilio.requests) == 1


async def test_delivery_status_is_recorded_and_undelivered_escalates_now(sms_client, sms_settings, clock, db,
                                                                         fake_twilio):
    await seed_responders(db)
    await _alert(sms_client, sms_settings, clock, db)
    await sms_client.app[ENGINE].run_once()
    [sent] = fake_twilio.messages
    dispatch = await db.fetchrow("SELECT id, code, ack_deadline FROM dispatches WHERE responder_id = 'cc-1'")
    resp = await fake_twilio.post_status(sms_client, sent, "sent")
    assert resp.status == 200
    assert await db.fetchval("SELECT delivery FROM sms_messages WHERE sid = $1", sent.sid) == "sent"
    clock.advance(5)
    resp = await fake_twilio.post_status(sms_client, sent, "undelivered", error_code="30003")
    assert resp.status == 200
    event = await db.fetchrow("SELECT dispatch_id, responder_id, data FROM alert_events WHERE type = 'sms_undelivered'")
    assert (event["dispatch_id"], event["responder_id"]) == (dispatch["id"], "cc-1")
    assert event["data"]["error_code"] == "30003"
    assert await db.fetchval("SELECT ack_deadline FROM dispatches WHERE id = $1", dispatch["id"]) == clock.now()
    assert await db.fetchval("SELECT count(*) FROM outbox WHERE template = 'sms_undelivered'") == 2  # console, log
    # a late 'sent' does not undo 'undelivered'
    await fake_twilio.post_status(sms_client, sent, "sent")
    assert await db.fetchval("SELECT delivery FROM sms_messages WHERE sid = $1", sent.sid) == "undelivered"
    # visible on the dispatch itself, to its officer
    resp = await sms_client.get("/v1/dispatches", headers=bearer(officer_token(sms_settings, "cc-1", clock.now())))
    [item] = (await resp.json())["items"]
    assert item["id"] == str(dispatch["id"]) and item["sms_delivery"] == "undelivered"
    await sms_client.app[ENGINE].run_once()
    assert await db.fetchval("SELECT status FROM dispatches WHERE id = $1", dispatch["id"]) == "expired"
    pending = "SELECT responder_id FROM dispatches WHERE kind = 'crisis_centre' AND status = 'pending'"
    assert await db.fetchval(pending) == "cc-2"


async def test_undelivered_sms_does_not_escalate_a_unit_whose_terminal_got_the_dispatch(sms_client, sms_settings,
                                                                                         clock, db, fake_twilio):
    await seed_responders(db, [responder("pol-1", "police_post", 2), responder("cc-1", "crisis_centre", 3),
                               responder("mu-1", "mobile_unit", 4, phone="+77010000041")])
    await _alert(sms_client, sms_settings, clock, db)
    await sms_client.app[ENGINE].run_once()
    # the unit terminal got the dispatch: the outbox row the mqtt notifier leaves once the broker acknowledged it
    await db.execute("INSERT INTO outbox (channel, recipient, template, payload, alert_id, dispatch_id, status, "
                     "next_attempt_at, created_at, sent_at) SELECT 'mqtt', 'mu-1', 'dispatch', '{}', alert_id, id, "
                     "'sent', created_at, created_at, created_at FROM dispatches WHERE responder_id = 'mu-1'")
    [sent] = fake_twilio.sent_to("+77010000041")
    deadline = await db.fetchval("SELECT ack_deadline FROM dispatches WHERE responder_id = 'mu-1'")
    await fake_twilio.post_status(sms_client, sent, "failed", error_code="30005")
    assert await db.fetchval("SELECT count(*) FROM alert_events WHERE type = 'sms_undelivered'") == 1
    assert await db.fetchval("SELECT ack_deadline FROM dispatches WHERE responder_id = 'mu-1'") == deadline
    assert await db.fetchval("SELECT count(*) FROM outbox WHERE template = 'sms_undelivered'") == 2


async def test_delivered_status_shows_on_the_dispatch(sms_client, sms_settings, clock, db, fake_twilio):
    await seed_responders(db)
    await _alert(sms_client, sms_settings, clock, db)
    await sms_client.app[ENGINE].run_once()
    [sent] = fake_twilio.messages
    await fake_twilio.post_status(sms_client, sent, "delivered")
    dispatch_id = await db.fetchval("SELECT id FROM dispatches WHERE responder_id = 'cc-1'")
    assert await db.fetchval("SELECT dispatch_id FROM alert_events WHERE type = 'sms_delivered'") == dispatch_id
    assert await db.fetchval("SELECT status FROM dispatches WHERE id = $1", dispatch_id) == "pending"


class FakeGateway:
    """A generic HTTP SMS gateway: records what it is sent, answers as scripted."""

    def __init__(self) -> None:
        self.received: list[dict] = []
        self.script: list[int] = []

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/send", self.send)
        return app

    async def send(self, request: web.Request) -> web.Response:
        self.received.append({"headers": dict(request.headers), "body": await request.text()})
        status = self.script.pop(0) if self.script else 200
        if status != 200:
            return web.Response(status=status)
        return web.json_response({"id": f"gw-{len(self.received)}"})


async def test_gateway_serves_its_prefixes_and_twilio_the_rest(settings, clock, db, fake_twilio):
    from alertd.app import create_app

    gateway = FakeGateway()
    server = TestServer(gateway.app())
    await server.start_server()
    routed = settings.replace(
        twilio_account_sid=fake_twilio.account_sid, twilio_auth_token=fake_twilio.auth_token,
        twilio_from_number=FROM_NUMBER, twilio_api_url=fake_twilio.url, sms_send_timeout_s=1.5,
        sms_gateway_url=str(server.make_url("/send")), sms_gateway_auth="Bearer gw-secret",
        sms_gateway_prefixes="+996, +992")
    await seed_responders(db, [
        responder("pol-1", "police_post", 2, phone="+996555000001", language="ru"),
        responder("cc-1", "crisis_centre", 3, phone="+77010000031", language="en"),
        responder("mu-1", "mobile_unit", 4),
    ])
    client = TestClient(TestServer(create_app(routed, clock, run_engine=False)))
    await client.start_server()
    try:
        gateway.script = [503]
        await _alert(client, routed, clock, db)
        await client.app[ENGINE].run_once()
        clock.advance(2)
        await client.app[ENGINE].run_once()
    finally:
        await client.close()
        await server.close()
    assert [m.to for m in fake_twilio.messages] == ["+77010000031"]
    assert len(gateway.received) == 2  # a 503, then the retry
    first, second = gateway.received
    assert second["headers"]["Authorization"] == "Bearer gw-secret"
    assert first["headers"]["Idempotency-Key"] == second["headers"]["Idempotency-Key"]
    doc = json.loads(second["body"])
    code = await db.fetchval("SELECT code FROM dispatches WHERE responder_id = 'pol-1'")
    assert doc["to"] == "+996555000001" and doc["text"].startswith(f"ТРЕВОГА {code} полиция")
    refs = {r["recipient"]: r["provider_ref"] for r in await _sms_outbox(db)}
    assert refs["pol-1"] == "gw:gw-2" and refs["cc-1"] == fake_twilio.messages[0].sid


def test_gateway_form_template_escapes_values():
    from alertd.channels.sms.gateway import render_body

    body, content_type = render_body("to=$to&msg=$text&key=abc", {"to": "+996 5", "text": "a&b=c ТРЕВОГА"})
    assert content_type == "application/x-www-form-urlencoded"
    assert body == "to=%2B996+5&msg=a%26b%3Dc+%D0%A2%D0%A0%D0%95%D0%92%D0%9E%D0%93%D0%90&key=abc"
    body, content_type = render_body('{"to": "$to", "text": "$text"}', {"to": "+1", "text": 'say "hi"\n'})
    assert json.loads(body) == {"to": "+1", "text": 'say "hi"\n'} and content_type.startswith("application/json")


def test_without_a_provider_sms_goes_to_the_log(settings):
    from alertd.channels.sms.outbound import SmsNotifier, build_sms_notifier
    from alertd.context import Context

    assert isinstance(build_sms_notifier(Context(settings), pool=None), LogNotifier)
    only_gateway = settings.replace(sms_gateway_url="http://127.0.0.1:9/send")
    notifier = build_sms_notifier(Context(only_gateway), pool=None)
    assert isinstance(notifier, SmsNotifier) and notifier.default.name == "gateway"
