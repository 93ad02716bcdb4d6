"""Check-in timers: start (idempotent), extend, check in with the PIN (duress answers the same and raises a duress
alert, wrong PINs are refused and recorded), and the engine raising her alert exactly once when one runs out."""

from __future__ import annotations

import asyncio
import time
import uuid
from datetime import timedelta

from alertd.context import Context
from alertd.engine import Engine
from alertd.engine.timers import Timers
from alertd.store.db import create_pool
from alertd.web.keys import ENGINE
from tests.helpers import bearer, device_token, enrol, fix, offset, refusals, running_app, seed_responders

RIGHT, DURESS, WRONG = "1234", "9999", "0000"


async def _start(client, token, minutes=30, key=None, **extra):
    resp = await client.post("/v1/timers", json={"client_timer_id": key or uuid.uuid4().hex,
                                                 "duration_s": minutes * 60, **extra}, headers=bearer(token))
    return resp.status, await resp.json()


async def _person(db, settings, clock, **kw):
    person = await enrol(db, clock.now(), **kw)
    return person, device_token(settings, person, clock.now(), ttl_s=48 * 3600)


async def _check_in(client, settings, timer_id, token, pin):
    """The answer her screen gets: status, body (the timer's id masked), and that it took the floor."""
    started = time.monotonic()
    resp = await client.post(f"/v1/timers/{timer_id}/checkin", json={"pin": pin}, headers=bearer(token))
    body = await resp.read()
    assert time.monotonic() - started >= settings.cancel_answer_floor_s
    return resp.status, body.replace(timer_id.encode(), b"ID"), resp.content_type


async def _timer(db, timer_id):
    return await db.fetchrow("SELECT * FROM timers WHERE id = $1", uuid.UUID(timer_id))


async def test_start_is_idempotent_and_get_shows_it_only_to_its_owner(app_client, settings, clock, db):
    _, token = await _person(db, settings, clock)
    status, body = await _start(app_client, token, 45, key="t1")
    assert status == 201 and body["status"] == "running"
    assert body["due_at"] == (clock.now() + timedelta(minutes=45)).isoformat()
    again_status, again = await _start(app_client, token, 10, key="t1")
    assert again_status == 200 and again == body  # the same timer, its duration unchanged
    assert await db.fetchval("SELECT count(*) FROM timers") == 1

    resp = await app_client.get(f"/v1/timers/{body['timer_id']}", headers=bearer(token))
    assert resp.status == 200 and await resp.json() == body
    _, other = await _person(db, settings, clock)
    resp = await app_client.get(f"/v1/timers/{body['timer_id']}", headers=bearer(other))
    assert resp.status == 404
    resp = await app_client.get(f"/v1/timers/{uuid.uuid4()}", headers=bearer(token))
    assert resp.status == 404


async def test_duration_bounds(app_client, settings, clock, db):
    _, token = await _person(db, settings, clock)
    for seconds in (59, 24 * 3600 + 1, 0, -60):
        resp = await app_client.post("/v1/timers", json={"client_timer_id": "x", "duration_s": seconds},
                                     headers=bearer(token))
        assert resp.status == 400, seconds
    for seconds in (60, 24 * 3600):
        resp = await app_client.post("/v1/timers", json={"client_timer_id": f"ok{seconds}", "duration_s": seconds},
                                     headers=bearer(token))
        assert resp.status == 201, seconds


async def test_extend_adds_to_the_due_time_up_to_a_day_from_now(app_client, settings, clock, db):
    _, token = await _person(db, settings, clock)
    _, timer = await _start(app_client, token, 30)
    clock.advance(600)  # 20 minutes left
    resp = await app_client.post(f"/v1/timers/{timer['timer_id']}/extend", json={"duration_s": 900},
                                 headers=bearer(token))
    assert resp.status == 200
    body = await resp.json()
    assert body["status"] == "running"
    assert body["due_at"] == (clock.now() + timedelta(minutes=35)).isoformat()  # 20 left + 15
    resp = await app_client.post(f"/v1/timers/{timer['timer_id']}/extend", json={"duration_s": 24 * 3600},
                                 headers=bearer(token))
    assert resp.status == 400  # 35 min + 24 h is more than a day from now
    assert (await _timer(db, timer["timer_id"]))["due_at"] == clock.now() + timedelta(minutes=35)


