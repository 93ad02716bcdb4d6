"""Refusals are recorded at most once per source and kind per minute (an episode), every one of them counted:
a flood of refused requests is one security event, not one per request."""

from __future__ import annotations

import asyncio

from alertd.service.timeline import security_event
from alertd.store.db import create_pool
from tests.helpers import bearer, refusals


async def _events(db):
    return [(r["kind"], r["source"], r["refusals"]) for r in await db.fetch(
        "SELECT kind, source, refusals FROM security_events ORDER BY id")]


async def test_a_flood_of_bad_tokens_is_one_event_counting_every_refusal(app_client, clock, db):
    for _ in range(30):
        resp = await app_client.get("/v1/dispatches", headers=bearer("not.a.jwt"))
        assert resp.status == 401
    [(kind, source, count)] = await _events(db)
    assert (kind, count) == ("bad_token", 30) and source.startswith("http:")

    clock.advance(59)  # still the same minute: counted on the same event
    assert (await app_client.get("/v1/dispatches", headers=bearer("x.y.z"))).status == 401
    assert [c for _, _, c in await _events(db)] == [31]
    clock.advance(2)  # a minute after the episode began: a new one, with its own event
    assert (await app_client.get("/v1/dispatches", headers=bearer("x.y.z"))).status == 401
    assert [c for _, _, c in await _events(db)] == [31, 1]
    assert await refusals(db, "bad_token") == 32


async def test_each_source_and_kind_has_its_own_episode(db, clock):
    now = clock.now()
    for kind, source in [("bad_mac", "mqtt:b-1"), ("bad_mac", "mqtt:b-1"), ("bad_mac", "mqtt:b-2"),
                         ("stale_ts", "mqtt:b-1")]:
        await security_event(db, now, kind, source, reason="test")
    assert await _events(db) == [("bad_mac", "mqtt:b-1", 2), ("bad_mac", "mqtt:b-2", 1), ("stale_ts", "mqtt:b-1", 1)]
    first = await db.fetchrow("SELECT detail, at, last_at FROM security_events ORDER BY id LIMIT 1")
    assert first["detail"] == {"reason": "test"} and first["at"] == first["last_at"] == now


async def test_concurrent_refusals_from_one_source_make_one_event(settings, db, clock):
    pool = await create_pool(settings.database_url, 4, 4)
    try:
        async def refuse():
            async with pool.acquire() as conn, conn.transaction():
                return await security_event(conn, clock.now(), "bad_token", "http:203.0.113.9")

        ids = await asyncio.gather(*(refuse() for _ in range(40)))
    finally:
        await pool.close()
    assert len(set(ids)) == 1
    assert await _events(db) == [("bad_token", "http:203.0.113.9", 40)]


async def test_a_refusal_waiting_for_the_episodes_first_refusal_counts_on_its_event(settings, db, clock):
    pool = await create_pool(settings.database_url, 2, 2)
    try:
        async with pool.acquire() as first, pool.acquire() as second:
            tx = first.transaction()
            await tx.start()
            opened = await security_event(first, clock.now(), "bad_token", "http:198.51.100.7")

            async def meanwhile():
                async with second.transaction():
                    return await security_event(second, clock.now(), "bad_token", "http:198.51.100.7")

            waiting = asyncio.create_task(meanwhile())
            locked = ("SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                      "AND datname = current_database()")
            for _ in range(200):  # until the second refusal waits for the episode's row (a fact, not a deadline)
                if await db.fetchval(locked):
                    break
                await asyncio.sleep(0.01)
            assert await db.fetchval(locked) == 1
            await tx.commit()
            counted = await waiting
    finally:
        await pool.close()
    assert counted == opened
    assert await _events(db) == [("bad_token", "http:198.51.100.7", 2)]
