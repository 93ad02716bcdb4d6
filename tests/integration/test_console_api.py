"""Console accounts and APIs: sign-in, limits, sessions, static files with CSP, supervisor view, admin API."""

from __future__ import annotations

import argparse
import asyncio
import io
import re
import uuid

import jwt

from alertd import auth
from alertd.channels.console.static import STATIC
from alertd.commands import officers as officers_command
from alertd.web.keys import ENGINE
from tests.console_support import PASSWORD, add_officer, sign_in
from tests.helpers import bearer, device_token, enrol, fix, officer_token, offset, refusals, seed_responders


def admin_token(settings, now):
    return auth.issue(settings, role="admin", sub="admin-1", ttl_s=3600, now=now)


async def test_sign_in_gives_a_short_lived_token_bound_to_responder_and_role(app_client, settings, clock, db):
    await seed_responders(db)
    await add_officer(db, clock.now(), "pol1", "pol-1")
    await add_officer(db, clock.now(), "boss", "pol-2", role="supervisor")
    resp = await sign_in(app_client, "POL1")
    assert resp.status == 200 and resp.headers["Cache-Control"] == "no-store"
    body = await resp.json()
    claims = jwt.decode(body["token"], options={"verify_signature": False})
    assert (claims["role"], claims["responder_id"], claims["sub"]) == ("officer", "pol-1", "pol1")
    assert "region" not in claims and claims["exp"] - claims["iat"] <= 15 * 60
    assert "password_hash" not in body["officer"]
    stored = await db.fetchval("SELECT password_hash FROM officers WHERE username = 'pol1'")
    assert stored.startswith("$argon2id$") and PASSWORD not in stored

    boss = jwt.decode((await (await sign_in(app_client, "boss")).json())["token"], options={"verify_signature": False})
    assert (boss["role"], boss["region"]) == ("supervisor", "north")

    listed = await app_client.get("/v1/dispatches", headers=bearer(body["token"]))
    assert listed.status == 200
    clock.advance(15 * 60 + 1)
    assert (await app_client.get("/v1/dispatches", headers=bearer(body["token"]))).status == 401


async def test_wrong_user_and_wrong_password_get_the_same_answer_then_the_limit(app_client, settings, clock, db):
    await seed_responders(db)
    await add_officer(db, clock.now(), "pol1", "pol-1")
    wrong_password = await sign_in(app_client, "pol1", "not the password")
    no_such_user = await sign_in(app_client, "nobody", "not the password")
    assert wrong_password.status == no_such_user.status == 401
    assert await wrong_password.json() == await no_such_user.json()
    assert await refusals(db, "bad_sign_in") == 2
    for _ in range(4):
        assert (await sign_in(app_client, "pol1", "guess")).status == 401
    limited = await sign_in(app_client, "pol1")  # even the right password waits out the window
    assert limited.status == 429 and int(limited.headers["Retry-After"]) > 0
    clock.advance(15 * 60 + 1)
    assert (await sign_in(app_client, "pol1")).status == 200
    assert await db.fetchval("SELECT count(*) FROM sign_in_failures WHERE username = 'pol1'") == 0


async def test_parallel_guesses_cannot_slip_past_the_limit(app_client, settings, clock, db):
    await seed_responders(db)
    await add_officer(db, clock.now(), "pol1", "pol-1")
    answers = await asyncio.gather(*[sign_in(app_client, "pol1", f"guess {i}") for i in range(12)])
    statuses = sorted(a.status for a in answers)
    assert 1 <= statuses.count(401) <= 5 and statuses.count(429) == 12 - statuses.count(401)


async def test_sign_out_ends_the_session_and_renewal(app_client, settings, clock, db):
    await seed_responders(db)
    await add_officer(db, clock.now(), "pol1", "pol-1")
    token = (await (await sign_in(app_client, "pol1")).json())["token"]
    clock.advance(60)
    renewed = await app_client.post("/console/api/session/renew", headers=bearer(token))
    assert renewed.status == 200
    token = (await renewed.json())["token"]
    assert (await app_client.get("/console/api/me", headers=bearer(token))).status == 200
    assert (await app_client.get("/v1/dispatches", headers=bearer(token))).status == 200
    assert (await app_client.delete("/console/api/session", headers=bearer(token))).status == 200
    assert (await app_client.get("/console/api/me", headers=bearer(token))).status == 401
    # a copied token dies with its session on the whole API, not just the console's own routes
    assert (await app_client.get("/v1/dispatches", headers=bearer(token))).status == 401
    ws = await app_client.get(f"/v1/events?access_token={token}",
                              headers={"Upgrade": "websocket", "Connection": "Upgrade"})
    assert ws.status == 401
    assert (await app_client.post("/console/api/session/renew", headers=bearer(token))).status == 401

    # The session itself ends after a shift, however often the token was renewed.
    token = (await (await sign_in(app_client, "pol1")).json())["token"]
    for _ in range(49):
        clock.advance(14 * 60 + 50)
        resp = await app_client.post("/console/api/session/renew", headers=bearer(token))
        if resp.status != 200:
            break
        token = (await resp.json())["token"]
    assert resp.status == 401