async def test_check_in_with_the_pin_stops_it_for_good(app_client, settings, clock, db):
    await seed_responders(db)
    _, token = await _person(db, settings, clock)
    _, timer = await _start(app_client, token, 30)
    status, body, _ = await _check_in(app_client, settings, timer["timer_id"], token, RIGHT)
    assert status == 200 and body == b'{"timer_id": "ID", "status": "checked_in"}'
    clock.advance(3600)
    assert (await app_client.app[ENGINE].run_once())["timers"] == 0
    assert await db.fetchval("SELECT count(*) FROM alerts") == 0
    row = await _timer(db, timer["timer_id"])
    assert (row["status"], row["alert_id"], row["duress"]) == ("checked_in", None, False)
    resp = await app_client.post(f"/v1/timers/{timer['timer_id']}/extend", json={"duration_s": 600},
                                 headers=bearer(token))
    assert resp.status == 409


async def test_duress_pin_answers_like_the_real_one_and_raises_a_duress_alert_at_once(app_client, settings, clock,
                                                                                      db):
    await seed_responders(db)
    _, token = await _person(db, settings, clock)
    _, real = await _start(app_client, token, 30)
    real_answer = await _check_in(app_client, settings, real["timer_id"], token, RIGHT)
    _, forced_token = await _person(db, settings, clock)
    _, forced = await _start(app_client, forced_token, 30, location=fix(*offset(0.5)))
    duress_answer = await _check_in(app_client, settings, forced["timer_id"], forced_token, DURESS)
    assert duress_answer == real_answer and duress_answer[0] == 200
    # what her screen reads back is the same too
    for timer, tok in ((real, token), (forced, forced_token)):
        resp = await app_client.get(f"/v1/timers/{timer['timer_id']}", headers=bearer(tok))
        assert (await resp.json())["status"] == "checked_in"

    row = await _timer(db, forced["timer_id"])
    assert row["duress"] and row["alert_id"] is not None
    alert = await db.fetchrow("SELECT channel, duress, priority, status, location_source FROM alerts WHERE id = $1",
                              row["alert_id"])
    assert dict(alert) == {"channel": "timer", "duress": True, "priority": "high", "status": "open",
                           "location_source": "gps"}
    assert await db.fetchval("SELECT count(*) FROM dispatches WHERE alert_id = $1", row["alert_id"]) == 3
    assert await db.fetchval("SELECT count(*) FROM outbox WHERE template = 'duress' "
                             "AND recipient = 'supervisor:north'") == 2
    assert await db.fetchval("SELECT count(*) FROM alerts") == 1  # none for the real check-in
    clock.advance(3600)
    assert (await app_client.app[ENGINE].run_once())["timers"] == 0  # and it never fires later


async def test_wrong_pin_is_refused_recorded_and_changes_nothing(app_client, settings, clock, db):
    _, token = await _person(db, settings, clock)
    _, timer = await _start(app_client, token, 30)
    answers = [await _check_in(app_client, settings, timer["timer_id"], token, WRONG) for _ in range(2)]
    assert answers[0] == answers[1] and answers[0][0] == 403
    row = await _timer(db, timer["timer_id"])
    assert (row["status"], row["wrong_pins"], row["guarded_at"]) == ("running", 2, None)
    assert await refusals(db, "wrong_pin") == 2
    detail = await db.fetchval("SELECT detail FROM security_events WHERE kind = 'wrong_pin'")
    assert detail["timer_id"] == timer["timer_id"] and "pin" not in detail
    # someone else's timer is not found, whatever the PIN
    _, other = await _person(db, settings, clock)
    resp = await app_client.post(f"/v1/timers/{timer['timer_id']}/checkin", json={"pin": RIGHT},
                                 headers=bearer(other))
    assert resp.status == 404


async def test_after_max_wrong_pins_the_real_pin_is_taken_as_duress(app_client, settings, clock, db):
    await seed_responders(db)
    _, token = await _person(db, settings, clock)
    _, timer = await _start(app_client, token, 30)
    for _ in range(settings.cancel_max_wrong_pins):
        await _check_in(app_client, settings, timer["timer_id"], token, WRONG)
    status, body, _ = await _check_in(app_client, settings, timer["timer_id"], token, RIGHT)
    assert status == 200 and body == b'{"timer_id": "ID", "status": "checked_in"}'
    row = await _timer(db, timer["timer_id"])
    assert row["status"] == "checked_in" and row["duress"] and row["alert_id"] is not None
    why = await db.fetchval("SELECT data FROM alert_events WHERE alert_id = $1 AND type = 'duress'", row["alert_id"])
    assert why["reason"] == "guarded_after_wrong_pins"


