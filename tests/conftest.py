"""Real PostgreSQL+PostGIS and Mosquitto started for the session; a migrated template database cloned per test."""

from __future__ import annotations

import itertools
import os
import shutil
import tempfile
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
import pytest

from alertd.clock import FakeClock
from alertd.local.services import LocalMosquitto, LocalPostgres
from alertd.settings import Settings
from alertd.store.db import connect
from alertd.store.migrate import migrate
from tests.helpers import BROKER_ADMIN, BROKER_SERVICE

TEMPLATE = "alertd_template"
_counter = itertools.count()


@pytest.fixture(scope="session")
def workdir():
    path = Path(tempfile.mkdtemp(prefix="alertd-test-"))
    os.chmod(path, 0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres(workdir):
    pg = LocalPostgres(workdir / "pg", durable=False).start()
    yield pg
    pg.stop("immediate")


@pytest.fixture(scope="session")
def mosquitto(workdir):
    """Secured as in production (dynamic security, anonymous clients refused, alertd's own account), so every test
    that reaches the broker goes through the same access rules as a deployment."""
    broker = LocalMosquitto(workdir / "mqtt", dynsec_admin=BROKER_ADMIN, service=BROKER_SERVICE).start()
    yield broker
    broker.stop()


@pytest.fixture(scope="session")
async def template_db(postgres):
    conn = await asyncpg.connect(postgres.dsn())
    await conn.execute(f"CREATE DATABASE {TEMPLATE}")
    await conn.close()
    conn = await connect(postgres.dsn(TEMPLATE))
    await migrate(conn)
    await conn.close()
    return TEMPLATE


@pytest.fixture
async def database(postgres, template_db):
    """A fresh migrated database for this test (a file copy of the template: ~80 ms)."""
    name = f"t_{os.getpid()}_{next(_counter)}"
    admin = await asyncpg.connect(postgres.dsn())
    await admin.execute(f"CREATE DATABASE {name} TEMPLATE {template_db} STRATEGY FILE_COPY")
    await admin.close()
    yield postgres.dsn(name)
    admin = await asyncpg.connect(postgres.dsn())
    await admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    await admin.close()


@pytest.fixture
def clock():
    return FakeClock(datetime(2026, 11, 26, 12, 0, tzinfo=UTC))


@pytest.fixture
def settings(database, mosquitto):
    return Settings(
        database_url=database,
        mqtt_url=mosquitto.service_url,
        mqtt_admin_url=mosquitto.admin_url,
        jwt_secret="test-secret-" + "x" * 40,
        public_url="https://alertd.example.org",
        db_pool_min=1,
        db_pool_max=5,
        engine_poll_s=0.05,
        cancel_answer_floor_s=0.2,
    )


@pytest.fixture
async def db(database):
    conn = await connect(database)
    yield conn
    await conn.close()


@pytest.fixture
async def app_client(settings, clock):
    """The whole service on a test server, with the fake clock; the engine is driven by hand (app[ENGINE])."""
    from tests.helpers import running_app

    async with running_app(settings, clock) as client:
        yield client
