"""Engine module versions: during a rolling upgrade only the newest release runs a module; an old one stands down."""

from __future__ import annotations

import asyncio
import logging
import uuid
from types import SimpleNamespace

import pytest

from alertd.engine import Engine, versions
from alertd.engine.deadlines import Deadlines
from alertd.store.db import connect
from alertd.web.keys import CTX, ENGINE, POOL
from tests.helpers import bearer, device_token, enrol, fix, offset, seed_responders


class DeadlinesV2(Deadlines):
    """The next release's deadlines module: the same work under a higher version."""

    version = 2


def newer_engine(app) -> Engine:
    """A second instance, of a newer release, on the same database (its own engine, the same pool will do)."""
    return Engine(app[POOL], app[CTX], [DeadlinesV2(app[CTX])], app[CTX].settings.database_url)


async def _alert(client, settings, clock, db) -> uuid.UUID:
    person = await enrol(db, clock.now())
    resp = await client.post("/v1/alerts", json={"client_alert_id": "a", "location": fix(*offset(0.5))},
                             headers=bearer(device_token(settings, person, clock.now())))
    assert resp.status == 201
    return uuid.UUID((await resp.json())["alert_id"])


async def _police_statuses(db) -> list[str]:
    return [r["status"] for r in await db.fetch(
        "SELECT status FROM dispatches WHERE kind = 'police_post' ORDER BY created_at, responder_id")]


async def test_same_version_fires_as_before(app_client, settings, clock, db):
    await seed_responders(db)
    await _alert(app_client, settings, clock, db)
    clock.advance(settings.ack_deadline_police_post)
    engine = app_client.app[ENGINE]
    assert (await engine.run_once())["deadlines"] == 1
    assert await _police_statuses(db) == ["expired", "pending"]
    recorded = {r["module"]: r["version"] for r in await db.fetch("SELECT module, version FROM engine_versions")}
    assert recorded == {"deadlines": 1, "timers": 1, "supervision": 1, "outbox": 1, "retention": 1, "statistics": 1}
    assert engine.stood_down == {}


async def test_old_release_fires_no_due_deadline_once_a_newer_one_recorded_its_version(app_client, settings, clock,
                                                                                      db, caplog):
    await seed_responders(db)
    await _alert(app_client, settings, clock, db)
    old, new = app_client.app[ENGINE], newer_engine(app_client.app)
    await old.run_once()  # version 1 recorded, nothing due yet
    await new.run_once()  # the upgrade: version 2 recorded
    assert await db.fetchval("SELECT version FROM engine_versions WHERE module = 'deadlines'") == 2

    clock.advance(settings.ack_deadline_police_post)
    with caplog.at_level(logging.WARNING, logger="alertd.engine"):
        done = await old.run_once(only={"deadlines"})
    assert done["deadlines"] == 0
    assert await _police_statuses(db) == ["pending"]  # the old release fired nothing
    assert old.stood_down == {"deadlines": 2}
    assert old.module_states()["deadlines"] is True and old.module_states()["outbox"] is False
    stood = [r for r in caplog.records if r.getMessage().startswith("engine module stood down")]
    assert len(stood) == 1 and stood[0].levelno == logging.ERROR
    assert stood[0].fields == {"module": "deadlines", "version": 1, "recorded": 2}
    # A stood-down module's due work does not wake this instance: it would only spin on work that is not its own.
    assert await old._sleep_s() == settings.engine_poll_s
    text = await (await app_client.get("/metrics")).text()
    assert 'alertd_engine_module_stood_down{module="deadlines"} 1.0' in text
    assert 'alertd_engine_module_stood_down{module="outbox"} 0.0' in text

    assert (await new.run_once())["deadlines"] == 1  # the newer release fires it, once
    assert await _police_statuses(db) == ["expired", "pending"]
    assert await db.fetchval("SELECT count(*) FROM alert_events WHERE type = 'expired'") == 1


async def test_newer_release_takes_over_from_the_recorded_version(app_client, settings, clock, db, caplog):
    await seed_responders(db)
    await _alert(app_client, settings, clock, db)
    old, new = app_client.app[ENGINE], newer_engine(app_client.app)
    await old.run_once()
    assert await db.fetchval("SELECT version FROM engine_versions WHERE module = 'deadlines'") == 1
    clock.advance(settings.ack_deadline_police_post)
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="alertd.engine"):
        assert (await new.run_once())["deadlines"] == 1  # it records its version and fires in the same pass
    row = await db.fetchrow("SELECT version, recorded_at FROM engine_versions WHERE module = 'deadlines'")
    assert (row["version"], row["recorded_at"]) == (2, clock.now())
    upgraded = [r for r in caplog.records if r.getMessage().startswith("engine module upgraded")]
    assert [r.fields for r in upgraded] == [{"module": "deadlines", "version": 2, "was": 1}]
    assert new.stood_down == {}


