"""Group commit: alerts that arrive together commit in one transaction, each answered only after the commit that
holds it; a bad alert fails alone; a crash mid-group commits nothing and answers nobody "received"."""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import replace

import asyncpg
import pytest

from alertd.context import Context
from alertd.core.model import Location
from alertd.service import timeline
from alertd.service.group_commit import GroupCommit
from alertd.service.intake import NewAlert, group_committer
from alertd.store.db import create_pool
from tests.helpers import all_at_once, app_alert, bearer, device_token, enrol, fix, offset, seed_responders


@pytest.fixture
async def pool(settings):
    pool = await create_pool(settings.database_url, 1, 3)
    yield pool
    await pool.close()


async def test_alerts_queued_together_commit_as_one_group_each_fully_dispatched(pool, settings, clock, db):
    await seed_responders(db)
    people = [await enrol(db, clock.now()) for _ in range(12)]
    groups = []
    committer = group_committer(pool, Context(settings, clock), committers=1,
                            observe=lambda size, waits, seconds: groups.append(size))
    answers = await all_at_once(committer, [app_alert(p, f"g-{i}", clock, i % 3) for i, p in enumerate(people)])

    assert groups == [12]
    assert all(a.created for a in answers) and len({a.alert_id for a in answers}) == 12
    for person, answer in zip(people, answers, strict=True):
        row = await db.fetchrow("SELECT person_id, status, location_source, region FROM alerts WHERE id = $1",
                                uuid.UUID(answer.alert_id))
        assert (row["person_id"], row["status"], row["location_source"]) == (person.person_id, "open", "gps")
        assert row["region"] == "north"
        kinds = await db.fetch("SELECT kind FROM dispatches WHERE alert_id = $1", uuid.UUID(answer.alert_id))
        assert sorted(r["kind"] for r in kinds) == ["crisis_centre", "mobile_unit", "police_post"]
        events = [r["type"] for r in await db.fetch("SELECT type FROM alert_events WHERE alert_id = $1 ORDER BY id",
                                                    uuid.UUID(answer.alert_id))]
        assert events[:2] == ["raised", "located"] and events.count("dispatched") == 3
    assert await db.fetchval("SELECT count(*) FROM location_fixes") == 12


async def test_one_bad_alert_fails_alone_and_the_rest_of_its_group_commits(pool, settings, clock, db):
    await seed_responders(db)
    people = [await enrol(db, clock.now()) for _ in range(5)]
    alerts = [app_alert(p, f"b-{i}", clock, 1) for i, p in enumerate(people)]
    ghost = NewAlert(person_id="p-nobody", device_id=people[0].device_id, channel="app", client_alert_id="ghost",
                     triggered_at=clock.now(), location=Location(*offset(1), 20.0, "gps", clock.now()))
    groups = []
    committer = group_committer(pool, Context(settings, clock), committers=1,
                            observe=lambda size, waits, seconds: groups.append(size))
    answers = await all_at_once(committer, [*alerts[:2], ghost, *alerts[2:]])

    assert isinstance(answers[2], asyncpg.ForeignKeyViolationError)
    good = [a for i, a in enumerate(answers) if i != 2]
    assert all(a.created for a in good)
    assert groups == [1] * 5  # the group of six failed; its five good alerts then committed one by one
    assert await db.fetchval("SELECT count(*) FROM alerts") == 5
    assert await db.fetchval("SELECT count(*) FROM dispatches") == 15


async def test_repeats_in_one_group_make_one_alert(pool, settings, clock, db):
    await seed_responders(db)
    person = await enrol(db, clock.now())
    committer = group_committer(pool, Context(settings, clock), committers=1)
    first, again = await all_at_once(committer, [app_alert(person, "same", clock, 1), app_alert(person, "same", clock, 2)])

    assert first.alert_id == again.alert_id
    assert sorted([first.created, again.created]) == [False, True]
    assert await db.fetchval("SELECT count(*) FROM alerts") == 1
    assert await db.fetchval("SELECT count(*) FROM dispatches") == 3