async def test_console_files_have_csp_cache_headers_and_nothing_from_the_internet(app_client):
    index = await app_client.get("/console/")
    assert index.status == 200
    csp = index.headers["Content-Security-Policy"]
    assert "default-src 'none'" in csp and "script-src 'self'" in csp and "frame-ancestors 'none'" in csp
    assert "unsafe-inline" not in csp and index.headers["X-Content-Type-Options"] == "nosniff"
    assert index.headers["Cache-Control"] == "no-cache"
    html = await index.text()
    assets = re.findall(r'(?:src|href)="(assets/[^"]+)"', html)
    assert len(assets) >= 5 and not re.search(r'(?:src|href)="(?:https?:)?//', html)
    assert "<script>" not in html and "style=" not in html
    versioned = await app_client.get(f"/console/{assets[0]}")
    assert versioned.status == 200 and "immutable" in versioned.headers["Cache-Control"]
    assert versioned.headers["Content-Security-Policy"] == csp and versioned.headers.get("ETag")
    bare = await app_client.get("/console/assets/console.js")
    assert bare.headers["Cache-Control"] == "no-cache"
    again = await app_client.get("/console/assets/console.js", headers={"If-None-Match": bare.headers["ETag"]})
    assert again.status == 304
    for bad in ("/console/assets/../static.py", "/console/assets/index.html", "/console/assets/nope.js"):
        assert (await app_client.get(bad)).status == 404
    for path in STATIC.rglob("*"):
        if path.suffix in (".js", ".css", ".html") and "vendor" not in path.parts:
            assert not re.search(r"https?://", path.read_text()), path


async def test_supervisor_sees_the_region_and_officers_do_not(app_client, settings, clock, db):
    await seed_responders(db)
    await add_officer(db, clock.now(), "boss", "pol-3", role="supervisor")
    person = await enrol(db, clock.now())
    resp = await app_client.post("/v1/alerts", json={"client_alert_id": "a", "location": fix(*offset(0.5))},
                                 headers=bearer(device_token(settings, person, clock.now())))
    alert_id = (await resp.json())["alert_id"]
    lost = await enrol(db, clock.now())
    await app_client.post("/v1/alerts", json={"client_alert_id": "b"},
                          headers=bearer(device_token(settings, lost, clock.now())))
    clock.advance(61)
    await app_client.app[ENGINE].run_once()
    await db.execute("INSERT INTO outbox (channel, recipient, template, payload, next_attempt_at, created_at) "
                     "VALUES ('console', 'supervisor:north', 'supervision', '{\"device_id\": \"B-1\"}', $1, $1)",
                     clock.now())
    await db.execute("UPDATE outbox SET status = 'failed', last_error = 'To +77010000001 unreachable' "
                     "WHERE recipient = 'cc-1' AND channel = 'sms'")
    token = (await (await sign_in(app_client, "boss")).json())["token"]
    view = await (await app_client.get("/console/api/region", headers=bearer(token))).json()
    assert view["region"] == "north"
    assert [a["id"] for a in view["open_alerts"]] == [alert_id]
    assert len(view["triage"]) == 1 and view["triage"][0]["id"] != alert_id
    assert {(d["responder_id"], d["status"]) for d in view["deadlines"]} >= {("pol-1", "expired")}
    assert {e["type"] for e in view["escalations"]} >= {"expired", "escalated", "escalation_dispatched"}
    assert [n["payload"]["device_id"] for n in view["supervision"]] == ["B-1"]
    assert {n["template"] for n in view["notices"]} >= {"missed_deadline", "triage"}
    assert view["outbox_failures"] and "+7701" not in str(view["outbox_failures"])
    # A supervisor opens any alert of the region (an audited read), though not dispatched to pol-3.
    opened = await app_client.get(f"/console/api/alerts/{alert_id}", headers=bearer(token))
    assert opened.status == 200
    assert {r["id"] for r in (await opened.json())["responders"]} >= {"pol-1", "pol-2", "cc-1", "mu-1"}
    reads = "SELECT count(*) FROM audit_log WHERE action = 'read_alert' AND actor = $1"
    assert await db.fetchval(reads, "supervisor:boss") == 1

    await db.execute("INSERT INTO outbox (channel, recipient, template, payload, next_attempt_at, created_at) "
                     "VALUES ('console', 'cc-1', 'button_silent', '{\"device_id\": \"B-2\"}', $1, $1)", clock.now())
    caseworker = bearer(officer_token(settings, "cc-1", clock.now()))
    notices = await (await app_client.get("/console/api/notices", headers=caseworker)).json()
    assert [(n["template"], n["payload"]["device_id"]) for n in notices["items"]] == [("button_silent", "B-2")]
    assert (await (await app_client.get("/console/api/notices", headers=bearer(token))).json())["items"] == []

    officer = officer_token(settings, "pol-4", clock.now())
    assert (await app_client.get("/console/api/region", headers=bearer(officer))).status == 403
    assert (await app_client.get(f"/console/api/alerts/{alert_id}", headers=bearer(officer))).status == 404


