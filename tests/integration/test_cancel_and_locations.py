"""Cancel with the real PIN, duress PIN, new fixes moving the best location and re-dispatching."""

from __future__ import annotations

import time
import uuid
from datetime import timedelta

from tests.helpers import bearer, device_token, enrol, fix, officer_token, offset, seed_responders


async def _raised(client, settings, clock, db, km=0.5):
    person = await enrol(db, clock.now())
    token = device_token(settings, person, clock.now())
    resp = await client.post("/v1/alerts", json={"client_alert_id": "a", "location": fix(*offset(km))},
                             headers=bearer(token))
    assert resp.status == 201
    return (await resp.json())["alert_id"], token


async def test_real_pin_cancels_and_tells_responders(app_client, settings, clock, db):
    await seed_responders(db)
    alert_id, token = await _raised(app_client, settings, clock, db)
    resp = await app_client.post(f"/v1/alerts/{alert_id}/cancel", json={"pin": "1234"}, headers=bearer(token))
    assert resp.status == 200
    assert await resp.json() == {"alert_id": alert_id, "status": "cancelled"}
    key = uuid.UUID(alert_id)
    assert await db.fetchval("SELECT status FROM alerts WHERE id = $1", key) == "cancelled"
    assert {r["status"] for r in await db.fetch("SELECT status FROM dispatches WHERE alert_id = $1", key)} == {
        "cancelled"}
    told = {r["recipient"] for r in await db.fetch("SELECT recipient FROM outbox WHERE template = 'cancelled'")}
    assert told == {"pol-1", "cc-1", "mu-1"}


async def test_duress_pin_answers_the_same_but_keeps_alert_live(app_client, settings, clock, db):
    await seed_responders(db)
    real_id, real_token = await _raised(app_client, settings, clock, db)
    duress_id, duress_token = await _raised(app_client, settings, clock, db, km=1)
    started = time.monotonic()
    real = await app_client.post(f"/v1/alerts/{real_id}/cancel", json={"pin": "1234"}, headers=bearer(real_token))
    real_took = time.monotonic() - started
    started = time.monotonic()
    duress = await app_client.post(f"/v1/alerts/{duress_id}/cancel", json={"pin": "9999"},
                                   headers=bearer(duress_token))
    duress_took = time.monotonic() - started
    # neither answers before the floor, so the time it took cannot tell them apart
    floor = settings.cancel_answer_floor_s
    assert real_took >= floor and duress_took >= floor
    assert real.status == duress.status == 200
    real_body, duress_body = await real.json(), await duress.json()
    assert real_body["status"] == duress_body["status"] == "cancelled"
    assert set(real_body) == set(duress_body)
    assert len(await real.read()) == len(await duress.read())
    assert real.content_type == duress.content_type
    row = await db.fetchrow("SELECT status, duress, priority FROM alerts WHERE id = $1", uuid.UUID(duress_id))
    assert dict(row) == {"status": "open", "duress": True, "priority": "high"}
    live = await db.fetchval("SELECT count(*) FROM dispatches WHERE alert_id = $1 AND status = 'pending'",
                             uuid.UUID(duress_id))
    assert live == 3
    assert await db.fetchval("SELECT count(*) FROM outbox WHERE template = 'duress' AND channel = 'console'") == 4


async def test_wrong_pin_changes_nothing_and_is_recorded(app_client, settings, clock, db):
    await seed_responders(db)
    alert_id, token = await _raised(app_client, settings, clock, db)
    resp = await app_client.post(f"/v1/alerts/{alert_id}/cancel", json={"pin": "0000"}, headers=bearer(token))
    assert resp.status == 403
    assert await db.fetchval("SELECT status FROM alerts") == "open"
    assert await db.fetchval("SELECT count(*) FROM security_events WHERE kind = 'wrong_pin'") == 1


async def test_fix_that_moves_far_redispatches_unacknowledged_kinds(app_client, settings, clock, db):
    await seed_responders(db)
    alert_id, token = await _raised(app_client, settings, clock, db, km=0.5)
    key = uuid.UUID(alert_id)
    # the crisis centre acknowledges; police and unit do not
    cc = await db.fetchval("SELECT id FROM dispatches WHERE alert_id = $1 AND kind = 'crisis_centre'", key)
    resp = await app_client.post(f"/v1/dispatches/{cc}/ack", headers=bearer(officer_token(settings, "cc-1",
                                                                                         clock.now())))
    assert resp.status == 200
    clock.advance(20)
    # a better, newer fix 13.5 km north: pol-4 (14 km) and mu-2 (6 km) are now nearest
    resp = await app_client.post(f"/v1/alerts/{alert_id}/locations",
                                 json=[fix(*offset(13.5), accuracy_m=15, when=clock.now())], headers=bearer(token))
    assert resp.status == 200
    rows = await db.fetch("SELECT kind, responder_id, status, ack_deadline FROM dispatches WHERE alert_id = $1 "
                          "ORDER BY created_at, kind", key)
    by = [(r["kind"], r["responder_id"], r["status"]) for r in rows]
    assert ("police_post", "pol-1", "cancelled") in by and ("police_post", "pol-4", "pending") in by
    assert ("mobile_unit", "mu-1", "cancelled") in by and ("mobile_unit", "mu-2", "pending") in by
    assert [b for b in by if b[0] == "crisis_centre"] == [("crisis_centre", "cc-1", "acknowledged")]
    new_police = next(r for r in rows if r["responder_id"] == "pol-4")
    assert new_police["ack_deadline"] == clock.now() + timedelta(seconds=settings.ack_deadline_police_post)
    loc = await db.fetchrow("SELECT location_source, location_accuracy_m FROM alerts WHERE id = $1", key)
    assert loc["location_source"] == "gps" and loc["location_accuracy_m"] == 15


async def test_small_move_or_worse_fix_does_not_redispatch(app_client, settings, clock, db):
    await seed_responders(db)
    alert_id, token = await _raised(app_client, settings, clock, db, km=0.5)
    clock.advance(10)
    # coarse fix far away (cell, 5 km accuracy): an accurate fix stays best
    resp = await app_client.post(f"/v1/alerts/{alert_id}/locations",
                                 json=fix(*offset(13.5), accuracy_m=5000, source="cell", when=clock.now()),
                                 headers=bearer(token))
    assert resp.status == 200
    # a small move (100 m)
    resp = await app_client.post(f"/v1/alerts/{alert_id}/locations",
                                 json=fix(*offset(0.6), accuracy_m=10, when=clock.now()), headers=bearer(token))
    assert resp.status == 200
    assert await db.fetchval("SELECT count(*) FROM dispatches") == 3
    assert await db.fetchval("SELECT count(*) FROM location_fixes") == 3


async def test_locations_on_cancelled_alert_conflict(app_client, settings, clock, db):
    await seed_responders(db)
    alert_id, token = await _raised(app_client, settings, clock, db)
    await app_client.post(f"/v1/alerts/{alert_id}/cancel", json={"pin": "1234"}, headers=bearer(token))
    resp = await app_client.post(f"/v1/alerts/{alert_id}/locations", json=fix(*offset(1)), headers=bearer(token))
    assert resp.status == 409
    assert (await resp.json())["error"]["code"] == "conflict"
