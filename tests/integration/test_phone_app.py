"""The phone app's server side: one-time enrolment codes, `people enrol` printing one, and /app/ serving."""

from __future__ import annotations

import gzip

from alertd.cli import build_parser
from alertd.service.enrol_codes import issue_code
from tests.helpers import bearer, enrol, fix, offset, refusals, seed_responders


async def _redeem(client, code: str):
    return await client.post("/v1/enrol", json={"code": code})


async def test_code_is_redeemed_once_for_a_working_device_token(app_client, settings, clock, db):
    await seed_responders(db)
    person = await enrol(db, clock.now())
    issued = await issue_code(db, settings, clock.now(), person_id=person.person_id)
    assert issued.device_id == person.device_id and len(issued.code) == 9 and issued.code[4] == "-"
    assert await db.fetchval("SELECT count(*) FROM enrolment_codes WHERE code_hash LIKE $1",
                             f"%{issued.code.replace('-', '')}%") == 0  # only the HMAC is kept

    resp = await _redeem(app_client, " " + issued.code.lower().replace("-", " ") + " ")
    assert resp.status == 200 and resp.headers["Cache-Control"] == "no-store"
    body = await resp.json()
    assert body["device_id"] == person.device_id
    raised = await app_client.post("/v1/alerts", json={"client_alert_id": "c-1", "location": fix(*offset(1))},
                                   headers=bearer(body["token"]))
    assert raised.status == 201

    again = await _redeem(app_client, issued.code)
    assert again.status == 401 and (await again.json())["error"]["code"] == "unauthorized"
    kinds = [r["kind"] for r in await db.fetch("SELECT kind FROM security_events")]
    assert kinds == ["bad_enrolment_code"]


async def test_expired_replaced_and_revoked_codes_are_refused(app_client, settings, clock, db):
    person = await enrol(db, clock.now())
    old = await issue_code(db, settings, clock.now(), person_id=person.person_id, ttl_s=60)
    new = await issue_code(db, settings, clock.now(), person_id=person.person_id, ttl_s=60)
    assert (await _redeem(app_client, old.code)).status == 401  # a newer code replaces it
    clock.advance(61)
    assert (await _redeem(app_client, new.code)).status == 401  # expired

    fresh = await issue_code(db, settings, clock.now(), person_id=person.person_id)
    await db.execute("UPDATE devices SET revoked_at = $2 WHERE id = $1", person.device_id, clock.now())
    assert (await _redeem(app_client, fresh.code)).status == 401
    for bad in ({"code": 12345678}, {"nothing": 1}, ["ABCD-EFGH"]):
        resp = await app_client.post("/v1/enrol", json=bad)
        assert resp.status == 400 and (await resp.json())["error"]["code"] == "malformed"
    assert await refusals(db, "bad_enrolment_code") == 3


async def test_people_enrol_prints_a_code_and_a_new_one_can_be_issued(app_client, settings, db):
    args = build_parser().parse_args(["people", "enrol", "--phone", "+77015550101", "--pin", "1234",
                                      "--duress-pin", "9999", "--code-ttl", "600"])
    out = await args.handler(args, settings)
    assert set(out) >= {"person_id", "device_id", "token", "enrolment_code", "enrolment_code_expires_at"}

    args = build_parser().parse_args(["people", "enrolment-code", "--person", out["person_id"]])
    again = await args.handler(args, settings)
    assert again["device_id"] == out["device_id"] and again["enrolment_code"] != out["enrolment_code"]
    # the first code was replaced by the second
    assert await db.fetchval("SELECT count(*) FROM enrolment_codes WHERE used_at IS NULL") == 1


async def test_app_files_are_served_with_csp_cache_headers_and_gzip(app_client):
    resp = await app_client.get("/app", allow_redirects=False)
    assert resp.status == 301 and resp.headers["Location"] == "/app/"

    resp = await app_client.get("/app/", headers={"Accept-Encoding": "gzip"}, auto_decompress=False)
    assert resp.status == 200 and resp.headers["Content-Encoding"] == "gzip"
    html = gzip.decompress(await resp.read()).decode()
    assert "<title>Calculator</title>" in html
    csp = resp.headers["Content-Security-Policy"]
    assert "default-src 'none'" in csp and "script-src 'self'" in csp and "unsafe" not in csp
    assert resp.headers["Cache-Control"] == "no-cache" and resp.headers["X-Content-Type-Options"] == "nosniff"

    etag = resp.headers["ETag"]
    again = await app_client.get("/app/", headers={"If-None-Match": etag})
    assert again.status == 304

    for name, kind in (("manifest.webmanifest", "application/manifest+json"), ("sw.js", "text/javascript"),
                       ("icon-192.png", "image/png")):
        resp = await app_client.get(f"/app/{name}")
        assert resp.status == 200 and resp.headers["Content-Type"].startswith(kind), name
    assert (await app_client.get("/app/icon-192.png")).headers["Cache-Control"].startswith("public, max-age=")
    for missing in ("/app/nope.js", "/app/tools/make_icons.py", "/app/..%2Fpyproject.toml", "/app/.hidden"):
        assert (await app_client.get(missing)).status == 404, missing


def test_app_code_never_reaches_for_noise_title_or_history():
    """No notification, vibration, sound, title, history or URL change anywhere in the app's code."""
    from alertd.channels.app.static import APP_DIR

    code = "".join(p.read_text() for p in APP_DIR.glob("*.js"))
    for forbidden in ("Notification", "showNotification", "vibrate", "Audio", "pushState", "replaceState",
                      "document.title", "location.hash", "location.href", "localStorage", "alert(", "confirm("):
        assert forbidden not in code, forbidden
