"""A database failover, fast: a primary and its synchronous standby (what Patroni runs, without Patroni), a
multi-host ALERTD_DATABASE_URL, the primary stopped as if its machine died, the standby promoted by hand.

Every channel rides through it: the app gets 503 with Retry-After (never 500) and its retry commits once; an
inbound SMS is held until the new primary answers; /readyz says so; the engine and the console feed find the
new primary by themselves. The same on a real Patroni cluster, with kills under load: tests/integration/test_ha_cluster.py.
"""

from __future__ import annotations

import asyncio
import itertools
import shutil

import pytest

from alertd.local.services import LocalPostgres
from alertd.store.db import connect
from alertd.store.migrate import migrate
from tests.fake_twilio import FROM_NUMBER, fake_twilio, sign  # noqa: F401  (fixtures)
from tests.helpers import bearer, device_token, enrol, fix, officer_token, offset, running_app, seed_responders

_pairs = itertools.count()
# Not durable on disk (fsync off: fast), but every commit waits for the standby: with synchronous_commit off, as
# the other tests run, a failover could lose an alert that was answered 201 (this test caught it).
SYNCHRONOUS = "-c synchronous_commit=on"


@pytest.fixture(scope="session")
async def seed_cluster(workdir):
    """A stopped cluster holding a migrated alertd database, copied for each pair (migrating takes seconds)."""
    seed = LocalPostgres(workdir / "failover-seed", durable=False)
    await asyncio.to_thread(seed.start)
    try:
        admin = await connect(seed.dsn())
        await admin.execute("CREATE DATABASE alertd")
        await admin.close()
        conn = await connect(seed.dsn("alertd"))
        await migrate(conn)
        await conn.close()
    finally:
        await asyncio.to_thread(seed.stop)
    return seed.datadir


@pytest.fixture
async def pair(workdir, seed_cluster):
    """A primary with a migrated alertd database and a synchronous standby; the URL that names both."""
    # Under the session's folder, not tmp_path: the postgres user must be able to reach it, and pytest makes
    # /tmp/pytest-of-root private again whenever another pytest starts on this machine.
    here = workdir / f"failover-{next(_pairs)}"
    await asyncio.to_thread(shutil.copytree, seed_cluster, here / "a" / "pgdata")
    primary = await asyncio.to_thread(LocalPostgres(here / "a", durable=False, options=SYNCHRONOUS).start)
    standby = None
    try:
        standby = await asyncio.to_thread(primary.standby, here / "b")
        await asyncio.to_thread(standby.start)
        admin = await connect(primary.dsn())
        await admin.execute("ALTER SYSTEM SET synchronous_standby_names = '*'")
        await admin.execute("SELECT pg_reload_conf()")
        for _ in range(400):  # until the standby streams, and each commit waits for it
            if await admin.fetchval("SELECT count(*) FROM pg_stat_replication WHERE sync_state = 'sync'"):
                break
            await asyncio.sleep(0.05)
        else:
            raise AssertionError("the standby never became synchronous")
        await admin.close()
        url = (f"postgresql://postgres@127.0.0.1:{primary.port},127.0.0.1:{standby.port}/alertd"
               f"?target_session_attrs=primary")
        yield primary, standby, url
    finally:
        for server in (primary, standby):
            if server is not None:
                await asyncio.to_thread(server.stop, "immediate")
        await asyncio.to_thread(shutil.rmtree, here, True)


async def _until(predicate, timeout: float = 20.0):
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while True:
        value = await predicate()
        if value or loop.time() > end:
            return value
        await asyncio.sleep(0.05)


def _alert(client_alert_id: str) -> dict:
    lat, lon = offset(0.5)
    return {"client_alert_id": client_alert_id, "location": fix(lat, lon)}


async def test_app_alerts_ride_through_a_failover(pair, settings, clock):
    primary, standby, url = pair
    served = settings.replace(database_url=url)
    db = await connect(url)
    await seed_responders(db)
    # three people: a second alert of one person while hers is open would join it as a repeat
    phones = {name: bearer(device_token(served, await enrol(db, clock.now()), clock.now()))
              for name in ("before", "during", "after")}
    await db.close()
    async with running_app(served, clock, run_engine=True) as client:
        first = await client.post("/v1/alerts", json=_alert("before"), headers=phones["before"])
        assert first.status == 201
        console = await client.ws_connect("/v1/events",
                                          headers=bearer(officer_token(served, "pol-1", clock.now(), role="admin")))
        assert (await console.receive_json(timeout=10))["type"] == "ready"

        await asyncio.to_thread(primary.stop, "immediate")  # its machine died: no clean shutdown

        refused = await client.post("/v1/alerts", json=_alert("during"), headers=phones["during"])
        assert refused.status == 503, await refused.text()
        assert refused.headers["Retry-After"] == "2"
        assert (await refused.json())["error"]["code"] == "unavailable"
        ready = await client.get("/readyz")
        assert ready.status == 503 and (await ready.json())["status"] == "not ready"

        await asyncio.to_thread(standby.promote)

        # the phone app retries the same client_alert_id: committed once, on the new primary
        retried = await client.post("/v1/alerts", json=_alert("during"), headers=phones["during"])
        assert retried.status == 201, await retried.text()
        again = await client.post("/v1/alerts", json=_alert("during"), headers=phones["during"])
        assert again.status == 200 and (await again.json())["alert_id"] == (await retried.json())["alert_id"]
        assert (await client.get("/readyz")).status == 200

        # the console feed found the new primary: it asks consoles to catch up, then streams again
        while (await console.receive_json(timeout=15))["type"] != "resync":
            pass
        after = await client.post("/v1/alerts", json=_alert("after"), headers=phones["after"])
        assert after.status == 201
        after_id = (await after.json())["alert_id"]
        while True:
            message = await console.receive_json(timeout=10)
            if message["type"] == "event" and message["event"]["alert_id"] == after_id:
                break
        await console.close()

        db = await connect(standby.dsn("alertd"))
        try:
            assert await db.fetchval("SELECT count(*) FROM alerts") == 3
            assert await db.fetchval("SELECT count(*) FROM dispatches") == 9
            # the engine found the new primary too: the police deadlines of all three alerts, one made before
            # the failover, fire once each
            clock.advance(61)
            fired = await _until(lambda: db.fetchval("SELECT count(*) FROM alert_events WHERE type = 'expired'"))
            assert fired == 3
            await asyncio.sleep(0.3)  # a second firing would come within a few engine cycles (0.05 s)
            expired = await db.fetch("SELECT dispatch_id, count(*) AS n FROM alert_events WHERE type = 'expired' "
                                     "GROUP BY dispatch_id")
            assert len(expired) == 3 and {r["n"] for r in expired} == {1}
        finally:
            await db.close()


