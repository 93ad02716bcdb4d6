"""The Traccar gateway end to end, on the real service and PostgreSQL: Traccar 6's forwarded JSON
(tests/traccar_support.py) posted with a gateway token; an SOS raises her alert through the core (located,
dispatched), once per Traccar event id; other events are ignored and counted; positions join an open alert's trail;
bad tokens and unknown trackers are refused and recorded."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta

import pytest

from alertd.service import gateways
from alertd.web.keys import METRICS
from tests import traccar_support as traccar
from tests.helpers import bearer, close_open_alerts, device_token, enrol, fix, offset, refusals, seed_responders

PATH = "/v1/gateways/traccar/events"


@pytest.fixture
async def tracked(db, clock):
    """Responders, a person with a tracker, and a gateway's token."""
    await seed_responders(db)
    person = await enrol(db, clock.now())
    gateway = await gateways.add(db, clock.now(), "traccar-north")
    await gateways.add_tracker(db, clock.now(), person_id=person.person_id, unique_id=traccar.IMEI)
    return person, gateway["token"]


async def _post(client, token, doc):
    resp = await client.post(PATH, json=doc, headers=bearer(token))
    return resp.status, await resp.json()


def _ignored(client, reason: str) -> float:
    return client.app[METRICS].traccar_ignored.labels(reason)._value.get()


async def _events(db, alert_id) -> list:
    return await db.fetch("SELECT type, data FROM alert_events WHERE alert_id = $1 ORDER BY id",
                          uuid.UUID(alert_id))


async def test_an_sos_raises_her_alert_located_and_dispatched(app_client, db, clock, tracked):
    person, token = tracked
    lat, lon = offset(1)
    status, body = await _post(app_client, token, traccar.alarm("sos", 7001, lat, lon, clock.now()))

    assert (status, body["outcome"]) == (200, "created")
    alert = await db.fetchrow("SELECT person_id, channel, device_id, location_source, location_accuracy_m, "
                              "ST_Y(location::geometry) AS lat FROM alerts WHERE id = $1",
                              uuid.UUID(body["alert_id"]))
    assert (alert["person_id"], alert["channel"], alert["device_id"]) == (person.person_id, "traccar", None)
    assert (alert["location_source"], alert["location_accuracy_m"]) == ("gps", None)  # Traccar's 0: unknown
    assert alert["lat"] == pytest.approx(lat)
    assert await db.fetchval("SELECT count(*) FROM dispatches WHERE alert_id = $1", uuid.UUID(body["alert_id"])) == 3
    raised = (await _events(db, body["alert_id"]))[0]
    assert raised["type"] == "raised"
    assert {k: raised["data"][k] for k in ("channel", "gateway", "gateway_event_id", "alarm")} == {
        "channel": "traccar", "gateway": "traccar-north", "gateway_event_id": 7001, "alarm": "sos"}
    assert app_client.app[METRICS].alerts_received.labels("traccar", "created")._value.get() == 1


async def test_the_same_event_again_is_the_same_alert_and_nothing_new(app_client, db, clock, tracked):
    _person, token = tracked
    doc = traccar.alarm("sos", 7002, *offset(1), clock.now())
    first = await _post(app_client, token, doc)
    again = await _post(app_client, token, doc)
    both = await asyncio.gather(*(_post(app_client, token, traccar.alarm("sos", 7003, *offset(1), clock.now()))
                                  for _ in range(2)))

    assert first[0] == again[0] == 200 and again[1] == {"alert_id": first[1]["alert_id"], "outcome": "duplicate"}
    # two copies of one new event at once: one joins her alert, the other waits for it and is its duplicate
    assert sorted(body["outcome"] for _, body in both) == ["duplicate", "joined"]
    assert {body["alert_id"] for _, body in both} == {first[1]["alert_id"]}
    assert await db.fetchval("SELECT count(*) FROM alerts") == 1
    assert await db.fetchval("SELECT repeats FROM alerts") == 1  # 7003 once, never 7002 again
    assert await db.fetchval("SELECT count(*) FROM traccar_events") == 2


async def test_other_events_are_ignored_and_counted(app_client, db, clock, tracked):
    _person, token = tracked
    now = clock.now()
    answers = [await _post(app_client, token, doc) for doc in (
        traccar.device_online(8001, now), traccar.alarm("lowBattery", 8002, *offset(1), now),
        traccar.alarm("powerCut", 8003, *offset(1), now), traccar.alarm("fallDown", 8004, *offset(1), now),
        traccar.geofence_enter(8005, *offset(1), now), traccar.position_forward(*offset(1), now))]

    assert answers == [(202, {"ignored": "not_alarm"}), (202, {"ignored": "not_sos"}), (202, {"ignored": "not_sos"}),
                       (202, {"ignored": "not_sos"}), (202, {"ignored": "not_alarm"}),
                       (202, {"ignored": "no_open_alert"})]
    assert (_ignored(app_client, "not_alarm"), _ignored(app_client, "not_sos"),
            _ignored(app_client, "no_open_alert")) == (2, 3, 1)
    assert await db.fetchval("SELECT count(*) FROM alerts") == 0
    assert await db.fetchval("SELECT count(*) FROM location_fixes") == 0  # her everyday whereabouts: never kept
    metrics = await (await app_client.get("/metrics")).text()
    assert 'alertd_traccar_ignored_total{reason="not_sos"} 3.0' in metrics