async def test_every_module_of_an_old_release_stands_down_and_resumes_on_a_rollback(app_client, settings, clock,
                                                                                   db, caplog):
    await seed_responders(db)
    await _alert(app_client, settings, clock, db)
    engine = app_client.app[ENGINE]
    await db.execute("UPDATE engine_versions SET version = 7")  # a newer release recorded every module
    pending = await db.fetchval("SELECT count(*) FROM outbox WHERE status = 'pending'")
    assert pending > 0
    clock.advance(settings.ack_deadline_police_post)
    assert await engine.run_once() == {"deadlines": 0, "timers": 0, "supervision": 0, "outbox": 0, "retention": 0,
                                       "statistics": 0}
    assert engine.stood_down == {"deadlines": 7, "timers": 7, "supervision": 7, "outbox": 7, "retention": 7,
                                 "statistics": 7}
    assert await db.fetchval("SELECT count(*) FROM outbox WHERE status = 'pending'") == pending  # nothing leased
    assert await _police_statuses(db) == ["pending"]

    # Rolling back to this release: the operator records its versions again (docs/operations.md#upgrades).
    await db.execute("UPDATE engine_versions SET version = 1")
    with caplog.at_level(logging.WARNING, logger="alertd.engine"):
        done = await engine.run_once()
    assert done["deadlines"] == 1 and done["outbox"] > 0
    assert engine.stood_down == {}
    assert sorted(r.fields["module"] for r in caplog.records if r.getMessage().startswith("engine module resumed")) \
        == ["deadlines", "outbox", "retention", "statistics", "supervision", "timers"]


async def _waiting_for_lock(db, pid: int) -> bool:
    return await db.fetchval("SELECT EXISTS (SELECT FROM pg_locks WHERE pid = $1 AND locktype = 'advisory' "
                             "AND NOT granted)", pid)


async def _until(predicate, timeout_s: float = 10.0) -> None:
    async with asyncio.timeout(timeout_s):
        while not await predicate():
            await asyncio.sleep(0.01)


async def test_the_upgrade_waits_for_the_old_release_in_flight_and_then_wins(settings, clock, db):
    """Old instance A is mid-transaction (it may be firing deadlines); the upgrade must wait for A's commit, and an
    old instance B that asks while the upgrade waits must read the new version, not the one before."""
    from alertd.store.db import create_pool

    old_a, old_b = await connect(settings.database_url), await connect(settings.database_url)
    pool = await create_pool(settings.database_url, 1, 2)
    v1, v2 = SimpleNamespace(name="deadlines", version=1), SimpleNamespace(name="deadlines", version=2)
    try:
        a = old_a.transaction()
        await a.start()
        await versions.hold(old_a, v1)  # A runs deadlines under version 1

        upgrade = asyncio.create_task(versions.take_over(pool, v2, clock.now()))
        upgrade_pid = await _until_pid(db)
        assert not upgrade.done()
        assert await db.fetchval("SELECT version FROM engine_versions WHERE module = 'deadlines'") == 1

        b = old_b.transaction()
        await b.start()
        b_hold = asyncio.create_task(versions.hold(old_b, v1))
        await _until(lambda: _waiting_for_lock(db, old_b.get_server_pid()))  # queued behind the upgrade

        await a.commit()  # A's work is done: the upgrade goes ahead
        assert await asyncio.wait_for(upgrade, 10) is True
        assert await db.fetchval("SELECT version FROM engine_versions WHERE module = 'deadlines'") == 2
        with pytest.raises(versions.OtherVersion) as raised:
            await asyncio.wait_for(b_hold, 10)
        assert raised.value.newer and raised.value.recorded == 2  # B stands down: it fires nothing
        await b.rollback()
        assert not await _waiting_for_lock(db, upgrade_pid)
    finally:
        await pool.close()
        await old_a.close()
        await old_b.close()


async def _until_pid(db) -> int:
    """The backend of the upgrade once it waits for the version lock."""
    pid = None

    async def waiting() -> bool:
        nonlocal pid
        pid = await db.fetchval("SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND mode = 'ExclusiveLock' "
                                "AND NOT granted")
        return pid is not None

    await _until(waiting)
    return pid
