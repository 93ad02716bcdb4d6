"""The brokers the tests start are secured like production, and what protects unit-terminal messages beyond the
broker: a live terminal account and a dispatch still in play. Driven with Debian's mosquitto_pub / mosquitto_sub."""

from __future__ import annotations

import json
import uuid
from collections import Counter

from alertd.mqtt.dynsec import NoBroker, broker_accounts
from alertd.service import provisioning
from alertd.web.keys import ENGINE
from tests.buttons_support import (  # noqa: F401  (fixtures)
    button_service,
    button_settings,
    eventually,
    mqtt_client,
    refused_at_connect,
    secured_broker,
    secured_broker_process,
)
from tests.helpers import bearer, device_token, enrol, fix, offset, seed_responders


async def test_every_broker_the_harness_starts_is_secured_like_production(mosquitto, secured_broker, settings):
    for broker in (mosquitto, secured_broker):
        anonymous = await mqtt_client("mosquitto_sub", broker.url, "-t", "alertd/v1/#", "-W", "3")
        assert refused_at_connect(anonymous), anonymous.stderr
    # the tests' service connects with its own account, and that account cannot pose as a button or a unit
    assert settings.mqtt_url == mosquitto.service_url != mosquitto.url
    for topic in ("alertd/v1/buttons/B-ANY/press", "alertd/v1/units/mu-1/ack"):
        posed = await mqtt_client("mosquitto_pub", settings.mqtt_url, "-t", topic, "-m", "{}", "-q", "1")
        assert "Not authorized" in posed.stderr, (topic, posed.stderr)


async def _alert(client, settings, clock, db) -> dict:
    """A new person's alert (one person each: her repeats would join her open alert) and its unit dispatch."""
    person = await enrol(db, clock.now())
    resp = await client.post("/v1/alerts", json={"client_alert_id": "c-1", "location": fix(*offset(0.5))},
                             headers=bearer(device_token(settings, person, clock.now())))
    assert resp.status == 201
    alert_id = uuid.UUID((await resp.json())["alert_id"])
    dispatch = await db.fetchrow("SELECT id, responder_id FROM dispatches WHERE alert_id = $1 AND kind = "
                                 "'mobile_unit'", alert_id)
    return {"alert_id": alert_id, "person": person, "dispatch_id": dispatch["id"], "unit": dispatch["responder_id"]}


async def _cancel(client, settings, clock, alert) -> None:
    resp = await client.post(f"/v1/alerts/{alert['alert_id']}/cancel", json={"pin": "1234"},
                             headers=bearer(device_token(settings, alert["person"], clock.now())))
    assert resp.status == 200


async def _state(db, alert) -> tuple:
    """Everything an ack could change: the dispatch, the alert and its timeline."""
    dispatch = await db.fetchrow("SELECT status, acknowledged_at, updated_at FROM dispatches WHERE id = $1",
                                 alert["dispatch_id"])
    return (tuple(dispatch), await db.fetchval("SELECT status FROM alerts WHERE id = $1", alert["alert_id"]),
            await db.fetchval("SELECT count(*) FROM alert_events WHERE alert_id = $1", alert["alert_id"]))


async def _refusals(db, kind: str) -> int:
    """Refusals of this kind (several from one source within a minute count on one event: an episode)."""
    return await db.fetchval("SELECT coalesce(sum(refusals), 0) FROM security_events WHERE kind = $1", kind)