async def test_engine_fires_once_when_due_not_before_at_most_a_second_late(app_client, settings, clock, db):
    await seed_responders(db)
    person, token = await _person(db, settings, clock)
    _, timer = await _start(app_client, token, 20, location=fix(*offset(0.5)))
    engine = app_client.app[ENGINE]
    clock.advance(20 * 60 - 1)
    assert (await engine.run_once())["timers"] == 0
    assert (await _timer(db, timer["timer_id"]))["status"] == "running"
    clock.advance(1)
    assert (await engine.run_once())["timers"] == 1
    row = await _timer(db, timer["timer_id"])
    assert row["status"] == "expired" and row["expired_at"] == clock.now()
    alert = await db.fetchrow("SELECT person_id, channel, status, location_source, triggered_at, device_id "
                              "FROM alerts WHERE id = $1", row["alert_id"])
    assert dict(alert) == {"person_id": person.person_id, "channel": "timer", "status": "open",
                           "location_source": "gps", "triggered_at": clock.now(), "device_id": person.device_id}
    raised = await db.fetchval("SELECT data FROM alert_events WHERE alert_id = $1 AND type = 'raised'",
                               row["alert_id"])
    assert raised["channel"] == "timer" and raised["timer_id"] == timer["timer_id"]
    assert await db.fetchval("SELECT count(*) FROM dispatches WHERE alert_id = $1", row["alert_id"]) == 3
    clock.advance(60)
    assert (await engine.run_once())["timers"] == 0
    assert await db.fetchval("SELECT count(*) FROM alerts") == 1
    # the phone reads it back as expired; a check-in now is too late, whichever PIN
    resp = await app_client.get(f"/v1/timers/{timer['timer_id']}", headers=bearer(token))
    assert (await resp.json())["status"] == "expired"
    assert (await _check_in(app_client, settings, timer["timer_id"], token, RIGHT))[0] == 409


async def test_the_running_engine_raises_it_within_a_second_of_due(settings, clock, db):
    """The engine as it runs in production (its loop, NOTIFY and poll) with the clock moved past due_at."""
    from alertd.settings import Settings
    from alertd.web.keys import METRICS

    await seed_responders(db)
    _, token = await _person(db, settings, clock)
    # the production poll interval, not the tests' faster one
    settings = settings.replace(engine_poll_s=Settings.__dataclass_fields__["engine_poll_s"].default)
    assert settings.engine_poll_s == 0.5
    async with running_app(settings, clock, run_engine=True) as client:
        _, timer = await _start(client, token, 5)
        clock.advance(5 * 60)
        due_seen = time.monotonic()
        for _ in range(200):
            row = await _timer(db, timer["timer_id"])
            if row["alert_id"] is not None:
                break
            await asyncio.sleep(0.01)
        took = time.monotonic() - due_seen
        assert row["status"] == "expired" and row["alert_id"] is not None
        print(f"timer alert raised {took:.3f} s after the clock passed its due time")
        assert took <= 1.0, took
        def observed() -> float:  # the engine observes its lateness once the alert's transaction committed
            lateness = client.app[METRICS].timer_lateness.collect()[0]
            return next(s.value for s in lateness.samples if s.name.endswith("_count"))

        for _ in range(100):
            if observed():
                break
            await asyncio.sleep(0.01)
        assert observed() == 1


async def test_two_engines_on_one_database_fire_each_timer_exactly_once(app_client, settings, clock, db):
    await seed_responders(db)
    ids = []
    for i in range(12):
        _, token = await _person(db, settings, clock)
        _, timer = await _start(app_client, token, 10 + i % 3, location=fix(*offset(i % 5)))
        ids.append(timer["timer_id"])
    clock.advance(13 * 60)
    pools = [await create_pool(settings.database_url, 1, 3) for _ in range(2)]
    try:
        engines = [Engine(p, Context(settings, clock), [Timers(Context(settings, clock), batch=3)],
                          settings.database_url) for p in pools]
        results = await asyncio.gather(*[e.run_once() for e in engines])
    finally:
        for p in pools:
            await p.close()
    assert sum(r["timers"] for r in results) == 12
    rows = await db.fetch("SELECT status, alert_id FROM timers")
    assert {r["status"] for r in rows} == {"expired"}
    assert len({r["alert_id"] for r in rows}) == 12
    assert await db.fetchval("SELECT count(*) FROM alerts WHERE channel = 'timer'") == 12


