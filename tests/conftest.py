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
from argon2 import PasswordHasher, profiles

from alertd.clock import FakeClock
from alertd.local.services import LocalMosquitto, LocalPostgres
from alertd.settings import Settings
from alertd.store.db import connect
from alertd.store.migrate import migrate
from tests.helpers import BROKER_ADMIN, BROKER_SERVICE

TEMPLATE = "alertd_template"
_counter = itertools.count()


@pytest.fixture(scope="session", autouse=True)
def cheap_hashes():
    """PINs and officer passwords hashed in this process with argon2's cheapest parameters (argon2-cffi's profile
    for tests): at the real ones (64 MiB, 3 passes) a hash takes 0.15-0.3 s here, and one PIN pair per enrolment
    made hashing a third of the suite. A hash records its parameters, so checks read them from the hash; alertd run
    as a process (the CLI and serve tests, the demo) still hashes at the real ones, checked here first."""
    from alertd.service import officer_accounts, pins

    real = profiles.RFC_9106_LOW_MEMORY
    cheap = PasswordHasher.from_parameters(profiles.CHEAPEST)
    saved = {module: module._hasher for module in (pins, officer_accounts)}
    for module, hasher in saved.items():
        assert (hasher.time_cost, hasher.memory_cost, hasher.parallelism) == (
            real.time_cost, real.memory_cost, real.parallelism), f"{module.__name__} hashes below RFC 9106's low-memory profile"
        module._hasher = cheap
    yield
    for module, hasher in saved.items():
        module._hasher = hasher


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