async def test_an_unknown_trackers_sos_raises_nothing_and_is_recorded(app_client, db, clock, tracked):
    _person, token = tracked
    status, body = await _post(app_client, token,
                               traccar.alarm("sos", 9001, *offset(1), clock.now(), unique_id="861234567890123"))

    assert (status, body) == (202, {"ignored": "unknown_tracker"})
    assert await db.fetchval("SELECT count(*) FROM alerts") == 0
    assert await db.fetchval("SELECT count(*) FROM traccar_events") == 0
    assert await refusals(db, "unknown_tracker") == 1
    event = await db.fetchrow("SELECT source, detail FROM security_events WHERE kind = 'unknown_tracker'")
    assert event["source"] == "traccar:traccar-north" and event["detail"]["unique_id"] == "861234567890123"
    notice = await db.fetchrow("SELECT recipient, payload FROM outbox WHERE template = 'tracker_unknown' "
                               "AND channel = 'console'")
    assert notice["recipient"] == "supervisor:unknown" and notice["payload"]["unique_id"] == "861234567890123"


async def test_a_removed_tracker_or_one_bound_to_another_gateway_is_unknown(app_client, db, clock, tracked):
    person, token = tracked
    other = await gateways.add(db, clock.now(), "traccar-south")
    await gateways.add_tracker(db, clock.now(), person_id=person.person_id, unique_id="111", gateway="traccar-south")
    await gateways.add_tracker(db, clock.now(), person_id=person.person_id, unique_id="222")
    await gateways.remove_tracker(db, clock.now(), "222")

    assert await _post(app_client, token, traccar.alarm("sos", 1, *offset(1), clock.now(), unique_id="111")) == \
        (202, {"ignored": "unknown_tracker"})
    assert await _post(app_client, token, traccar.alarm("sos", 2, *offset(1), clock.now(), unique_id="222")) == \
        (202, {"ignored": "unknown_tracker"})
    status, body = await _post(app_client, other["token"],
                               traccar.alarm("sos", 1, *offset(1), clock.now(), unique_id="111"))
    assert (status, body["outcome"]) == (200, "created")
    assert await refusals(db, "unknown_tracker") == 2  # one episode: its first refusal's detail, and a count
    assert await db.fetchval("SELECT detail->>'why' FROM security_events WHERE kind = 'unknown_tracker'") == \
        "other_gateway"


async def test_missing_wrong_and_revoked_tokens_are_refused_and_recorded(app_client, db, clock, settings, tracked):
    person, token = tracked
    doc = traccar.alarm("sos", 7100, *offset(1), clock.now())
    no_token = await app_client.post(PATH, json=doc)
    wrong = await _post(app_client, token[:-2] + "xx", doc)
    a_phone = await _post(app_client, device_token(settings, person, clock.now()), doc)
    await gateways.revoke(db, clock.now(), "traccar-north")
    revoked = await _post(app_client, token, doc)

    assert no_token.status == 401 and (await no_token.json())["error"]["code"] == "unauthorized"
    assert [wrong[0], a_phone[0], revoked[0]] == [401, 401, 401]
    assert revoked[1]["error"]["message"] == "this gateway is revoked"
    assert await refusals(db, "bad_gateway_token") == 4
    reasons = {r["detail"]["reason"] for r in await db.fetch("SELECT detail FROM security_events "
                                                             "WHERE kind = 'bad_gateway_token'")}
    assert reasons == {"missing"}  # one episode per source and minute: its first refusal's detail
    assert await db.fetchval("SELECT count(*) FROM alerts") == 0
    assert await db.fetchval("SELECT count(*) FROM traccar_events") == 0


async def test_only_the_hash_of_a_token_is_kept(db, clock):
    added = await gateways.add(db, clock.now(), "traccar-east")
    stored = await db.fetchval("SELECT token_sha256 FROM gateways WHERE name = 'traccar-east'")
    assert added["token"].startswith("gw_") and len(added["token"]) >= 43
    assert stored == gateways.token_hash(added["token"]) and added["token"].encode() not in stored
    assert (await gateways.authenticate(db, added["token"])).name == "traccar-east"
    assert await gateways.authenticate(db, added["token"] + "x") is None
    assert "token" not in (await gateways.list_all(db))[0]