async def test_crash_mid_group_commits_nothing_and_answers_nobody_received(pool, settings, clock, db, monkeypatch):
    await seed_responders(db)
    people = [await enrol(db, clock.now()) for _ in range(4)]
    alerts = [app_alert(p, f"c-{i}", clock, 1) for i, p in enumerate(people)]

    def written_then_crash(self, rows):
        assert rows  # the group's insert went through (its alerts, dispatches and timeline), then the database went away
        raise ConnectionResetError("database went away between two statements")

    monkeypatch.setattr(timeline.Batch, "written", written_then_crash)
    answers = await all_at_once(group_committer(pool, Context(settings, clock), committers=1), alerts)
    assert all(isinstance(a, ConnectionResetError) for a in answers)
    for table in ("alerts", "location_fixes", "dispatches", "alert_events", "outbox"):
        assert await db.fetchval(f"SELECT count(*) FROM {table}") == 0

    monkeypatch.undo()  # the phones retry with the same client_alert_ids: one alert each
    answers = await all_at_once(group_committer(pool, Context(settings, clock), committers=1), alerts)
    assert all(a.created for a in answers)
    assert await db.fetchval("SELECT count(*) FROM dispatches") == 12


async def test_concurrent_posts_are_each_answered_with_their_own_alert(app_client, settings, clock, db):
    await seed_responders(db)
    people = [await enrol(db, clock.now()) for _ in range(16)]

    async def post(i, person):
        resp = await app_client.post("/v1/alerts", json={"client_alert_id": f"h-{i}", "location": fix(*offset(1))},
                                     headers=bearer(device_token(settings, person, clock.now())))
        return resp.status, (await resp.json())["alert_id"]

    answers = await asyncio.gather(*(post(i, p) for i, p in enumerate(people)))
    assert [status for status, _ in answers] == [201] * 16
    owners = {str(r["id"]): r["person_id"] for r in await db.fetch("SELECT id, person_id FROM alerts")}
    assert {alert_id: owners[alert_id] for _, alert_id in answers} == {
        alert_id: p.person_id for (_, alert_id), p in zip(answers, people, strict=True)}


async def test_a_taken_dispatch_code_is_drawn_again_and_the_messages_carry_the_new_one(pool, settings, clock, db,
                                                                                      monkeypatch):
    from alertd.core import policy

    await seed_responders(db)
    first, second = await enrol(db, clock.now()), await enrol(db, clock.now())
    await all_at_once(group_committer(pool, Context(settings, clock), committers=1), [app_alert(first, "a", clock, 1)])
    taken = await db.fetchval("SELECT code FROM dispatches LIMIT 1")
    real_new_code = policy.new_code
    draws = iter([taken, taken])  # the second alert's first two dispatches draw a code already in use

    monkeypatch.setattr(policy, "new_code", lambda: next(draws, None) or real_new_code())
    [answer] = await all_at_once(group_committer(pool, Context(settings, clock), committers=1),
                                  [app_alert(second, "b", clock, 1)])
    rows = await db.fetch("SELECT id, code FROM dispatches WHERE alert_id = $1", uuid.UUID(answer.alert_id))
    assert len(rows) == 3 and taken not in {r["code"] for r in rows}
    assert await db.fetchval("SELECT count(DISTINCT code) FROM dispatches") == 6
    for r in rows:  # the timeline and the responders' messages name the code the dispatch really has
        event = await db.fetchval("SELECT data->>'code' FROM alert_events WHERE dispatch_id = $1", r["id"])
        sent = await db.fetch("SELECT payload->>'code' AS code FROM outbox WHERE dispatch_id = $1", r["id"])
        assert event == r["code"] and sent and {m["code"] for m in sent} == {r["code"]}


async def test_a_taken_dispatch_code_leaves_no_event_or_message_of_the_dispatch_it_skipped(pool, settings, clock, db,
                                                                                          monkeypatch):
    from alertd.core import policy

    await seed_responders(db)
    first, second = await enrol(db, clock.now()), await enrol(db, clock.now())
    [kept] = await all_at_once(group_committer(pool, Context(settings, clock), committers=1),
                               [app_alert(first, "a", clock, 1)])
    taken = await db.fetchval("SELECT code FROM dispatches LIMIT 1")
    real_new_code = policy.new_code
    draws = iter([taken])
    monkeypatch.setattr(policy, "new_code", lambda: next(draws, None) or real_new_code())
    [redrawn] = await all_at_once(group_committer(pool, Context(settings, clock), committers=1),
                                  [app_alert(second, "b", clock, 1)])

    async def each(query):
        return [await db.fetchval(query, uuid.UUID(answer.alert_id)) for answer in (kept, redrawn)]

    # the same timeline and messages as an alert whose codes were all free: nothing twice, nothing of the skipped row
    assert await each("SELECT count(*) FROM alert_events WHERE alert_id = $1") == [5, 5]
    assert await each("SELECT count(*) FROM outbox WHERE alert_id = $1") == [4, 4]
    assert await db.fetchval("SELECT count(*) FROM alert_events e WHERE e.dispatch_id IS NOT NULL AND NOT EXISTS"
                             " (SELECT 1 FROM dispatches d WHERE d.id = e.dispatch_id)") == 0
    assert await db.fetchval("SELECT count(*) FROM outbox m WHERE m.dispatch_id IS NOT NULL AND NOT EXISTS"
                             " (SELECT 1 FROM dispatches d WHERE d.id = m.dispatch_id)") == 0
    assert await db.fetchval("SELECT count(*) FROM alert_events WHERE data->>'code' = $1", taken) == 1