async def test_admin_manages_officers_and_reveals_contacts_with_an_audit(app_client, settings, clock, db):
    await seed_responders(db)
    admin = bearer(admin_token(settings, clock.now()))
    officer = bearer(officer_token(settings, "pol-1", clock.now()))
    body = {"username": "cc1", "password": PASSWORD, "responder_id": "cc-1", "language": "kk"}
    assert (await app_client.post("/console/api/officers", json=body, headers=officer)).status == 403
    created = await app_client.post("/console/api/officers", json=body, headers=admin)
    assert created.status == 201 and (await created.json())["language"] == "kk"
    assert (await app_client.post("/console/api/officers", json=body, headers=admin)).status == 409
    short = {**body, "username": "cc2", "password": "short"}
    assert (await app_client.post("/console/api/officers", json=short, headers=admin)).status == 400
    listed = await (await app_client.get("/console/api/officers", headers=admin)).json()
    assert [o["username"] for o in listed["items"]] == ["cc1"] and "password_hash" not in listed["items"][0]

    token = (await (await sign_in(app_client, "cc1")).json())["token"]
    changed = await app_client.patch("/console/api/officers/cc1", json={"disabled": True}, headers=admin)
    assert changed.status == 200 and (await changed.json())["disabled"]
    assert (await app_client.get("/console/api/me", headers=bearer(token))).status == 401
    assert (await sign_in(app_client, "cc1")).status == 401
    await app_client.patch("/console/api/officers/cc1", json={"disabled": False}, headers=admin)
    assert (await sign_in(app_client, "cc1")).status == 200

    person = await enrol(db, clock.now(), phone="+77015550123")
    resp = await app_client.post("/v1/alerts", json={"client_alert_id": "a", "location": fix(*offset(0.5))},
                                 headers=bearer(device_token(settings, person, clock.now())))
    alert_id = (await resp.json())["alert_id"]
    read = await (await app_client.get(f"/console/api/alerts/{alert_id}", headers=admin)).text()
    assert "+77015550123" not in read
    reveal = f"/console/api/alerts/{alert_id}/reveal"
    assert (await app_client.post(reveal, json={"reason": "court order 12"}, headers=officer)).status == 403
    assert (await app_client.post(reveal, json={}, headers=admin)).status == 400
    shown = await app_client.post(reveal, json={"reason": "court order 12"}, headers=admin)
    assert (await shown.json())["phones"] == ["+77015550123"]
    audit = await db.fetchrow("SELECT actor, detail FROM audit_log WHERE action = 'reveal_contact'")
    assert audit["actor"] == "admin:admin-1" and audit["detail"]["reason"] == "court order 12"
    assert (await app_client.post(f"/console/api/alerts/{uuid.uuid4()}/reveal", json={"reason": "xyz"},
                                  headers=admin)).status == 404


async def test_officers_add_command_reads_the_password_from_stdin(settings, db, monkeypatch):
    await seed_responders(db)
    monkeypatch.setattr("sys.stdin", io.StringIO(PASSWORD + "\n"))
    args = argparse.Namespace(username="Mu1", password=None, responder="mu-1", role="supervisor", language="en")
    result = await officers_command.cmd_officers_add(args, settings)
    assert result["username"] == "mu1" and result["role"] == "supervisor" and result["region"] == "north"
    row = await db.fetchrow("SELECT password_hash FROM officers WHERE username = 'mu1'")
    from alertd.service.officer_accounts import _password_matches

    assert _password_matches(row["password_hash"], PASSWORD)


async def test_every_console_api_route_is_in_openapi(app_client):
    spec = await (await app_client.get("/openapi.json")).json()
    for resource in app_client.app.router.resources():
        path = resource.canonical
        if path.startswith("/console/api/"):
            methods = {route.method.lower() for route in resource} - {"head"}
            assert methods <= set(spec["paths"][path]), path
