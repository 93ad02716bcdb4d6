"""Officer API: their dispatches only, status flow, audited alert reads, the live feed across instances."""

from __future__ import annotations

import asyncio
import uuid

from aiohttp.test_utils import TestClient, TestServer

from alertd.app import create_app
from tests.helpers import bearer, device_token, enrol, fix, officer_token, offset, seed_responders


async def _raise(client, settings, clock, db, cid="a"):
    person = await enrol(db, clock.now())
    resp = await client.post("/v1/alerts", json={"client_alert_id": cid, "location": fix(*offset(0.5))},
                             headers=bearer(device_token(settings, person, clock.now())))
    assert resp.status == 201
    return (await resp.json())["alert_id"]


async def test_officer_sees_own_dispatches_and_not_others(app_client, settings, clock, db):
    await seed_responders(db)
    alert_id = await _raise(app_client, settings, clock, db)
    mine = bearer(officer_token(settings, "pol-1", clock.now()))
    resp = await app_client.get("/v1/dispatches", headers=mine)
    items = (await resp.json())["items"]
    assert [i["responder_id"] for i in items] == ["pol-1"]
    d = items[0]
    assert set(d) >= {"id", "alert_id", "kind", "responder_id", "status", "code", "ack_deadline",
                      "acknowledged_at", "location"}
    assert d["location"]["source"] == "gps" and d["alert_id"] == alert_id
    cc_dispatch = await db.fetchval("SELECT id FROM dispatches WHERE responder_id = 'cc-1'")
    for path in (f"/v1/dispatches/{cc_dispatch}/ack", f"/v1/dispatches/{uuid.uuid4()}/ack"):
        resp = await app_client.post(path, headers=mine)
        assert resp.status == 404
        assert (await resp.json())["error"]["code"] == "not_found"
    assert await db.fetchval("SELECT status FROM dispatches WHERE id = $1", cc_dispatch) == "pending"
    stranger = bearer(officer_token(settings, "pol-4", clock.now()))
    assert (await app_client.get(f"/v1/alerts/{alert_id}", headers=stranger)).status == 404
    resp = await app_client.get("/v1/dispatches?status=bogus", headers=mine)
    assert resp.status == 400
    # a device token may not act as an officer
    person = await enrol(db, clock.now())
    resp = await app_client.get("/v1/dispatches", headers=bearer(device_token(settings, person, clock.now())))
    assert resp.status == 403


async def test_status_flow_and_audited_read(app_client, settings, clock, db):
    await seed_responders(db)
    alert_id = await _raise(app_client, settings, clock, db)
    token = bearer(officer_token(settings, "pol-1", clock.now()))
    dispatch_id = await db.fetchval("SELECT id FROM dispatches WHERE responder_id = 'pol-1'")
    resp = await app_client.post(f"/v1/dispatches/{dispatch_id}/status", json={"status": "on_scene"},
                                 headers=token)
    assert resp.status == 200  # straight to on scene is allowed: it implies the acknowledgement
    resp = await app_client.post(f"/v1/dispatches/{dispatch_id}/status", json={"status": "en_route"},
                                 headers=token)
    assert resp.status == 409
    resp = await app_client.post(f"/v1/dispatches/{dispatch_id}/status", json={"status": "flying"}, headers=token)
    assert resp.status == 400
    resp = await app_client.post(f"/v1/dispatches/{dispatch_id}/status",
                                 json={"status": "resolved", "note": "safe with family"}, headers=token)
    body = await resp.json()
    assert body["status"] == "resolved" and body["acknowledged_at"] is not None
    # the crisis centre and the unit are still pending: the alert stays open until they are done too
    assert await db.fetchval("SELECT status FROM alerts") == "open"
    for responder in ("cc-1", "mu-1"):
        other = await db.fetchval("SELECT id FROM dispatches WHERE responder_id = $1", responder)
        resp = await app_client.post(f"/v1/dispatches/{other}/status", json={"status": "resolved"},
                                     headers=bearer(officer_token(settings, responder, clock.now())))
        assert resp.status == 200
    assert await db.fetchval("SELECT status FROM alerts") == "resolved"
    resp = await app_client.get(f"/v1/alerts/{alert_id}", headers=token)
    assert resp.status == 200
    alert = await resp.json()
    assert set(alert) >= {"alert_id", "status", "priority", "duress", "location", "locations", "dispatches",
                          "events"}
    types = [e["type"] for e in alert["events"]]
    assert "acknowledged" in types and types.count("status") == 4 and types[-1] == "resolved"
    assert "phone" not in str(alert) and "+7701" not in str(alert)
    audit = await db.fetch("SELECT actor, action FROM audit_log WHERE alert_id = $1", uuid.UUID(alert_id))
    assert [(r["actor"], r["action"]) for r in audit] == [("officer:officer-pol-1", "read_alert")]