async def test_a_tracker_sos_joins_her_open_alert_from_another_channel(app_client, db, clock, settings, tracked):
    person, token = tracked
    resp = await app_client.post("/v1/alerts", json={"client_alert_id": "a-1", "location": fix(*offset(1))},
                                 headers=bearer(device_token(settings, person, clock.now())))
    app_alert = (await resp.json())["alert_id"]
    status, body = await _post(app_client, token, traccar.alarm("sos", 7200, *offset(3), clock.now(),
                                                                  accuracy=5.0))

    assert (status, body) == (200, {"alert_id": app_alert, "outcome": "joined"})
    repeated = [e for e in await _events(db, app_alert) if e["type"] == "repeated"]
    assert len(repeated) == 1 and repeated[0]["data"]["channel"] == "traccar"
    assert await db.fetchval("SELECT count(*) FROM alerts") == 1
    assert await db.fetchval("SELECT count(*) FROM dispatches WHERE status = 'pending'") == 3  # no new dispatch
    assert await db.fetchval("SELECT count(*) FROM location_fixes") == 2  # her tracker's fix joined the trail


async def test_positions_of_a_tracker_with_an_open_alert_join_its_trail(app_client, db, clock, tracked):
    _person, token = tracked
    _, raised = await _post(app_client, token, traccar.alarm("sos", 7300, *offset(1), clock.now(), accuracy=30.0))
    clock.advance(30)
    moved = await _post(app_client, token, traccar.position_forward(*offset(2), clock.now(), accuracy=10.0,
                                                                    position_id=90412))
    clock.advance(30)
    moving = await _post(app_client, token, {**traccar.position_forward(*offset(2.1), clock.now(), position_id=90413),
                                             "event": traccar.event("deviceMoving", 7301, clock.now())})
    stale = await _post(app_client, token, traccar.position_forward(*offset(9), clock.now(), outdated=True))

    assert moved == moving == (200, {"alert_id": raised["alert_id"], "outcome": "location"})
    assert stale == (202, {"ignored": "no_position"})
    assert await db.fetchval("SELECT count(*) FROM location_fixes") == 3
    best = await db.fetchrow("SELECT location_accuracy_m, ST_Y(location::geometry) AS lat FROM alerts")
    assert best["location_accuracy_m"] == 10.0 and best["lat"] == pytest.approx(offset(2)[0])
    assert app_client.app[METRICS].traccar_locations._value.get() == 2

    await close_open_alerts(db)
    assert await _post(app_client, token, traccar.position_forward(*offset(2), clock.now())) == \
        (202, {"ignored": "no_open_alert"})


async def test_bad_json_is_400_recorded_and_an_sos_with_a_bad_position_still_raises(app_client, db, clock, tracked):
    _person, token = tracked
    resp = await app_client.post(PATH, data=b'{"event": {"type": "alarm"', headers={
        **bearer(token), "Content-Type": "application/json"})
    assert resp.status == 400 and (await resp.json())["error"]["code"] == "malformed"
    assert await refusals(db, "malformed_request") == 1

    doc = traccar.alarm("sos", 7400, *offset(1), clock.now())
    doc["position"]["accuracy"] = -3
    status, body = await _post(app_client, token, doc)
    assert (status, body["outcome"]) == (200, "created")
    raised = (await _events(db, body["alert_id"]))[0]
    assert raised["data"]["unusable"] == ["position"]
    assert await db.fetchval("SELECT location_source FROM alerts") is None  # no home either: triage


async def test_event_and_fix_times_follow_the_clock_rule(app_client, db, clock, tracked):
    _person, token = tracked
    old = clock.now() - timedelta(days=3)  # a watch whose clock was never set
    status, body = await _post(app_client, token, traccar.alarm("sos", 7500, *offset(1), old))
    assert status == 200
    alert = await db.fetchrow("SELECT triggered_at, location_fix_time FROM alerts")
    assert alert["triggered_at"] == alert["location_fix_time"] == clock.now()
    assert (await _events(db, body["alert_id"]))[0]["data"]["client_time"] == "ignored"


async def test_an_sos_is_never_refused_for_volume_but_other_events_spend_the_gateways_budget(
        settings, clock, db, tracked):
    from dataclasses import replace

    from tests.helpers import running_app

    _person, token = tracked
    tight = replace(settings, budget_source_rate=0.01, budget_source_burst=2)
    async with running_app(tight, clock) as client:
        others = [(await _post(client, token, traccar.device_online(100 + i, clock.now())))[0] for i in range(4)]
        soses = [(await _post(client, token, traccar.alarm("sos", 200 + i, *offset(1), clock.now())))[0]
                 for i in range(5)]
    assert others == [202, 202, 429, 429]
    assert soses == [200] * 5
    assert await refusals(db, "rate_limited") == 1  # the first refusal of its episode
