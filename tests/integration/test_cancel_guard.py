"""Cancel cannot be guessed (wrong PINs guard the alert, responders are told, her screen shows nothing different),
and an expired device token finishes only what it started."""

from __future__ import annotations

import time
import uuid

from alertd import auth
from tests.helpers import bearer, device_token, enrol, fix, offset, seed_responders

RIGHT, DURESS, WRONG = "1234", "9999", "0000"


async def _raised(client, settings, clock, db, km=0.5, person=None, ttl_s=3600):
    person = person or await enrol(db, clock.now())
    token = device_token(settings, person, clock.now(), ttl_s=ttl_s)
    resp = await client.post("/v1/alerts", json={"client_alert_id": uuid.uuid4().hex, "location": fix(*offset(km))},
                             headers=bearer(token))
    assert resp.status == 201
    return (await resp.json())["alert_id"], token, person


async def _cancel(client, settings, alert_id, token, pin):
    """The answer her screen gets: status, body, and how long it took."""
    started = time.monotonic()
    resp = await client.post(f"/v1/alerts/{alert_id}/cancel", json={"pin": pin}, headers=bearer(token))
    body = await resp.read()
    took = time.monotonic() - started
    assert took >= settings.cancel_answer_floor_s
    return resp.status, body.replace(alert_id.encode(), b"ID"), resp.content_type


async def test_wrong_pins_guard_the_alert_tell_responders_and_look_the_same(app_client, settings, clock, db):
    await seed_responders(db)
    alert_id, token, _ = await _raised(app_client, settings, clock, db)
    other_id, other_token, _ = await _raised(app_client, settings, clock, db, km=1)
    key = uuid.UUID(alert_id)
    limit = settings.cancel_max_wrong_pins
    assert limit == 3  # the default: a few slips of a finger, not a guessing run

    wrong = [await _cancel(app_client, settings, alert_id, token, WRONG) for _ in range(limit - 1)]
    row = await db.fetchrow("SELECT wrong_pins, priority, cancel_guarded_at FROM alerts WHERE id = $1", key)
    assert (row["wrong_pins"], row["priority"], row["cancel_guarded_at"]) == (limit - 1, "normal", None)
    assert await db.fetchval("SELECT count(*) FROM outbox WHERE template = 'pin_guessing'") == 0

    wrong.append(await _cancel(app_client, settings, alert_id, token, WRONG))  # this one guards the alert
    row = await db.fetchrow("SELECT wrong_pins, priority, cancel_guarded_at, status FROM alerts WHERE id = $1", key)
    assert (row["wrong_pins"], row["priority"], row["status"]) == (limit, "high", "open")
    assert row["cancel_guarded_at"] == clock.now()
    assert await db.fetchval("SELECT count(*) FROM alert_events WHERE alert_id = $1 AND type = 'cancel_guarded'",
                             key) == 1
    told = {(r["recipient"], r["channel"]) for r in await db.fetch(
        "SELECT recipient, channel FROM outbox WHERE template = 'pin_guessing'")}
    assert {"pol-1", "cc-1", "mu-1", "supervisor:north"} == {recipient for recipient, _ in told}
    assert ("cc-1", "sms") in told  # a responder with a phone gets it by SMS too

    # Now even the right PIN does not cancel: it is taken as duress, and answers exactly like a real cancel.
    after_right = await _cancel(app_client, settings, alert_id, token, RIGHT)
    real_cancel = await _cancel(app_client, settings, other_id, other_token, RIGHT)
    assert after_right == real_cancel and after_right[0] == 200
    row = await db.fetchrow("SELECT status, duress, priority FROM alerts WHERE id = $1", key)
    assert dict(row) == {"status": "open", "duress": True, "priority": "high"}
    assert await db.fetchval("SELECT count(*) FROM dispatches WHERE alert_id = $1 AND status = 'pending'", key) == 3
    duress = await db.fetchval("SELECT data FROM alert_events WHERE alert_id = $1 AND type = 'duress'", key)
    assert duress["reason"] == "guarded_after_wrong_pins"
    assert await db.fetchval("SELECT status FROM alerts WHERE id = $1", uuid.UUID(other_id)) == "cancelled"

    # Wrong PINs keep getting the very answer the first one got; the duress PIN the usual one.
    wrong.append(await _cancel(app_client, settings, alert_id, token, WRONG))
    assert all(answer == wrong[0] for answer in wrong) and wrong[0][0] == 403
    assert await _cancel(app_client, settings, alert_id, token, DURESS) == real_cancel
    assert await db.fetchval("SELECT wrong_pins FROM alerts WHERE id = $1", key) == limit + 1
    assert await db.fetchval("SELECT status FROM alerts WHERE id = $1", key) == "open"
    assert await db.fetchval("SELECT count(*) FROM security_events WHERE kind = 'wrong_pin'") >= 1