async def test_a_unit_ack_for_a_dispatch_no_longer_in_play_is_refused_and_changes_nothing(
        button_service, button_settings, secured_broker, clock, db):
    await seed_responders(db)
    terminals = {u: await provisioning.provision_unit(db, broker_accounts(button_settings),
                                                      clock.now(), u) for u in ("mu-1", "mu-2")}

    async def unit_says(alert, status: str) -> None:
        """Its own terminal, with its own account, on its own ack topic: the broker lets it through."""
        creds = terminals[alert["unit"]]
        body = json.dumps({"dispatch_id": str(alert["dispatch_id"]), "status": status})
        sent = await mqtt_client("mosquitto_pub", secured_broker.user_url(creds.username, creds.password),
                                 "-t", creds.topics["ack"], "-m", body, "-q", "1", client_id=creds.client_id)
        assert sent.returncode == 0 and "Not authorized" not in sent.stderr, sent.stderr

    async def refused_without_change(alert, status: str, refusals: int) -> None:
        before = await _state(db, alert)
        await unit_says(alert, status)
        assert await eventually(lambda: _refusals_reach(db, refusals))
        assert await _state(db, alert) == before

    # resolved by its unit; a stale on_scene after that
    resolved = await _alert(button_service, button_settings, clock, db)
    await unit_says(resolved, "resolved")
    assert await eventually(lambda: _dispatch_is(db, resolved, "resolved"))
    await refused_without_change(resolved, "on_scene", 1)
    # cancelled by her while pending
    cancelled = await _alert(button_service, button_settings, clock, db)
    await _cancel(button_service, button_settings, clock, cancelled)
    assert await _dispatch_is(db, cancelled, "cancelled")
    await refused_without_change(cancelled, "acknowledged", 2)
    # expired (escalated to the next unit), then her alert cancelled: the dispatch stays expired, on a closed alert
    expired = await _alert(button_service, button_settings, clock, db)
    late = await _alert(button_service, button_settings, clock, db)
    clock.advance(button_settings.ack_deadline_mobile_unit + 1)
    await button_service.app[ENGINE].run_once(only={"deadlines"})
    assert await _dispatch_is(db, expired, "expired") and await _dispatch_is(db, late, "expired")
    await _cancel(button_service, button_settings, clock, expired)
    await refused_without_change(expired, "acknowledged", 3)
    recorded = Counter()
    for row in await db.fetch("SELECT kind, source, refusals FROM security_events"):
        recorded[row["kind"], row["source"]] += row["refusals"]
    assert recorded == Counter(("inactive_dispatch", f"mqtt:unit:{a['unit']}") for a in (resolved, cancelled, expired))

    # while her alert is still open, a late ack of an expired dispatch is someone coming: accepted, marked late
    await unit_says(late, "acknowledged")
    assert await eventually(lambda: _dispatch_is(db, late, "acknowledged"))
    assert await db.fetchval("SELECT count(*) FROM alert_events WHERE alert_id = $1 AND type = 'late_ack'",
                             late["alert_id"]) == 1
    assert await _refusals(db, "inactive_dispatch") == 3


async def test_a_revoked_terminal_is_refused_by_the_service_even_if_the_broker_still_lets_it_in(
        button_service, button_settings, secured_broker, clock, db):
    """A broker whose accounts are managed apart from alertd (or a revocation that did not reach it): the database
    decides."""
    await seed_responders(db)
    creds = await provisioning.provision_unit(db, broker_accounts(button_settings), clock.now(), "mu-1")
    await provisioning.revoke(db, NoBroker(), clock.now(), "mu-1")  # the database only: the broker still has it
    before = await db.fetchrow("SELECT location::text AS at, last_seen_at FROM responders WHERE id = 'mu-1'")
    sent = await mqtt_client("mosquitto_pub", secured_broker.user_url(creds.username, creds.password),
                             "-t", creds.topics["location"], "-m", json.dumps({"lat": 43.2, "lon": 76.9, "acc": 5}),
                             "-q", "1", client_id=creds.client_id)
    assert sent.returncode == 0 and "Not authorized" not in sent.stderr, sent.stderr
    assert await eventually(lambda: _refusals_reach(db, 1, "revoked_unit"))
    assert await db.fetchrow("SELECT location::text AS at, last_seen_at FROM responders WHERE id = 'mu-1'") == before


async def _refusals_reach(db, n: int, kind: str = "inactive_dispatch") -> bool:
    return await _refusals(db, kind) >= n


async def _dispatch_is(db, alert, status: str) -> bool:
    return await db.fetchval("SELECT status FROM dispatches WHERE id = $1", alert["dispatch_id"]) == status
