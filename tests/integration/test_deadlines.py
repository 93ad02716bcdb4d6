"""The deadline engine: expire, escalate to the next nearest, broadcast after misses, late acks, exactly once."""

from __future__ import annotations

import uuid

from alertd.web.keys import ENGINE
from tests.helpers import bearer, device_token, enrol, fix, officer_token, offset, seed_responders


async def _alert(client, settings, clock, db, km=0.5):
    person = await enrol(db, clock.now())
    resp = await client.post("/v1/alerts", json={"client_alert_id": "a", "location": fix(*offset(km))},
                             headers=bearer(device_token(settings, person, clock.now())))
    assert resp.status == 201
    return uuid.UUID((await resp.json())["alert_id"])


async def _police(db, alert_id):
    return [(r["responder_id"], r["status"], r["attempt"], r["broadcast"]) for r in await db.fetch(
        "SELECT responder_id, status, attempt, broadcast FROM dispatches WHERE alert_id = $1 "
        "AND kind = 'police_post' ORDER BY created_at, responder_id", alert_id)]


async def test_nothing_fires_before_the_deadline(app_client, settings, clock, db):
    await seed_responders(db)
    alert_id = await _alert(app_client, settings, clock, db)
    clock.advance(settings.ack_deadline_police_post - 1)
    done = await app_client.app[ENGINE].run_once()
    assert done["deadlines"] == 0
    assert await db.fetchval("SELECT count(*) FROM dispatches WHERE status = 'expired'") == 0
    assert await _police(db, alert_id) == [("pol-1", "pending", 1, False)]


async def test_missed_deadline_escalates_to_next_nearest_and_tells_supervisor(app_client, settings, clock, db):
    await seed_responders(db)
    alert_id = await _alert(app_client, settings, clock, db)
    clock.advance(settings.ack_deadline_police_post)
    done = await app_client.app[ENGINE].run_once()
    assert done["deadlines"] == 1  # only police (60 s) are due; crisis centre 120 s, unit 90 s
    assert await _police(db, alert_id) == [("pol-1", "expired", 1, False), ("pol-2", "pending", 2, False)]
    new_deadline = await db.fetchval("SELECT ack_deadline FROM dispatches WHERE responder_id = 'pol-2'")
    assert (new_deadline - clock.now()).total_seconds() == settings.ack_deadline_police_post
    types = [r["type"] for r in await db.fetch("SELECT type FROM alert_events WHERE alert_id = $1 ORDER BY id",
                                               alert_id)]
    assert types[-3:] == ["expired", "escalated", "escalation_dispatched"]
    sup = await db.fetch("SELECT channel FROM outbox WHERE recipient = 'supervisor:north' "
                         "AND template = 'missed_deadline'")
    assert sorted(r["channel"] for r in sup) == ["console", "log"]
    # the engine ran the outbox too: every message sent once
    assert await db.fetchval("SELECT count(*) FROM outbox WHERE status <> 'sent'") == 0


async def test_after_max_misses_alert_is_unanswered_and_goes_to_the_region(app_client, settings, clock, db):
    await seed_responders(db)
    alert_id = await _alert(app_client, settings, clock, db)
    engine = app_client.app[ENGINE]
    for _ in range(settings.max_misses):
        clock.advance(settings.ack_deadline_police_post)
        await engine.run_once()
    assert await db.fetchval("SELECT status FROM alerts WHERE id = $1", alert_id) == "unanswered"
    police = await _police(db, alert_id)
    assert police[:3] == [("pol-1", "expired", 1, False), ("pol-2", "expired", 2, False),
                          ("pol-3", "expired", 3, False)]
    # every on-duty police post of the region, tried ones included, but none twice at once
    broadcast = sorted(r[0] for r in police if r[3])
    assert broadcast == ["pol-1", "pol-2", "pol-3", "pol-4"]
    # one of them acknowledges: the alert is answered, the others stand down
    token = officer_token(settings, "pol-3", clock.now())
    pol3 = await db.fetchval("SELECT id FROM dispatches WHERE responder_id = 'pol-3' AND broadcast")
    resp = await app_client.post(f"/v1/dispatches/{pol3}/ack", headers=bearer(token))
    assert resp.status == 200
    assert await db.fetchval("SELECT status FROM alerts WHERE id = $1", alert_id) == "open"
    left = await db.fetch("SELECT responder_id, status FROM dispatches WHERE broadcast AND responder_id <> 'pol-3'")
    assert {r["status"] for r in left} == {"cancelled"}


async def test_ack_after_expiry_is_accepted_and_late(app_client, settings, clock, db):
    await seed_responders(db)
    await _alert(app_client, settings, clock, db)
    clock.advance(settings.ack_deadline_police_post + 5)
    await app_client.app[ENGINE].run_once()
    dispatch_id = await db.fetchval("SELECT id FROM dispatches WHERE responder_id = 'pol-1'")
    resp = await app_client.post(f"/v1/dispatches/{dispatch_id}/ack",
                                 headers=bearer(officer_token(settings, "pol-1", clock.now())))
    assert resp.status == 200
    body = await resp.json()
    assert body["status"] == "acknowledged" and body["late_ack"] is True
    assert await db.fetchval("SELECT count(*) FROM alert_events WHERE type = 'late_ack'") == 1


