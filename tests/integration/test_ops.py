"""Operations: health, readiness against the real database and broker, metrics, the spec, migrations, logs."""

from __future__ import annotations

import io
import json
import logging

import asyncpg

from alertd.log import JsonFormatter, mask_phone
from alertd.store.db import connect
from alertd.store.migrate import discover, migrate
from alertd.web.keys import ENGINE
from tests.helpers import bearer, device_token, enrol, fix, offset, seed_responders


async def test_health_ready_metrics_openapi(app_client, settings, clock, db):
    assert (await app_client.get("/healthz")).status == 200
    for _ in range(50):  # the broker connection comes up in the background
        resp = await app_client.get("/readyz")
        if resp.status == 200:
            break
        await __import__("asyncio").sleep(0.05)
    assert resp.status == 200 and await resp.json() == {"status": "ready"}  # nothing more for anyone to read

    await seed_responders(db)
    person = await enrol(db, clock.now())
    await app_client.post("/v1/alerts", json={"client_alert_id": "m", "location": fix(*offset(1))},
                          headers=bearer(device_token(settings, person, clock.now())))
    clock.advance(60)
    await app_client.app[ENGINE].run_once()
    text = await (await app_client.get("/metrics")).text()
    assert 'alertd_alerts_received_total{channel="app",outcome="created"} 1.0' in text
    assert 'alertd_alerts{status="open"} 1.0' in text
    assert 'alertd_dispatches{kind="police_post",status="expired"} 1.0' in text
    assert 'alertd_escalations_total{kind="police_post"} 1.0' in text
    assert "alertd_deadline_lateness_seconds_count 1.0" in text
    assert "alertd_outbox_depth" in text

    spec = await (await app_client.get("/openapi.json")).json()
    assert spec["openapi"].startswith("3.")
    for path in ("/v1/alerts", "/v1/alerts/{id}/cancel", "/v1/dispatches/{id}/ack", "/v1/events"):
        assert path in spec["paths"]


async def test_readyz_fails_when_broker_is_down(settings, clock):
    from aiohttp.test_utils import TestClient, TestServer

    from alertd.app import create_app
    from alertd.local.services import free_port

    app = create_app(settings.replace(mqtt_url=f"mqtt://127.0.0.1:{free_port()}"), clock, run_engine=False)
    client = TestClient(TestServer(app))
    await client.start_server()
    try:
        resp = await client.get("/readyz")
        assert resp.status == 503
        assert await resp.json() == {"status": "not ready"}  # which part is down: only behind the metrics
        text = await (await client.get("/metrics")).text()
        assert 'alertd_ready{check="database"} 1.0' in text and 'alertd_ready{check="broker"} 0.0' in text
    finally:
        await client.close()


async def test_migrations_apply_to_empty_database_twice(postgres):
    admin = await asyncpg.connect(postgres.dsn())
    await admin.execute("DROP DATABASE IF EXISTS migrate_twice")
    await admin.execute("CREATE DATABASE migrate_twice")
    try:
        conn = await connect(postgres.dsn("migrate_twice"))
        first = await migrate(conn)
        second = await migrate(conn)
        versions = [r["version"] for r in await conn.fetch("SELECT version FROM schema_migrations ORDER BY 1")]
        await conn.close()
        assert [m.version for m in first] == [m.version for m in discover()] == versions
        assert second == []
        for m in discover():
            assert m.path.read_text().lstrip().startswith("-- Why"), m.path.name
    finally:
        await admin.execute("DROP DATABASE IF EXISTS migrate_twice WITH (FORCE)")
        await admin.close()


def test_logs_are_json_and_mask_phone_numbers():
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("alertd.test-mask")
    logger.addHandler(handler)
    logger.propagate = False
    logger.warning("sms from +77015554433", extra={"fields": {"to": "+77019998877", "at": "2026-11-26"}})
    doc = json.loads(stream.getvalue())
    assert "+77015554433" not in stream.getvalue() and "+77019998877" not in stream.getvalue()
    assert doc["to"] == "+770*****877" and doc["at"] == "2026-11-26"
    assert mask_phone("call 87015554433 now") == "call 8701****433 now"


async def test_queue_vacuum_advice_follows_the_servers_settings(db):
    from alertd.store.db import QUEUE_NAPTIME_MAX_S, check_vacuum, vacuum_advice

    assert await check_vacuum(db) is None  # the test cluster runs with PostgreSQL's defaults (on, 60 s)
    assert await db.fetchval("SELECT setting::int FROM pg_settings WHERE name = 'autovacuum_naptime'") == 60
    assert vacuum_advice(True, QUEUE_NAPTIME_MAX_S) is None
    assert "autovacuum_naptime is 300 s" in vacuum_advice(True, 300)
    assert "autovacuum is off" in vacuum_advice(False, 5)


def test_free_ports_are_never_handed_out_twice_nor_from_the_kernels_ephemeral_range():
    import socket

    from alertd.local.services import PORT_RANGE, free_port

    ports = [free_port() for _ in range(100)]
    assert len(set(ports)) == 100 and all(p in PORT_RANGE for p in ports)
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        taken = busy.getsockname()[1]
        assert free_port(taken) != taken  # a preferred port in use is not handed out
    assert free_port(ports[0]) != ports[0]  # nor one handed out before