async def test_group_commits_show_in_metrics(app_client, settings, clock, db):
    await seed_responders(db)
    people = [await enrol(db, clock.now()) for _ in range(5)]
    for i, person in enumerate(people):
        resp = await app_client.post("/v1/alerts", json={"client_alert_id": f"m-{i}", "location": fix(*offset(1))},
                                     headers=bearer(device_token(settings, person, clock.now())))
        assert resp.status == 201
    text = await (await app_client.get("/metrics")).text()
    values = {line.split(" ")[0]: float(line.split(" ")[1]) for line in text.splitlines()
              if line.startswith("alertd_intake_")}
    assert values['alertd_intake_group_size_sum{source="app"}'] == 5  # five alerts, one after the other
    assert values['alertd_intake_group_size_count{source="app"}'] == 5
    assert values['alertd_intake_wait_seconds_count{source="app"}'] == 5


async def test_a_lost_database_fails_the_whole_group_at_once_not_once_per_alert(pool, settings, clock, db):
    people = [await enrol(db, clock.now()) for _ in range(5)]
    tries = []

    async def database_gone(conn, items):
        tries.append(len(items))
        raise ConnectionResetError("database went away")

    committer = GroupCommit(pool, database_gone, name="test", committers=1)
    answers = await all_at_once(committer, [app_alert(p, f"l-{i}", clock, 1) for i, p in enumerate(people)])
    assert all(isinstance(a, ConnectionResetError) for a in answers)
    assert tries == [5]  # one attempt for the group; retrying each alone could only fail again


async def test_a_bad_item_is_found_by_retrying_the_group_one_by_one(pool, settings, clock, db):
    tries = []

    async def refuse_the_odd_ones(conn, items):
        tries.append(len(items))
        if any(i % 2 for i in items):
            raise ValueError("odd")
        return [i * 10 for i in items]

    answers = await all_at_once(GroupCommit(pool, refuse_the_odd_ones, name="test", committers=1), [0, 1, 2, 3])
    assert answers[0] == 0 and answers[2] == 20
    assert isinstance(answers[1], ValueError) and isinstance(answers[3], ValueError)
    assert tries == [4, 1, 1, 1, 1]


async def test_a_bug_in_a_groups_work_answers_its_senders_and_the_committer_goes_on(pool):
    async def wrong_count(conn, items):
        return [] if items == ["bad"] else [f"ok:{i}" for i in items]

    committer = GroupCommit(pool, wrong_count, name="test", committers=1)
    [answer] = await all_at_once(committer, ["bad"])
    assert isinstance(answer, ValueError)  # zip(strict=True): one answer per item, or an error to each sender
    committer.start()
    try:
        assert await asyncio.wait_for(committer.submit("next"), 5) == "ok:next"
    finally:
        await committer.stop()


async def test_one_senders_work_is_in_one_group_at_a_time_the_rest_flows_past_it(pool):
    """A flood from one person: her items wait (parked) for her group's commit and go together into a next one,
    instead of holding a second committer that would only wait for her row lock; others' items flow past."""
    active: set[str] = set()
    overlaps, groups = [], []

    async def work(conn, items):
        keys = {key for key, _ in items}
        overlaps.extend(keys & active)
        active.update(keys)
        groups.append([key for key, _ in items])
        for _ in range(5):  # other committers run meanwhile (as they would while this one waits for PostgreSQL)
            await asyncio.sleep(0)
        active.difference_update(keys)
        return [f"{key}:{n}" for key, n in items]

    items = [item for n in range(24) for item in (("her", n), (f"other-{n}", 0))]
    committer = GroupCommit(pool, work, name="test", key=lambda item: item[0], max_group=4, committers=4)
    answers = await all_at_once(committer, items)

    assert answers == [f"{key}:{n}" for key, n in items]  # each sender her own answer
    assert overlaps == []  # never two groups of hers at once
    hers = [g.count("her") for g in groups if "her" in g]
    assert sum(hers) == 24 and max(hers) > 1  # her parked items went together into later groups
    assert committer.parked == {} and committer.in_flight == set()