async def test_feed_reaches_console_on_another_instance(app_client, settings, clock, db):
    """An officer connected to instance B hears about an alert raised on instance A (LISTEN/NOTIFY)."""
    await seed_responders(db)
    other = TestClient(TestServer(create_app(settings, clock, run_engine=False)))
    await other.start_server()
    try:
        ws = await other.ws_connect(f"/v1/events?access_token={officer_token(settings, 'pol-1', clock.now())}")
        assert (await ws.receive_json(timeout=5))["type"] == "ready"
        alert_id = await _raise(app_client, settings, clock, db)
        seen = []
        async with asyncio.timeout(5):
            while not any(m.get("event", {}).get("type") == "dispatched" for m in seen):
                seen.append(await ws.receive_json())
        assert all(m["event"]["alert_id"] == alert_id for m in seen if m["type"] == "event")
        # the outbox's console message (sent in a batch by instance A's engine) reaches the console on B too
        from alertd.web.keys import ENGINE

        await app_client.app[ENGINE].run_once()
        async with asyncio.timeout(5):
            while not any(m["type"] == "notification" for m in seen):
                seen.append(await ws.receive_json())
        note = next(m for m in seen if m["type"] == "notification")
        assert note["recipient"] == "pol-1" and note["template"] == "dispatch" and note["alert_id"] == alert_id
        assert note["payload"]["code"] and "phone" not in note["payload"]
        # a responder not involved hears nothing; a reconnect with ?since= catches up on what it missed
        last_seen = max(m["event"]["id"] for m in seen if m["type"] == "event")
        await ws.close()
        ws2 = await other.ws_connect(
            f"/v1/events?since=0&access_token={officer_token(settings, 'pol-1', clock.now())}")
        replay = []
        while True:
            msg = await ws2.receive_json(timeout=5)
            if msg["type"] == "ready":
                break
            replay.append(msg)
        assert replay and all(m["replay"] for m in replay)
        assert max(m["event"]["id"] for m in replay) >= last_seen
        await ws2.close()
        stranger = await other.ws_connect(f"/v1/events?access_token={officer_token(settings, 'pol-4', clock.now())}")
        assert (await stranger.receive_json(timeout=5))["type"] == "ready"
        await _raise(app_client, settings, clock, db, cid="b")
        try:
            async with asyncio.timeout(1):
                msg = await stranger.receive_json()
        except TimeoutError:
            msg = None
        assert msg is None  # pol-4 was not dispatched: it hears nothing of that alert
        await stranger.close()
    finally:
        await other.close()
    resp = await app_client.get("/v1/events")
    assert resp.status == 401


async def test_feed_survives_losing_its_database_connection(app_client, settings, clock, db):
    """The LISTEN connection is killed: the feed reconnects, says 'resync', and later changes still arrive."""
    from alertd.web.keys import HUB

    await seed_responders(db)
    ws = await app_client.ws_connect(f"/v1/events?access_token={officer_token(settings, 'pol-1', clock.now())}")
    assert (await ws.receive_json(timeout=5))["type"] == "ready"
    killed = await db.fetchval("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                               "WHERE datname = current_database() AND query LIKE 'LISTEN%'")
    assert killed >= 1
    assert (await ws.receive_json(timeout=10))["type"] == "resync"
    await asyncio.wait_for(app_client.app[HUB].listening.wait(), 10)
    alert_id = await _raise(app_client, settings, clock, db)
    msg = await ws.receive_json(timeout=5)
    while msg["type"] == "notification":  # its dispatch's console message, NOTIFY'd by the same commit
        assert msg["alert_id"] == alert_id
        msg = await ws.receive_json(timeout=5)
    assert msg["type"] == "event" and msg["event"]["alert_id"] == alert_id
    await ws.close()