async def test_acknowledged_dispatch_never_expires(app_client, settings, clock, db):
    await seed_responders(db)
    await _alert(app_client, settings, clock, db)
    dispatch_id = await db.fetchval("SELECT id FROM dispatches WHERE responder_id = 'pol-1'")
    resp = await app_client.post(f"/v1/dispatches/{dispatch_id}/ack",
                                 headers=bearer(officer_token(settings, "pol-1", clock.now())))
    assert (await resp.json())["late_ack"] is False
    clock.advance(3600)
    await app_client.app[ENGINE].run_once()
    assert await db.fetchval("SELECT status FROM dispatches WHERE id = $1", dispatch_id) == "acknowledged"
    assert await db.fetchval("SELECT count(*) FROM dispatches WHERE kind = 'police_post'") == 1


async def test_concurrent_engines_fire_each_deadline_once(app_client, settings, clock, db):
    """Several engines on one database (as several alertd serve would be) race for the same due dispatches."""
    import asyncio

    from alertd.context import Context
    from alertd.engine import Engine
    from alertd.engine.deadlines import Deadlines
    from alertd.store.db import create_pool

    await seed_responders(db)
    for i in range(20):
        person = await enrol(db, clock.now())
        resp = await app_client.post("/v1/alerts", json={"client_alert_id": f"x{i}", "location": fix(*offset(i % 7))},
                                     headers=bearer(device_token(settings, person, clock.now())))
        assert resp.status == 201
    clock.advance(max(settings.deadlines.values()))
    pools = [await create_pool(settings.database_url, 1, 3) for _ in range(4)]
    try:
        engines = [Engine(p, Context(settings, clock), [Deadlines(Context(settings, clock), batch=7)],
                          settings.database_url) for p in pools]
        results = await asyncio.gather(*[e.run_once() for e in engines])
    finally:
        for p in pools:
            await p.close()
    fired = sum(r["deadlines"] for r in results)
    assert fired == 60
    assert sum(1 for r in results if r["deadlines"] > 0) >= 2  # the work really was shared
    per_dispatch = await db.fetch("SELECT dispatch_id, count(*) AS n FROM alert_events WHERE type = 'expired' "
                                  "GROUP BY dispatch_id")
    assert len(per_dispatch) == 60 and {r["n"] for r in per_dispatch} == {1}


async def test_the_call_out_after_max_misses_reaches_the_nearest_few_within_the_radius(settings, clock, db):
    from tests.helpers import responder, running_app

    # A large region: 40 police posts, 5 km apart going north, and the other kinds nearby.
    posts = [responder(f"pol-{i:02d}", "police_post", 5.0 * i + 2) for i in range(40)]
    await seed_responders(db, [*posts, responder("cc-1", "crisis_centre", 3), responder("mu-1", "mobile_unit", 4)])
    bounded = settings.replace(broadcast_max_responders=4, broadcast_radius_m=30_000.0)
    async with running_app(bounded, clock) as client:
        alert_id = await _alert(client, bounded, clock, db)
        for _ in range(bounded.max_misses):
            clock.advance(bounded.ack_deadline_police_post)
            await client.app[ENGINE].run_once()
    police = await _police(db, alert_id)
    assert await db.fetchval("SELECT status FROM alerts WHERE id = $1", alert_id) == "unanswered"
    called = sorted(r[0] for r in police if r[3])
    assert called == ["pol-00", "pol-01", "pol-02", "pol-03"]  # the 4 nearest, not the 40 of the region
    notices = await db.fetch("SELECT DISTINCT payload->>'sent_to' AS n FROM outbox "
                             "WHERE template = 'unanswered' AND payload->>'kind' = 'police_post'")
    assert [r["n"] for r in notices] == ["4"]  # the supervisor hears how many were called


async def test_the_call_out_reaches_nobody_beyond_the_radius(settings, clock, db):
    from tests.helpers import responder, running_app

    posts = [responder("pol-near", "police_post", 2), responder("pol-2", "police_post", 6),
             responder("pol-3", "police_post", 9), *(responder(f"pol-far-{i}", "police_post", 150 + i)
                                                     for i in range(10))]
    await seed_responders(db, [*posts, responder("cc-1", "crisis_centre", 3), responder("mu-1", "mobile_unit", 4)])
    async with running_app(settings, clock) as client:  # the defaults: 5 within 100 km
        alert_id = await _alert(client, settings, clock, db)
        for _ in range(settings.max_misses):
            clock.advance(settings.ack_deadline_police_post)
            await client.app[ENGINE].run_once()
    called = sorted(r[0] for r in await _police(db, alert_id) if r[3])
    assert called == ["pol-2", "pol-3", "pol-near"]  # 150 km and more is too far to help in time