async def test_a_timer_due_while_no_engine_ran_fires_at_the_next_start(settings, clock, db):
    await seed_responders(db)
    _, token = await _person(db, settings, clock, home=offset(1.0))
    async with running_app(settings, clock) as client:
        _, timer = await _start(client, token, 15)
    clock.advance(2 * 3600)  # every instance was down when it ran out
    async with running_app(settings, clock) as client:
        assert (await client.app[ENGINE].run_once())["timers"] == 1
    row = await _timer(db, timer["timer_id"])
    assert row["status"] == "expired"
    source = await db.fetchval("SELECT location_source FROM alerts WHERE id = $1", row["alert_id"])
    assert source == "home"  # no fix with the timer, none from her phone: her home


async def test_location_the_timers_fix_then_her_phones_recent_fix_then_home(app_client, settings, clock, db):
    await seed_responders(db)
    engine = app_client.app[ENGINE]
    person, token = await _person(db, settings, clock, home=offset(3.0))
    # her phone's fix, from an alert of hers a few minutes ago (resolved since)
    resp = await app_client.post("/v1/alerts", json={"client_alert_id": "a1", "location": fix(*offset(2.0))},
                                 headers=bearer(token))
    assert resp.status == 201
    await db.execute("UPDATE alerts SET status = 'resolved', closed_at = $1", clock.now())
    clock.advance(300)
    _, with_fix = await _start(app_client, token, 10, location=fix(*offset(0.5), when=clock.now()))
    clock.advance(600)
    await engine.run_once()
    lat = await db.fetchval("SELECT ST_Y(location::geometry) FROM alerts a JOIN timers t ON t.alert_id = a.id "
                            "WHERE t.id = $1", uuid.UUID(with_fix["timer_id"]))
    assert abs(lat - offset(0.5)[0]) < 1e-6  # the timer's own fix
    await db.execute("UPDATE alerts SET status = 'resolved', closed_at = $1", clock.now())

    _, bare = await _start(app_client, token, 10)
    clock.advance(600)
    await engine.run_once()
    lat = await db.fetchval("SELECT ST_Y(location::geometry) FROM alerts a JOIN timers t ON t.alert_id = a.id "
                            "WHERE t.id = $1", uuid.UUID(bare["timer_id"]))
    assert abs(lat - offset(0.5)[0]) < 1e-6  # her phone's last fix (the last timer's), 10 minutes old
    await db.execute("UPDATE alerts SET status = 'resolved', closed_at = $1", clock.now())

    clock.advance(2 * 3600)  # her phone's fixes are old now
    _, late = await _start(app_client, token, 10)
    clock.advance(600)
    await engine.run_once()
    source = await db.fetchval("SELECT location_source FROM alerts a JOIN timers t ON t.alert_id = a.id "
                               "WHERE t.id = $1", uuid.UUID(late["timer_id"]))
    assert source == "home"
    assert person.person_id


async def test_retention_deletes_a_timers_fixes_after_the_precise_period(app_client, settings, clock, db):
    from alertd.engine.retention import purge_batch

    _, token = await _person(db, settings, clock)
    _, done = await _start(app_client, token, 10, location=fix(*offset(0.5)))
    _, running = await _start(app_client, token, 24 * 60, location=fix(*offset(0.7)))
    await _check_in(app_client, settings, done["timer_id"], token, RIGHT)
    clock.advance(settings.retention_precise_days * 86400 - 60)
    assert (await purge_batch(db, settings, clock.now(), 100))["timer_fixes_deleted"] == 0
    clock.advance(120)
    assert (await purge_batch(db, settings, clock.now(), 100))["timer_fixes_deleted"] == 1
    left = await db.fetch("SELECT timer_id FROM timer_fixes")
    assert [str(r["timer_id"]) for r in left] == [running["timer_id"]]  # a running timer keeps its fix


async def test_every_channel_stays_allowed_after_the_timers_migration(db):
    definition = await db.fetchval("SELECT pg_get_constraintdef(oid) FROM pg_constraint "
                                   "WHERE conname = 'alerts_channel_check'")
    for channel in ("app", "sms", "button", "traccar", "timer"):
        assert f"'{channel}'" in definition, definition
