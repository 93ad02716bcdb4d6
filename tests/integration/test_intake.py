"""Phone app intake: commit, idempotency, location choice, dispatch to the nearest of each kind."""

from __future__ import annotations

import asyncio

from alertd.web.keys import POOL
from tests.helpers import bearer, device_token, enrol, fix, offset, refusals, seed_responders


async def _raise(client, token, cid="c-1", location=None):
    body = {"client_alert_id": cid}
    if location:
        body["location"] = location
    return await client.post("/v1/alerts", json=body, headers=bearer(token))


async def test_alert_dispatches_nearest_of_each_kind_with_deadlines(app_client, settings, clock, db):
    await seed_responders(db)
    person = await enrol(db, clock.now())
    token = device_token(settings, person, clock.now())
    resp = await _raise(app_client, token, location=fix(*offset(0.5)))
    assert resp.status == 201
    body = await resp.json()
    rows = await db.fetch("SELECT kind, responder_id, status, ack_deadline, created_at FROM dispatches "
                          "WHERE alert_id = $1 ORDER BY kind", __import__("uuid").UUID(body["alert_id"]))
    got = {r["kind"]: r["responder_id"] for r in rows}
    assert got == {"police_post": "pol-1", "crisis_centre": "cc-1", "mobile_unit": "mu-1"}
    for r in rows:
        assert r["status"] == "pending"
        assert (r["ack_deadline"] - r["created_at"]).total_seconds() == settings.ack_deadline(r["kind"])
    events = [r["type"] for r in await db.fetch("SELECT type FROM alert_events ORDER BY id")]
    assert events[:2] == ["raised", "located"] and events.count("dispatched") == 3
    outbox = await db.fetch("SELECT channel, recipient FROM outbox ORDER BY id")
    assert ("sms", "cc-1") in [(r["channel"], r["recipient"]) for r in outbox]


async def test_same_client_alert_id_is_one_alert(app_client, settings, clock, db):
    await seed_responders(db)
    person = await enrol(db, clock.now())
    token = device_token(settings, person, clock.now())
    first, again = await asyncio.gather(*[_raise(app_client, token, location=fix(*offset(1))) for _ in range(2)])
    statuses = sorted([first.status, again.status])
    assert statuses == [200, 201]
    assert (await first.json())["alert_id"] == (await again.json())["alert_id"]
    assert await db.fetchval("SELECT count(*) FROM alerts") == 1
    assert await db.fetchval("SELECT count(*) FROM dispatches") == 3


async def test_home_location_when_no_fix_and_triage_without_either(app_client, settings, clock, db):
    await seed_responders(db)
    at_home = await enrol(db, clock.now(), home=offset(13.5))
    resp = await _raise(app_client, device_token(settings, at_home, clock.now()))
    assert resp.status == 201
    row = await db.fetchrow("SELECT location_source, triage FROM alerts")
    assert row["location_source"] == "home" and not row["triage"]
    assert await db.fetchval("SELECT responder_id FROM dispatches WHERE kind = 'police_post'") == "pol-4"

    nowhere = await enrol(db, clock.now())
    resp = await _raise(app_client, device_token(settings, nowhere, clock.now()), cid="c-2")
    assert resp.status == 201
    alert_id = __import__("uuid").UUID((await resp.json())["alert_id"])
    assert await db.fetchval("SELECT triage FROM alerts WHERE id = $1", alert_id)
    assert await db.fetchval("SELECT count(*) FROM dispatches WHERE alert_id = $1", alert_id) == 0
    # a first fix takes it out of triage and dispatches it
    resp = await app_client.post(f"/v1/alerts/{alert_id}/locations", json=fix(*offset(8.2)),
                                 headers=bearer(device_token(settings, nowhere, clock.now())))
    assert resp.status == 200
    assert await db.fetchval("SELECT count(*) FROM dispatches WHERE alert_id = $1", alert_id) == 3


async def test_police_jurisdiction_wins_over_nearer_post(app_client, settings, clock, db):
    from tests.helpers import responder

    lat, lon = offset(0)
    square = (f'{{"type":"Polygon","coordinates":[[[{lon-0.2},{lat-0.2}],[{lon+0.2},{lat-0.2}],'
              f'[{lon+0.2},{lat+0.2}],[{lon-0.2},{lat+0.2}],[{lon-0.2},{lat-0.2}]]]}}')
    await seed_responders(db, [
        responder("near", "police_post", 1),
        responder("covering", "police_post", 6, jurisdiction=square),
        responder("cc", "crisis_centre", 1), responder("mu", "mobile_unit", 1),
    ])
    person = await enrol(db, clock.now())
    resp = await _raise(app_client, device_token(settings, person, clock.now()), location=fix(lat, lon))
    assert resp.status == 201
    assert await db.fetchval("SELECT responder_id FROM dispatches WHERE kind = 'police_post'") == "covering"


async def test_bad_input_changes_nothing_and_is_recorded(app_client, settings, clock, db):
    await seed_responders(db)
    person = await enrol(db, clock.now())
    token = device_token(settings, person, clock.now())
    cases = [
        ({"client_alert_id": ""}, bearer(token), 400),
        ({"client_alert_id": "x", "location": {"lat": 91, "lon": 0}}, bearer(token), 400),
        ({"client_alert_id": "x", "location": {"lat": "a", "lon": 0}}, bearer(token), 400),
        ({"client_alert_id": "x"}, {}, 401),
        ({"client_alert_id": "x"}, bearer(token[:-3] + "abc"), 401),
        ({"client_alert_id": "x"}, bearer("not.a.jwt"), 401),
    ]
    for body, headers, status in cases:
        resp = await app_client.post("/v1/alerts", json=body, headers=headers)
        assert resp.status == status, body
        err = (await resp.json())["error"]
        assert err["code"] and err["message"]
    resp = await app_client.post("/v1/alerts", data=b"{nope", headers=bearer(token))
    assert resp.status == 400
    assert await db.fetchval("SELECT count(*) FROM alerts") == 0
    assert await refusals(db, "bad_token") == 2


async def test_expired_device_token_still_raises_flagged_alert_revoked_refused(app_client, settings, clock, db):
    await seed_responders(db)
    person = await enrol(db, clock.now())
    stale = device_token(settings, person, clock.now(), ttl_s=60)
    clock.advance(3600)
    resp = await _raise(app_client, stale, location=fix(*offset(1)))
    assert resp.status == 201
    assert await db.fetchval("SELECT stale_token FROM alerts") is True
    await db.execute("UPDATE devices SET revoked_at = now()")
    resp = await _raise(app_client, stale, cid="c-2", location=fix(*offset(1)))
    assert resp.status == 401
    assert await db.fetchval("SELECT count(*) FROM alerts") == 1
    assert await db.fetchval("SELECT count(*) FROM security_events WHERE kind = 'revoked_device'") == 1


async def test_other_persons_alert_is_not_found(app_client, settings, clock, db):
    await seed_responders(db)
    a, b = await enrol(db, clock.now()), await enrol(db, clock.now())
    resp = await _raise(app_client, device_token(settings, a, clock.now()), location=fix(*offset(1)))
    alert_id = (await resp.json())["alert_id"]
    other = bearer(device_token(settings, b, clock.now()))
    for path, body in [("locations", fix(*offset(2))), ("cancel", {"pin": "1234"})]:
        resp = await app_client.post(f"/v1/alerts/{alert_id}/{path}", json=body, headers=other)
        assert resp.status == 404
    resp = await app_client.post("/v1/alerts/not-a-uuid/cancel", json={"pin": "1"}, headers=other)
    assert resp.status == 404
    assert app_client.app[POOL] is not None
