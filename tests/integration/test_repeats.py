"""While a person has an open alert, a new alert from any of her channels joins it as a repeat: the usual answer
with the open alert's id, a `repeated` event, her priority raised after a few, her new location if better, and
no new dispatch. It holds within a group commit and across concurrent transactions."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from alertd.channels.buttons import protocol as button_protocol
from alertd.context import Context
from alertd.core.model import Location
from alertd.mqtt.dynsec import NoBroker
from alertd.service import buttons, intake, provisioning
from alertd.service.intake import NewAlert, group_committer
from alertd.store.db import create_pool
from clients.button import protocol as firmware
from tests.helpers import all_at_once, app_alert, bearer, device_token, enrol, fix, offset, seed_responders


@pytest.fixture
async def pool(settings):
    pool = await create_pool(settings.database_url, 1, 3)
    yield pool
    await pool.close()


async def _post(client, token, cid, location=None):
    body = {"client_alert_id": cid, **({"location": location} if location else {})}
    resp = await client.post("/v1/alerts", json=body, headers=bearer(token))
    return resp.status, await resp.json()


async def _types(db, alert_id) -> list[str]:
    return [r["type"] for r in await db.fetch("SELECT type FROM alert_events WHERE alert_id = $1 ORDER BY id",
                                              uuid.UUID(str(alert_id)))]


async def test_a_flood_from_one_device_is_one_alert_with_repeats_and_three_dispatches(app_client, settings,
                                                                                       clock, db):
    await seed_responders(db)
    person = await enrol(db, clock.now())
    token = device_token(settings, person, clock.now())
    answers = await asyncio.gather(*(_post(app_client, token, f"flood-{i}", fix(*offset(1))) for i in range(60)))

    assert {status for status, _ in answers} == {201}  # never refused, never "already sent"
    assert len({body["alert_id"] for _, body in answers}) == 1
    alert_id = answers[0][1]["alert_id"]
    assert {body["status"] for _, body in answers} == {"open"}
    assert await db.fetchval("SELECT count(*) FROM alerts") == 1
    assert await db.fetchval("SELECT count(*) FROM dispatches") == 3
    alert = await db.fetchrow("SELECT repeats, priority FROM alerts")
    assert (alert["repeats"], alert["priority"]) == (59, "high")
    types = await _types(db, alert_id)
    assert types.count("raised") == 1 and types.count("repeated") == 59 and types.count("priority_raised") == 1
    notices = await db.fetchval("SELECT count(*) FROM outbox WHERE template = 'priority_raised'")
    assert notices == 2  # the supervisor's console and log, once

    status, body = await _post(app_client, token, "flood-7")  # a retried repeat: the same answer, nothing new
    assert (status, body["alert_id"]) == (200, alert_id)
    assert (await _types(db, alert_id)).count("repeated") == 59


async def test_priority_rises_only_after_the_configured_number_of_repeats(app_client, settings, clock, db):
    await seed_responders(db)
    person = await enrol(db, clock.now())
    token = device_token(settings, person, clock.now())
    statuses = []
    for i in range(settings.repeat_priority_after + 1):
        status, _body = await _post(app_client, token, f"r-{i}", fix(*offset(1)))
        statuses.append(status)
        expected = "high" if i >= settings.repeat_priority_after else "normal"
        assert await db.fetchval("SELECT priority FROM alerts") == expected, i
    assert statuses == [201] * (settings.repeat_priority_after + 1)


async def test_an_alert_after_hers_is_closed_is_a_new_alert(app_client, settings, clock, db):
    await seed_responders(db)
    person = await enrol(db, clock.now())
    token = device_token(settings, person, clock.now())
    _, first = await _post(app_client, token, "a", fix(*offset(1)))
    resp = await app_client.post(f"/v1/alerts/{first['alert_id']}/cancel", json={"pin": "1234"},
                                 headers=bearer(token))
    assert resp.status == 200
    status, second = await _post(app_client, token, "b", fix(*offset(1)))
    assert status == 201 and second["alert_id"] != first["alert_id"]
    assert await db.fetchval("SELECT count(*) FROM dispatches WHERE status = 'pending'") == 3


async def test_a_button_press_joins_her_open_app_alert_and_its_redelivery_is_acked_again(pool, app_client,
                                                                                        settings, clock, db):
    await seed_responders(db)
    person = await enrol(db, clock.now())
    creds = await provisioning.provision_button(db, NoBroker(), clock.now(), person_id=person.person_id)
    _, raised = await _post(app_client, device_token(settings, person, clock.now()), "app-1", fix(*offset(1)))
    ctx = Context(settings, clock)
    _, payload = firmware.message(creds.device_id, creds.hmac_secret, "press", 1, int(clock.now().timestamp()))
    press = button_protocol.inbound(creds.device_id, "press", payload)

    first = await buttons.receive(pool, ctx, press)
    assert (first.ack_seq, first.alert_id, first.refused) == (1, raised["alert_id"], None)
    again = await buttons.receive(pool, ctx, press)  # QoS 1 redelivery
    assert (again.ack_seq, again.alert_id, again.duplicate, again.refused) == (1, raised["alert_id"], True, None)
    assert await db.fetchval("SELECT count(*) FROM alerts") == 1
    assert await db.fetchval("SELECT count(*) FROM dispatches") == 3
    assert (await _types(db, raised["alert_id"])).count("repeated") == 1
    assert await db.fetchval("SELECT data->>'channel' FROM alert_events WHERE type = 'repeated'") == "button"


async def test_two_alerts_of_one_person_in_one_group_are_one_alert_and_a_repeat(pool, settings, clock, db):
    await seed_responders(db)
    her, other = await enrol(db, clock.now()), await enrol(db, clock.now())
    committer = group_committer(pool, Context(settings, clock), committers=1)
    answers = await all_at_once(committer, [app_alert(her, "g-1", clock), app_alert(other, "o-1", clock),
                                            app_alert(her, "g-2", clock, km_north=1.2)])

    assert [a.made for a in answers] == ["created", "created", "joined"]
    assert answers[0].alert_id == answers[2].alert_id != answers[1].alert_id
    assert [a.status for a in answers] == ["open"] * 3
    assert await db.fetchval("SELECT count(*) FROM alerts") == 2
    assert await db.fetchval("SELECT count(*) FROM dispatches") == 6
    assert (await _types(db, answers[0].alert_id)).count("repeated") == 1
    assert await db.fetchval("SELECT count(*) FROM location_fixes WHERE alert_id = $1",
                             uuid.UUID(answers[0].alert_id)) == 2


async def test_concurrent_transactions_never_both_create_an_alert_for_her(pool, settings, clock, db):
    await seed_responders(db)
    person = await enrol(db, clock.now())
    ctx = Context(settings, clock)
    async with pool.acquire() as first, pool.acquire() as second:
        tx = first.transaction()
        await tx.start()
        created = await intake.create_alerts(first, ctx, clock.now(), [app_alert(person, "t-1", clock)])

        async def meanwhile():
            async with second.transaction():
                return await intake.create_alerts(second, ctx, clock.now(), [app_alert(person, "t-2", clock)])

        racing = asyncio.create_task(meanwhile())
        waiting = "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND datname = current_database()"
        for _ in range(200):  # until the second transaction waits for her lock (polling a fact, not a deadline)
            if await db.fetchval(waiting):
                break
            await asyncio.sleep(0.01)
        assert await db.fetchval(waiting) == 1 and not racing.done()
        await tx.commit()
        joined = await racing
    assert [created[0].made, joined[0].made] == ["created", "joined"]
    assert joined[0].alert_id == created[0].alert_id
    assert await db.fetchval("SELECT count(*) FROM alerts") == 1
    assert await db.fetchval("SELECT count(*) FROM dispatches") == 3


async def test_a_repeat_with_a_better_location_moves_her_alert_and_its_dispatches(pool, settings, clock, db):
    await seed_responders(db)
    person = await enrol(db, clock.now())
    committer = group_committer(pool, Context(settings, clock), committers=1)
    [first] = await all_at_once(committer, [app_alert(person, "m-1", clock, km_north=1.5, accuracy_m=20.0)])
    clock.advance(30)
    committer = group_committer(pool, Context(settings, clock), committers=1)
    [again] = await all_at_once(committer, [app_alert(person, "m-2", clock, km_north=8.5, accuracy_m=15.0)])

    assert again.made == "joined" and again.alert_id == first.alert_id
    lat = await db.fetchval("SELECT ST_Y(location::geometry) FROM alerts")
    assert lat == pytest.approx(offset(8.5)[0])
    police = {r["responder_id"]: r["status"] for r in await db.fetch(
        "SELECT responder_id, status FROM dispatches WHERE kind = 'police_post'")}
    assert police == {"pol-1": "cancelled", "pol-3": "pending"}  # 8.5 km north: pol-3 (9 km) is nearest now
    types = await _types(db, first.alert_id)
    assert types[types.index("repeated"):][:2] == ["repeated", "located"]


async def test_a_repeat_with_a_worse_location_changes_nothing(pool, settings, clock, db):
    await seed_responders(db)
    person = await enrol(db, clock.now())
    committer = group_committer(pool, Context(settings, clock), committers=1)
    [_first] = await all_at_once(committer, [app_alert(person, "w-1", clock, km_north=1.5, accuracy_m=20.0)])
    committer = group_committer(pool, Context(settings, clock), committers=1)
    stale = NewAlert(person_id=person.person_id, device_id=person.device_id, channel="app", client_alert_id="w-2",
                     triggered_at=clock.now(),
                     location=Location(*offset(8.5), 5000.0, "network", clock.now()))  # coarse and no newer
    [again] = await all_at_once(committer, [stale])
    assert again.made == "joined"
    assert await db.fetchval("SELECT ST_Y(location::geometry) FROM alerts") == pytest.approx(offset(1.5)[0])
    assert await db.fetchval("SELECT count(*) FROM dispatches WHERE status = 'pending'") == 3


async def test_a_repeat_with_a_location_dispatches_her_alert_waiting_in_triage(pool, settings, clock, db):
    await seed_responders(db)
    person = await enrol(db, clock.now())  # no home: an alert without a fix waits in triage
    committer = group_committer(pool, Context(settings, clock), committers=1)
    [first] = await all_at_once(committer, [app_alert(person, "t-1", clock, km_north=None)])
    assert await db.fetchval("SELECT triage FROM alerts") is True
    assert await db.fetchval("SELECT count(*) FROM dispatches") == 0
    committer = group_committer(pool, Context(settings, clock), committers=1)
    [again] = await all_at_once(committer, [app_alert(person, "t-2", clock, km_north=1.0)])
    assert again.alert_id == first.alert_id
    assert await db.fetchval("SELECT triage FROM alerts") is False
    assert await db.fetchval("SELECT count(*) FROM dispatches") == 3


async def test_an_sms_raising_while_her_app_alert_is_open_joins_it(pool, settings, clock, db):
    await seed_responders(db)
    person = await enrol(db, clock.now())
    ctx = Context(settings, clock)
    committer = group_committer(pool, ctx, committers=1)
    [first] = await all_at_once(committer, [app_alert(person, "s-1", clock)])
    async with pool.acquire() as conn, conn.transaction():
        raised = await intake.create_alert(conn, ctx, clock.now(), person_id=person.person_id, device_id=None,
                                           channel="sms", client_alert_id="SM" + "c" * 32,
                                           triggered_at=clock.now(), location=None)
    assert (raised.made, raised.alert_id) == ("joined", first.alert_id)
    assert await db.fetchval("SELECT count(*) FROM alerts") == 1
