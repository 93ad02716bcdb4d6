"""Hostile and odd input on every channel: a clear 400 (never a 500), nothing changed, a security event; the one
clock rule for times a client claims; a press kept when only an auxiliary field is out of range."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import jwt
import pytest

from alertd import auth
from alertd.channels.buttons import protocol as button_protocol
from alertd.context import Context
from alertd.mqtt.dynsec import NoBroker
from alertd.service import buttons, provisioning
from alertd.store.db import create_pool
from clients.button import protocol as firmware
from tests.fake_twilio import fake_twilio, inbound, sms_client, sms_settings  # noqa: F401  (fixtures)
from tests.helpers import bearer, device_token, enrol, fix, officer_token, offset, seed_responders

JSON = {"Content-Type": "application/json"}
NUL, SURROGATE = "\\u0000", "\\ud800"  # as escapes in a JSON text: they decode to what PostgreSQL cannot store


async def _count(db, table: str) -> int:
    return await db.fetchval(f"SELECT count(*) FROM {table}")


async def _malformed_events(db) -> int:
    """Every refusal counts (on its episode's event: one row per source and kind per minute)."""
    return await db.fetchval("SELECT coalesce(sum(refusals), 0) FROM security_events WHERE kind = 'malformed_request'")


async def _post_raw(client, path: str, text: str | bytes, headers: dict):
    return await client.post(path, data=text.encode() if isinstance(text, str) else text,
                             headers={**JSON, **headers})


async def _assert_refused(client, db, method: str, path: str, body: str | bytes, headers: dict, *, before: int):
    resp = await client.request(method, path, data=body.encode() if isinstance(body, str) else body,
                                headers={**JSON, **headers})
    assert resp.status == 400, (path, body[:80], resp.status, await resp.text())
    error = (await resp.json())["error"]
    assert error["code"] == "malformed" and error["message"]
    assert resp.headers["Cache-Control"] == "no-store"
    assert await _malformed_events(db) == before + 1, (path, body[:80])
    return before + 1


async def test_unstorable_strings_huge_numbers_and_deep_nesting_are_a_clear_400_and_recorded(
        app_client, settings, clock, db):
    await seed_responders(db)
    person = await enrol(db, clock.now())
    device = bearer(device_token(settings, person, clock.now()))
    first = await app_client.post("/v1/alerts", json={"client_alert_id": "ok", "location": fix(*offset(0.5))},
                                  headers=device)
    alert_id = (await first.json())["alert_id"]
    dispatch_id = await db.fetchval("SELECT id FROM dispatches WHERE responder_id = 'pol-1'")
    officer = bearer(officer_token(settings, "pol-1", clock.now()))
    admin = bearer(auth.issue(settings, role="admin", sub="admin-1", ttl_s=3600, now=clock.now()))
    alerts, events = await _count(db, "alerts"), await _count(db, "alert_events")
    deep = b"[" * 100_000 + b"]" * 100_000
    cases = [
        ("POST", "/v1/alerts", f'{{"client_alert_id": "a{NUL}b"}}', device),
        ("POST", "/v1/alerts", f'{{"client_alert_id": "a{SURROGATE}b"}}', device),
        ("POST", "/v1/alerts", '{"client_alert_id": "x", "location": {"lat": 1' + "0" * 400 + ', "lon": 0}}', device),
        ("POST", "/v1/alerts", '{"client_alert_id": "x", "location": {"lat": ' + "7" * 5000 + ', "lon": 0}}', device),
        ("POST", "/v1/alerts", '{"client_alert_id": "x", "location": {"lat": 1e400, "lon": 0}}', device),
        ("POST", "/v1/alerts", '{"client_alert_id": "x", "location": {"lat": NaN, "lon": 0}}', device),
        ("POST", "/v1/alerts", deep, device),
        ("POST", "/v1/alerts", b'{"client_alert_id": "\xff"}', device),
        ("POST", f"/v1/alerts/{alert_id}/locations", deep, device),
        ("POST", f"/v1/alerts/{alert_id}/cancel", f'{{"pin": "12{NUL}34"}}', device),
        ("POST", f"/v1/dispatches/{dispatch_id}/status", f'{{"status": "en_route", "note": "x{NUL}"}}', officer),
        ("POST", f"/v1/dispatches/{dispatch_id}/status", f'{{"status": "en_route", "note": "{SURROGATE}"}}', officer),
        ("POST", f"/console/api/alerts/{alert_id}/reveal", f'{{"reason": "court order {NUL}"}}', admin),
        ("POST", f"/console/api/alerts/{alert_id}/reveal", f'{{"reason": "court {SURROGATE} order"}}', admin),
        ("POST", "/console/api/session", f'{{"username": "duty{NUL}", "password": "whatever"}}', {}),
        ("POST", "/console/api/session", f'{{"username": "{SURROGATE}", "password": "whatever"}}', {}),
        ("POST", "/console/api/officers", f'{{"username": "new", "password": "long enough pw", '
                                          f'"responder_id": "pol{NUL}"}}', admin),
        ("GET", "/console/api/region?region=north%00", "", admin),
        ("POST", "/v1/enrol", f'{{"code": "{NUL}"}}', {}),
        ("POST", "/v1/buttons", f'{{"person_id": "{NUL}"}}', admin),
    ]
    before = await _malformed_events(db)
    for method, path, body, headers in cases:
        before = await _assert_refused(app_client, db, method, path, body, headers, before=before)
    assert await _count(db, "alerts") == alerts and await _count(db, "alert_events") == events
    assert await db.fetchval("SELECT status FROM dispatches WHERE id = $1", dispatch_id) == "pending"
    assert await _count(db, "officer_sessions") == 0 and await _count(db, "audit_log") == 0
    sources = {r["source"] for r in await db.fetch("SELECT source FROM security_events")}
    assert all(s.startswith("http:") for s in sources)


async def test_a_correctly_signed_token_with_a_non_numeric_exp_is_a_401(app_client, settings, clock, db):
    person = await enrol(db, clock.now())
    good = jwt.decode(device_token(settings, person, clock.now()), options={"verify_signature": False})
    for exp in ("abc", [1], {"a": 1}):
        forged = jwt.encode({**good, "exp": exp}, settings.jwt_secret, algorithm="HS256")
        resp = await app_client.post("/v1/alerts", json={"client_alert_id": "x"}, headers=bearer(forged))
        assert resp.status == 401, exp
        assert (await resp.json())["error"]["code"] == "unauthorized"
    assert await _count(db, "alerts") == 0


@pytest.mark.parametrize("when", ["9999-12-31T23:59:59-10:00", "0001-01-01T00:00:00+10:00", "1900-01-01T00:00:00Z",
                                  "3000-01-01T00:00:00Z"])
async def test_times_outside_the_clock_rule_become_the_receive_time(app_client, settings, clock, db, when):
    """A phone's clock may be wrong; a time nobody can believe (or store) is replaced, and the alert is raised."""
    await seed_responders(db)
    person = await enrol(db, clock.now())
    device = bearer(device_token(settings, person, clock.now()))
    body = {"client_alert_id": "c", "triggered_at": when, "location": {**fix(*offset(0.5)), "fix_time": when}}
    resp = await app_client.post("/v1/alerts", json=body, headers=device)
    assert resp.status == 201, await resp.text()
    alert = await db.fetchrow("SELECT triggered_at, location_fix_time FROM alerts")
    assert alert["triggered_at"] == clock.now() and alert["location_fix_time"] == clock.now()
    raised = await db.fetchval("SELECT data FROM alert_events WHERE type = 'raised'")
    assert raised["client_time"] == "ignored"


async def test_a_fix_dated_in_the_future_does_not_pin_the_best_location(app_client, settings, clock, db):
    await seed_responders(db)
    person = await enrol(db, clock.now())
    device = bearer(device_token(settings, person, clock.now()))
    resp = await app_client.post("/v1/alerts", headers=device, json={
        "client_alert_id": "c", "triggered_at": (clock.now() - timedelta(minutes=2)).isoformat(),
        "location": fix(*offset(0.5), accuracy_m=30.0, when=datetime(3000, 1, 1, tzinfo=UTC))})
    alert_id = (await resp.json())["alert_id"]
    assert await db.fetchval("SELECT triggered_at FROM alerts") == clock.now() - timedelta(minutes=2)
    clock.advance(60)
    later = fix(*offset(6.5), accuracy_m=10.0, when=clock.now())
    resp = await app_client.post(f"/v1/alerts/{alert_id}/locations", json=later, headers=device)
    assert resp.status == 200
    row = await db.fetchrow("SELECT location_accuracy_m, location_fix_time FROM alerts")
    assert (row["location_accuracy_m"], row["location_fix_time"]) == (10.0, clock.now())


async def test_405_names_the_allowed_methods_and_console_errors_are_never_cached(app_client, settings, clock):
    resp = await app_client.put("/v1/alerts")
    assert resp.status == 405 and "POST" in resp.headers["Allow"]
    assert (await resp.json())["error"]["code"] == "method_not_allowed"
    for resp in (await app_client.get("/console/api/me"),
                 await app_client.post("/console/api/session", data=b"{", headers=JSON)):
        assert resp.status in (400, 401) and resp.headers["Cache-Control"] == "no-store"


async def test_an_empty_pin_is_a_wrong_pin_not_a_malformed_request(app_client, settings, clock, db):
    await seed_responders(db)
    person = await enrol(db, clock.now())
    device = bearer(device_token(settings, person, clock.now()))
    alert_id = (await (await app_client.post("/v1/alerts", json={"client_alert_id": "c"}, headers=device)).json())[
        "alert_id"]
    resp = await app_client.post(f"/v1/alerts/{alert_id}/cancel", json={"pin": ""}, headers=device)
    assert resp.status == 403
    assert await db.fetchval("SELECT status FROM alerts") == "open"


async def test_sms_with_unstorable_characters(sms_client, sms_settings, clock, db):
    """An SMS body is her words: what cannot be stored is replaced and her alert raised; a From or MessageSid that
    PostgreSQL cannot store is malformed (Twilio never sends one)."""
    await seed_responders(db)
    await enrol(db, clock.now(), phone="+77015550003")
    lat, lon = offset(0.5)
    resp = await inbound(sms_client, sms_settings, "+77015550003", f"help\x00 {lat:.5f}, {lon:.5f}")
    assert resp.status == 200
    assert await _count(db, "alerts") == 1
    note = await db.fetchval("SELECT data FROM alert_events WHERE type = 'sms_received'")
    assert "\x00" not in note["note"] and "\ufffd" in note["note"]
    for sender, sid in (("+7701\x00", None), ("+77015550003", "SM\x00")):
        resp = await inbound(sms_client, sms_settings, sender, "help", sid=sid)
        assert resp.status == 400 and (await resp.json())["error"]["code"] == "malformed"
    assert await _count(db, "alerts") == 1
    assert await _malformed_events(db) == 2


async def test_a_press_with_battery_as_a_percentage_raises_its_alert(settings, clock, db):
    """`"bat": 90` is the firmware's mistake, not hers: the alert is raised, the field recorded as unusable."""
    await seed_responders(db)
    person = await enrol(db, clock.now(), home=offset(1))
    creds = await provisioning.provision_button(db, NoBroker(), clock.now(), person_id=person.person_id)
    _t, payload = firmware.message(creds.device_id, creds.hmac_secret, "press", 1, int(clock.now().timestamp()))
    payload = json.dumps({**json.loads(payload), "bat": 90}).encode()
    pool = await create_pool(settings.database_url, 1, 2)
    try:
        receipt = await buttons.receive(pool, Context(settings, clock), button_protocol.inbound(creds.device_id, "press", payload))
    finally:
        await pool.close()
    assert receipt.refused is None and receipt.ack_seq == 1
    assert await db.fetchval("SELECT count(*) FROM dispatches") == 3
    raised = await db.fetchval("SELECT data FROM alert_events WHERE type = 'raised'")
    assert raised["unusable"] == ["bat"]
    event = await db.fetchrow("SELECT kind, detail FROM security_events")
    assert event["kind"] == "unusable_field" and event["detail"]["fields"] == ["bat"]
    assert await db.fetchval("SELECT battery FROM buttons") is None

