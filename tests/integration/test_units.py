"""Mobile-unit terminals over the real Mosquitto: location moves the unit, dispatches arrive on its topic,
acks and status come back through the officer workflow; a silent unit counts as off duty."""

from __future__ import annotations

import asyncio
import uuid

from alertd.mqtt.dynsec import broker_accounts
from alertd.service import provisioning
from alertd.web.keys import ENGINE
from tests.buttons_support import (  # noqa: F401  (fixtures)
    button_service,
    button_settings,
    connected_unit,
    eventually,
    secured_broker,
    secured_broker_process,
)
from tests.helpers import bearer, close_open_alerts, device_token, enrol, fix, offset, seed_responders


async def _raise(client, settings, clock, person, cid, where):
    resp = await client.post("/v1/alerts", json={"client_alert_id": cid, "location": fix(*where)},
                             headers=bearer(device_token(settings, person, clock.now())))
    assert resp.status == 201
    return uuid.UUID((await resp.json())["alert_id"])


async def _unit_dispatch(db, alert_id):
    return await db.fetchrow("SELECT id, responder_id, code, status FROM dispatches "
                             "WHERE alert_id = $1 AND kind = 'mobile_unit'", alert_id)


async def test_unit_moves_receives_its_dispatch_and_acknowledges_over_mqtt(
        button_service, button_settings, secured_broker, clock, db):
    await seed_responders(db)
    person = await enrol(db, clock.now(), phone="+77015550199")
    broker = broker_accounts(button_settings)
    near = await provisioning.provision_unit(db, broker, clock.now(), "mu-2")
    far = await provisioning.provision_unit(db, broker, clock.now(), "mu-1")
    mu2 = await connected_unit(secured_broker, near, clock)
    mu1 = await connected_unit(secured_broker, far, clock)
    try:
        # mu-2 (6 km out) drives to 300 m from where she will be; mu-1 (4 km) never reports
        assert await asyncio.to_thread(mu2.move, *offset(0.8)) == "Success"
        assert await asyncio.to_thread(mu1.conn.publish, "alertd/v1/units/mu-2/location",
                                       b'{"lat": 1, "lon": 1}') == "Not authorized"
        assert await eventually(lambda: db.fetchval("SELECT last_seen_at FROM responders WHERE id = 'mu-2'"))
        alert_id = await _raise(button_service, button_settings, clock, person, "c-1", offset(0.5))
        dispatch = await _unit_dispatch(db, alert_id)
        assert dispatch["responder_id"] == "mu-2"

        await button_service.app[ENGINE].run_once()
        assert await eventually(lambda: _async(mu2.dispatches), timeout=20)
        sent = mu2.dispatches[0]
        assert sent["template"] == "dispatch" and sent["dispatch_id"] == str(dispatch["id"])
        assert sent["code"] == dispatch["code"] and sent["kind"] == "mobile_unit" and sent["deadline"]
        assert "+7701555" not in str(sent) and person.person_id not in str(sent)
        assert mu1.dispatches == []

        # mu-1 cannot acknowledge mu-2's dispatch even on its own topic: the service refuses and records it
        assert await asyncio.to_thread(mu1.ack, str(dispatch["id"])) == "Success"
        assert await eventually(lambda: db.fetchval(
            "SELECT count(*) FROM security_events WHERE kind = 'unknown_dispatch'"))
        assert await asyncio.to_thread(mu2.ack, str(dispatch["id"])) == "Success"
        assert await eventually(lambda: _status_is(db, dispatch["id"], "acknowledged"))
        assert await asyncio.to_thread(mu2.ack, str(dispatch["id"]), "en_route") == "Success"
        assert await eventually(lambda: _status_is(db, dispatch["id"], "en_route"))
        via = await db.fetch("SELECT type, actor, data->>'via' AS via FROM alert_events "
                             "WHERE alert_id = $1 AND type IN ('acknowledged', 'status')", alert_id)
        assert [(r["type"], r["actor"], r["via"]) for r in via] == [
            ("acknowledged", "unit:mu-2", "mqtt"), ("status", "unit:mu-2", "mqtt")]

        # silent for longer than the configured time: mu-2 counts as off duty, the next alert goes to mu-1
        clock.advance(button_settings.unit_silence_s + 1)
        await close_open_alerts(db)  # her next alert is a new one, not a repeat of the first
        second = await _raise(button_service, button_settings, clock, person, "c-2", offset(0.5))
        assert (await _unit_dispatch(db, second))["responder_id"] == "mu-1"
        # reporting again puts it back
        assert await asyncio.to_thread(mu2.move, *offset(0.6)) == "Success"
        assert await eventually(lambda: _seen_at(db, clock.now()))
        await close_open_alerts(db)
        third = await _raise(button_service, button_settings, clock, person, "c-3", offset(0.5))
        assert (await _unit_dispatch(db, third))["responder_id"] == "mu-2"
    finally:
        mu1.close()
        mu2.close()


async def _async(value):
    return value


async def _status_is(db, dispatch_id, status):
    return await db.fetchval("SELECT status FROM dispatches WHERE id = $1", dispatch_id) == status


async def _seen_at(db, when):
    return await db.fetchval("SELECT last_seen_at FROM responders WHERE id = 'mu-2'") == when
