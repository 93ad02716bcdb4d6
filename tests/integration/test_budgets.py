"""Request budgets: a source or a device over its budget gets 429 `rate_limited` with Retry-After, recorded once
per episode; her alerts never spend a budget and are never refused."""

from __future__ import annotations

from alertd.web.keys import METRICS
from tests.helpers import (
    bearer,
    device_token,
    enrol,
    fix,
    officer_token,
    offset,
    refusals,
    running_app,
    seed_responders,
)


def _metric(client, budget: str) -> float:
    return client.app[METRICS].requests_refused.labels(budget)._value.get()


async def test_a_source_over_its_budget_gets_429_with_retry_after_and_one_security_event(settings, clock, db):
    await seed_responders(db)
    token = bearer(officer_token(settings, "pol-1", clock.now()))
    async with running_app(settings.replace(budget_source_rate=2.0, budget_source_burst=5), clock) as client:
        statuses = [(await client.get("/v1/dispatches", headers=token)).status for _ in range(5)]
        assert statuses == [200] * 5
        for _ in range(20):
            refused = await client.get("/v1/dispatches", headers=token)
            assert refused.status == 429
            assert refused.headers["Retry-After"] == "1"
            assert (await refused.json())["error"]["code"] == "rate_limited"
        assert _metric(client, "source") == 20
        rows = await db.fetch("SELECT kind, source, refusals, detail FROM security_events")
        assert [(r["kind"], r["refusals"], r["detail"]["budget"]) for r in rows] == [("rate_limited", 1, "source")]

        clock.advance(1)  # two requests a second come back
        assert [(await client.get("/v1/dispatches", headers=token)).status for _ in range(3)] == [200, 200, 429]
        clock.advance(60)  # a new episode: recorded again
        for _ in range(6):
            await client.get("/v1/dispatches", headers=token)
        assert await refusals(db, "rate_limited") == 2


async def test_alerts_spend_no_budget_and_are_never_refused(settings, clock, db):
    await seed_responders(db)
    person = await enrol(db, clock.now())
    token = bearer(device_token(settings, person, clock.now()))
    tight = settings.replace(budget_source_rate=0.1, budget_source_burst=1, budget_device_rate=0.1,
                             budget_device_burst=1)
    async with running_app(tight, clock) as client:
        for i in range(25):
            resp = await client.post("/v1/alerts", json={"client_alert_id": f"n-{i}", "location": fix(*offset(1))},
                                     headers=token)
            assert resp.status == 201, i
        assert await db.fetchval("SELECT repeats FROM alerts") == 24
        assert await refusals(db, "rate_limited") == 0


async def test_a_device_over_its_budget_gets_429_and_other_devices_do_not(settings, clock, db):
    await seed_responders(db)
    her, other = await enrol(db, clock.now()), await enrol(db, clock.now())
    async with running_app(settings.replace(budget_device_rate=0.5, budget_device_burst=3), clock) as client:
        alerts = {}
        for person in (her, other):
            resp = await client.post("/v1/alerts", json={"client_alert_id": "a", "location": fix(*offset(1))},
                                     headers=bearer(device_token(settings, person, clock.now())))
            alerts[person.person_id] = (await resp.json())["alert_id"]

        async def locate(person):
            return await client.post(f"/v1/alerts/{alerts[person.person_id]}/locations", json=fix(*offset(1.1)),
                                     headers=bearer(device_token(settings, person, clock.now())))

        assert [(await locate(her)).status for _ in range(4)] == [200, 200, 200, 429]
        refused = await locate(her)
        assert refused.status == 429 and refused.headers["Retry-After"] == "2"  # one request every 2 s
        assert (await locate(other)).status == 200
        assert _metric(client, "device") == 2
        event = await db.fetchrow("SELECT source, detail FROM security_events WHERE kind = 'rate_limited'")
        assert event["detail"]["budget"] == "device" and event["detail"]["device_id"] == her.device_id
        clock.advance(2)
        assert (await locate(her)).status == 200


async def test_the_spec_documents_429_wherever_a_budget_is_spent(app_client):
    spec = await (await app_client.get("/openapi.json")).json()
    locations = spec["paths"]["/v1/alerts/{id}/locations"]["post"]["responses"]
    assert "Retry-After" in locations["429"]["headers"]
    assert "429" not in spec["paths"]["/v1/alerts"]["post"]["responses"]  # her alert is never refused for volume
    assert "429" in spec["paths"]["/v1/dispatches"]["get"]["responses"]


async def test_one_keys_requests_take_turns_a_few_at_a_time_and_none_is_refused():
    import asyncio

    from alertd.core.budgets import Turns

    turns = Turns(2)
    inside, most, order = 0, 0, []
    release = asyncio.Event()

    async def request(key, n):
        nonlocal inside, most
        async with turns.turn(key):
            inside += key == "her"
            most = max(most, inside)
            order.append((key, n))
            if key == "her":
                await release.wait()
                inside -= 1

    hers = [asyncio.create_task(request("her", n)) for n in range(6)]
    others = [asyncio.create_task(request(f"other-{n}", n)) for n in range(3)]
    await asyncio.gather(*others)  # the others went past her queue
    assert most == 2 and [k for k, _ in order].count("her") == 2
    release.set()
    await asyncio.gather(*hers)
    assert [n for k, n in order if k == "her"] == list(range(6))  # in turn, in order, every one answered
    assert turns.keys == 0  # nothing kept once nobody waits


async def test_a_flood_from_one_device_taking_turns_is_answered_in_full(settings, clock, db):
    import asyncio

    await seed_responders(db)
    person = await enrol(db, clock.now())
    token = bearer(device_token(settings, person, clock.now()))
    async with running_app(settings.replace(device_alerts_at_once=1), clock) as client:
        async def post(i):
            resp = await client.post("/v1/alerts", json={"client_alert_id": f"t-{i}", "location": fix(*offset(1))},
                                     headers=token)
            return resp.status, (await resp.json())["alert_id"]

        answers = await asyncio.gather(*(post(i) for i in range(30)))
        nobody = await client.post("/v1/alerts", json={"client_alert_id": "x"}, headers=bearer("not.a.jwt"))
    assert {status for status, _ in answers} == {201} and len({a for _, a in answers}) == 1
    assert nobody.status == 401
    assert await db.fetchval("SELECT repeats FROM alerts") == 29