@pytest.mark.parametrize("gather_s", [0.0, 0.3])
async def test_a_flood_waits_to_commit_together_and_nobody_else_waits(pool, gather_s):
    """coalesce_s: what queued behind one sender's own commit waits for the rest of her flood to join it (one
    group of many instead of many of a few); a sender with nothing parked is committed at once, gathering or not
    (no committer waits for company while a flood is parked)."""
    groups: list[tuple[float, list[str]]] = []
    loop = asyncio.get_running_loop()

    async def work(conn, items):
        groups.append((loop.time(), [key for key, _ in items]))
        await asyncio.sleep(0.01)  # a commit's round trips, while her next items arrive
        return [f"{key}:{n}" for key, n in items]

    committer = GroupCommit(pool, work, name="test", key=lambda item: item[0], max_group=64, committers=2,
                            coalesce_s=0.3, gather_s=gather_s)
    committer.start()
    try:
        first = asyncio.ensure_future(committer.submit(("her", 0)))
        await asyncio.sleep(0.005)  # her first item is committing
        flood = []
        for n in range(1, 31):  # the rest of her flood, one every 5 ms (without coalescing: groups of one or two)
            flood.append(asyncio.ensure_future(committer.submit(("her", n))))
            await asyncio.sleep(0.005)
        t_other = loop.time()  # someone else comes while her flood waits
        assert await asyncio.wait_for(committer.submit(("other", 0)), 1) == "other:0"
        assert loop.time() - t_other < 0.1  # not held back by her flood
        answers = await asyncio.wait_for(asyncio.gather(first, *flood), 2)
    finally:
        await committer.stop()
    assert answers == [f"her:{n}" for n in range(31)]
    hers = [(at, keys) for at, keys in groups if "her" in keys]
    assert [len(keys) for _, keys in hers] == [1, 30]  # the flood committed as one group
    assert hers[1][0] - hers[0][0] >= 0.3  # after waiting coalesce_s past her first commit
    assert committer.parked == {} and committer.in_flight == set()


async def test_a_revoked_or_foreign_device_is_refused_in_the_group_and_the_rest_commits(pool, settings, clock, db):
    """The app's alerts leave their device to intake to check: in the group's transaction, one statement for all."""
    await seed_responders(db)
    live, revoked, other = [await enrol(db, clock.now()) for _ in range(3)]
    await db.execute("UPDATE devices SET revoked_at = $2 WHERE id = $1", revoked.device_id, clock.now())
    unchecked = [replace(app_alert(p, f"d-{i}", clock, 1), device_checked=False) for i, p in enumerate([live, revoked])]
    foreign = replace(app_alert(other, "d-x", clock, 1), device_id=live.device_id, device_checked=False)
    groups = []
    committer = group_committer(pool, Context(settings, clock), committers=1,
                                observe=lambda size, waits, seconds: groups.append(size))
    answers = await all_at_once(committer, [*unchecked, foreign])

    assert groups == [3]
    assert [a.made for a in answers] == ["created", "refused", "refused"]
    assert await db.fetchval("SELECT array_agg(person_id) FROM alerts") == [live.person_id]


async def test_while_work_arrives_closely_a_committer_waits_for_company_and_a_lone_item_goes_at_once(pool):
    """gather_s: an item with nothing arriving just before it commits at once; items arriving a few ms apart wait
    for each other (one group instead of one each)."""
    groups: list[list[str]] = []
    loop = asyncio.get_running_loop()

    async def work(conn, items):
        groups.append(list(items))
        return list(items)

    committer = GroupCommit(pool, work, name="test", committers=2, gather_s=0.4)
    committer.start()
    try:
        started = loop.time()
        assert await asyncio.wait_for(committer.submit("lone"), 1) == "lone"
        assert loop.time() - started < 0.2  # not held back: nothing came close before it
        await asyncio.sleep(0.5)
        close = []
        for n in range(5):  # one every 5 ms: close together
            close.append(asyncio.ensure_future(committer.submit(f"close-{n}")))
            await asyncio.sleep(0.005)
        assert await asyncio.wait_for(asyncio.gather(*close), 2) == [f"close-{n}" for n in range(5)]
    finally:
        await committer.stop()
    # the first of them had nothing close before it; the rest gathered behind the second
    assert groups == [["lone"], ["close-0"], [f"close-{n}" for n in range(1, 5)]]