async def test_an_inbound_sms_is_held_until_a_primary_answers_and_past_the_hold_gets_503(
        pair, settings, clock, fake_twilio):
    primary, standby, url = pair
    served = settings.replace(database_url=url, twilio_account_sid=fake_twilio.account_sid,
                              twilio_auth_token=fake_twilio.auth_token, twilio_from_number=FROM_NUMBER,
                              twilio_api_url=fake_twilio.url, sms_webhook_hold_s=3.0)
    db = await connect(url)
    await seed_responders(db)
    await enrol(db, clock.now(), phone="+77015550101")
    await db.close()
    lat, lon = offset(0.5)
    params = {"MessageSid": "SM" + "f" * 32, "AccountSid": served.twilio_account_sid, "From": "+77015550101",
              "To": FROM_NUMBER, "Body": f"help {lat:.5f}, {lon:.5f}", "NumMedia": "0"}
    headers = sign(served.twilio_auth_token, served.public_url + "/v1/sms/inbound", params)
    async with running_app(served, clock) as client:
        await asyncio.to_thread(primary.stop, "immediate")
        # no primary for longer than the hold: 503 with Retry-After, for Twilio's retry policy (never 500)
        past_hold = await client.post("/v1/sms/inbound", data=params, headers=headers)
        assert past_hold.status == 503 and past_hold.headers["Retry-After"] == "2"
        # Twilio's retry: held while no primary answers, answered once the new one does
        webhook = asyncio.create_task(client.post("/v1/sms/inbound", data=params, headers=headers))
        await asyncio.sleep(1.0)
        assert not webhook.done()
        await asyncio.to_thread(standby.promote)
        answered = await asyncio.wait_for(webhook, 15)
        assert answered.status == 200 and "<Response" in await answered.text()
        again = await client.post("/v1/sms/inbound", data=params, headers=headers)
        assert again.status == 200
    db = await connect(standby.dsn("alertd"))
    try:
        assert await db.fetchval("SELECT count(*) FROM alerts WHERE channel = 'sms'") == 1
        assert await db.fetchval("SELECT count(*) FROM dispatches") == 3
    finally:
        await db.close()


async def test_a_dead_host_first_in_the_url_does_not_keep_alertd_from_the_primary(database, postgres):
    """A powered-off machine drops packets instead of refusing: modelled by a socket that completes the TCP
    handshake and never says a word. asyncpg alone tries the hosts in order within one 60 s timeout."""
    import socket

    from alertd.local.services import free_port
    from alertd.store.db import create_pool

    silent = socket.socket()
    silent.bind(("127.0.0.1", free_port()))
    silent.listen(16)  # never accepted: the kernel completes handshakes, nothing answers
    try:
        name = database.rsplit("/", 1)[1]
        url = (f"postgresql://postgres@127.0.0.1:{silent.getsockname()[1]},127.0.0.1:{postgres.port}/{name}"
               f"?target_session_attrs=primary")
        loop = asyncio.get_running_loop()
        started = loop.time()
        pool = await asyncio.wait_for(create_pool(url, 2, 4), 20)
        try:
            assert loop.time() - started < 10
            async with pool.acquire() as conn:
                assert await conn.fetchval("SELECT current_database()") == name
        finally:
            await pool.close()
        conn = await connect(url)
        assert await conn.fetchval("SELECT 1") == 1
        await conn.close()
    finally:
        silent.close()


async def test_every_database_connection_notices_a_silently_dead_server(database):
    """A machine that dies without a word leaves its connections open: keepalive and TCP_USER_TIMEOUT drop them
    in seconds (Linux's default is ~15 minutes of retransmissions)."""
    import socket

    from alertd.store.db import create_pool

    def options(conn) -> dict:
        sock = conn._transport.get_extra_info("socket")
        return {"keepalive": sock.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE),
                "idle": sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE),
                "user_timeout_ms": sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_USER_TIMEOUT)}

    wanted = {"keepalive": 1, "idle": 5, "user_timeout_ms": 10_000}
    url = database.replace("@127.0.0.1:", "@localhost:")  # a TCP connection, by name
    pool = await create_pool(url, 1, 2)
    try:
        async with pool.acquire() as conn:
            assert options(conn) == wanted
    finally:
        await pool.close()
    conn = await connect(url)
    try:
        assert options(conn) == wanted
    finally:
        await conn.close()