async def test_a_slip_or_two_then_the_right_pin_still_cancels(app_client, settings, clock, db):
    await seed_responders(db)
    alert_id, token, _ = await _raised(app_client, settings, clock, db)
    for _ in range(settings.cancel_max_wrong_pins - 1):
        assert (await _cancel(app_client, settings, alert_id, token, WRONG))[0] == 403
    assert (await _cancel(app_client, settings, alert_id, token, RIGHT))[0] == 200
    assert await db.fetchval("SELECT status FROM alerts") == "cancelled"
    assert await db.fetchval("SELECT count(*) FROM outbox WHERE template IN ('pin_guessing', 'duress')") == 0


async def test_an_expired_token_finishes_what_it_started_and_nothing_else(app_client, settings, clock, db):
    await seed_responders(db)
    # Her phone's token runs out while she is in danger: the alert it raises still counts, and so do its fixes
    # and her cancel on it.
    old_id, old_token, person = await _raised(app_client, settings, clock, db, ttl_s=60)
    clock.advance(120)
    more = await app_client.post(f"/v1/alerts/{old_id}/locations", json=fix(*offset(0.6)), headers=bearer(old_token))
    assert more.status == 200
    data = await db.fetchval("SELECT data FROM alert_events WHERE type = 'location'")
    assert data["stale_token"] is True
    assert (await _cancel(app_client, settings, old_id, old_token, RIGHT))[0] == 200
    assert await db.fetchval("SELECT status FROM alerts WHERE id = $1", uuid.UUID(old_id)) == "cancelled"

    # Her new phone raises a new alert: the old phone's expired token can neither move it nor cancel it.
    await db.execute("INSERT INTO devices (id, person_id, kind) VALUES ('phone-new', $1, 'phone')", person.person_id)
    new_token = auth.issue(settings, role="device", sub="phone-new", ttl_s=3600, now=clock.now(),
                           person_id=person.person_id, device_id="phone-new")
    new = await app_client.post("/v1/alerts", json={"client_alert_id": "new", "location": fix(*offset(2))},
                                headers=bearer(new_token))
    assert new.status == 201
    new_id = (await new.json())["alert_id"]
    moved = await app_client.post(f"/v1/alerts/{new_id}/locations", json=fix(*offset(9)), headers=bearer(old_token))
    cancelled = await app_client.post(f"/v1/alerts/{new_id}/cancel", json={"pin": RIGHT}, headers=bearer(old_token))
    for resp in (moved, cancelled):
        body = await resp.json()
        assert resp.status == 401 and body["error"]["code"] == "unauthorized", body
        assert "expired" in body["error"]["message"]
    key = uuid.UUID(new_id)
    assert await db.fetchval("SELECT status FROM alerts WHERE id = $1", key) == "open"
    assert await db.fetchval("SELECT count(*) FROM location_fixes WHERE alert_id = $1", key) == 1
    assert await db.fetchval("SELECT count(*) FROM dispatches WHERE alert_id = $1 AND status = 'pending'", key) == 3
    assert await db.fetchval("SELECT count(*) FROM security_events WHERE kind = 'stale_token'") >= 1

    # Once the old phone's own alert joins that one as a repeat (its answer names it), it may add its fixes there.
    joined = await app_client.post("/v1/alerts", json={"client_alert_id": "again", "location": fix(*offset(2.1))},
                                   headers=bearer(old_token))
    assert joined.status == 201 and (await joined.json())["alert_id"] == new_id
    moved = await app_client.post(f"/v1/alerts/{new_id}/locations", json=fix(*offset(2.2)), headers=bearer(old_token))
    assert moved.status == 200
