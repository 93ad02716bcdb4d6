"""The buttons' second path (issue 13): a press not acknowledged over MQTT within ack_timeout goes by SMS as one
compact signed message; alertd checks it exactly like an MQTT press and makes one alert per (device_id, seq),
whichever path arrives first, whichever arrives twice."""

from __future__ import annotations

import asyncio

from alertd.channels.buttons import protocol as button_protocol
from alertd.channels.buttons import sms_fallback
from alertd.core.model import Refused
from clients.button import protocol as firmware
from tests.buttons_support import (  # noqa: F401  (fixtures)
    connected_button,
    eventually,
    provision_button,
    running_service,
    secured_broker,
    secured_broker_process,
    secured_settings,
    start_secured_broker,
)
from tests.fake_twilio import FROM_NUMBER, fake_twilio, sign  # noqa: F401  (fixtures)
from tests.helpers import enrol, offset, seed_responders

SECRET = "ab" * 32
EMPTY = '<?xml version="1.0" encoding="UTF-8"?><Response />'


def test_the_firmwares_sms_reads_back_as_the_mqtt_press_it_stands_for():
    text = firmware.sms_text("B-ABC123", SECRET, 17, 1796068530, loc=(50.123456, 70.5, 12.7))
    assert len(text) <= 160 and text.startswith("AB1 B-ABC123 17 1796068530 50.12346,70.50000,12 ")
    press = sms_fallback.parse(text)
    _, payload = firmware.message("B-ABC123", SECRET, "press", 17, 1796068530, loc=(50.12346, 70.5, 12))
    assert (press.device_id, press.message.event, press.via) == ("B-ABC123", "press", "sms")
    assert press.message == button_protocol.parse_button("B-ABC123", "press", payload)
    by_cell = sms_fallback.parse(firmware.sms_text("B-ABC123", SECRET, 18, 1796068531, cell=(401, 1, 1200, 34567)))
    assert by_cell.message.cell == (401, 1, 1200, 34567)
    assert sms_fallback.parse(firmware.sms_text("B-1", SECRET, 1, 2)).message.gps is None
    for bad in ("AB1 B-1 x 2 - " + "0" * 64, "AB1 B-1 1 2 50,70 " + "0" * 64, "AB1 B/1 1 2 - " + "0" * 64,
                "AB1 B-1 1 2 -"):
        try:
            sms_fallback.parse(bad)
        except Refused as refused:
            assert refused.kind == "malformed_payload"
        else:
            raise AssertionError(f"{bad!r} was accepted")
    assert sms_fallback.is_button_sms(text) and not sms_fallback.is_button_sms("help me AB1")


def _webhook(settings, text: str, sid: str) -> tuple[dict, dict]:
    params = {"MessageSid": sid, "AccountSid": settings.twilio_account_sid, "From": "+77015559999",
              "To": FROM_NUMBER, "Body": text, "NumMedia": "0"}
    return params, sign(settings.twilio_auth_token, settings.public_url + "/v1/sms/inbound", params)


async def test_a_press_with_the_broker_down_arrives_by_sms_and_its_mqtt_copy_makes_no_second_alert(
        settings, clock, db, fake_twilio, workdir):
    await seed_responders(db)
    broker = await start_secured_broker(workdir / "mqtt-dual-path")
    try:
        served = secured_settings(settings, broker, twilio_account_sid=fake_twilio.account_sid,
                                  twilio_auth_token=fake_twilio.auth_token, twilio_from_number=FROM_NUMBER,
                                  twilio_api_url=fake_twilio.url)
        person = await enrol(db, clock.now())
        creds = await provision_button(db, served, clock, person.person_id)
        async with running_service(served, clock) as client:
            loop = asyncio.get_running_loop()
            sent: list[str] = []

            def by_sms(text: str) -> None:
                """The button's GSM modem: Twilio posts the SMS to the webhook (in the button's thread)."""
                sent.append(text)
                params, headers = _webhook(served, text, f"SM{len(sent):032x}")
                answer = asyncio.run_coroutine_threadsafe(
                    client.post("/v1/sms/inbound", data=params, headers=headers), loop).result(30)
                assert answer.status == 200

            button = await connected_button(broker, creds, clock, retry_s=0.2, sms=by_sms, ack_timeout_s=0.5)
            try:
                await asyncio.to_thread(broker.stop)
                press = asyncio.create_task(asyncio.to_thread(button.press, loc=(*offset(0.5), 10.0), wait_s=60))
                count = "SELECT count(*) FROM alerts WHERE channel = 'button'"
                assert await eventually(lambda: db.fetchval(count), timeout=30) == 1  # by SMS, the broker down
                raised = await db.fetchval("SELECT data FROM alert_events WHERE type = 'raised'")
                assert raised["via"] == "sms" and raised["seq"] == 1
                await asyncio.to_thread(broker.start)
                await asyncio.wait_for(press, 60)  # the queued MQTT copy got through, and was acked
            finally:
                button.close()
        assert len(sent) == 1
        assert await db.fetchval(count) == 1 and await db.fetchval("SELECT count(*) FROM dispatches") == 3
        assert await db.fetchval("SELECT count(*) FROM security_events") == 0  # the copy is no replay
    finally:
        await asyncio.to_thread(broker.stop)


async def test_a_forged_or_replayed_sms_press_is_refused_like_an_mqtt_one(settings, clock, db, fake_twilio,
                                                                         secured_broker):
    from tests.helpers import running_app

    await seed_responders(db)
    served = secured_settings(settings, secured_broker, twilio_account_sid=fake_twilio.account_sid,
                              twilio_auth_token=fake_twilio.auth_token, twilio_from_number=FROM_NUMBER,
                              twilio_api_url=fake_twilio.url)
    person = await enrol(db, clock.now())
    creds = await provision_button(db, served, clock, person.person_id)
    ts = int(clock.now().timestamp())
    good = firmware.sms_text(creds.device_id, creds.hmac_secret, 5, ts, loc=(*offset(0.5), 10.0))
    forged = firmware.sms_text(creds.device_id, "cd" * 32, 6, ts)
    older = firmware.sms_text(creds.device_id, creds.hmac_secret, 4, ts)
    async with running_app(served, clock) as client:
        for i, text in enumerate([good, good, forged, older, "AB1 nonsense"]):
            params, headers = _webhook(served, text, f"SM{i + 100:032x}")
            answer = await client.post("/v1/sms/inbound", data=params, headers=headers)
            assert answer.status == 200 and await answer.text() == EMPTY  # never a word back to the device
    assert await db.fetchval("SELECT count(*) FROM alerts") == 1  # the good one, once
    events = [(r["kind"], r["source"]) for r in await db.fetch("SELECT kind, source FROM security_events ORDER BY id")]
    assert events == [("bad_mac", f"sms:{creds.device_id}"), ("replayed_seq", f"sms:{creds.device_id}"),
                      ("malformed_payload", "sms:button")]
    assert await db.fetchval("SELECT count(*) FROM sms_inbound") == 0  # never read as a survivor's text
