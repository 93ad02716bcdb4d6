"""The contract checked by a client nobody here wrote: schemathesis drives every operation of /openapi.json against
the whole service (real PostgreSQL and broker) with each role's token, with every check on; zero failures.

Examples per operation are bounded (ALERTD_CONTRACT_EXAMPLES) so the run stays within seconds per role. The seed
is fixed so the suite never fails by chance; set ALERTD_CONTRACT_SEED to another number (or `random`) to explore
further. A failure prints the request that reproduces it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import threading
from datetime import UTC, datetime

import asyncpg
import pytest
import schemathesis
from aiohttp import web
from schemathesis.config import SchemathesisConfig

from alertd import auth
from alertd.app import create_app
from alertd.clock import SystemClock
from alertd.http.openapi import SPEC
from alertd.service import gateways, officer_accounts
from alertd.store.db import connect
from tests.helpers import enrol, seed_responders

ROLES = ("device", "officer", "supervisor", "engineer", "admin", "gateway")  # gateway: a Traccar server's
EXAMPLES = int(os.environ.get("ALERTD_CONTRACT_EXAMPLES", "5"))
SEED = os.environ.get("ALERTD_CONTRACT_SEED", "16")


class ServedApp:
    """The service on 127.0.0.1 in a thread of its own (schemathesis calls it synchronously)."""

    def __init__(self, settings) -> None:
        self.settings = settings
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="contract-server", daemon=True)
        self.runner: web.AppRunner | None = None
        self.url = ""

    def run(self, coro):
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(60)

    def start(self) -> ServedApp:
        self.thread.start()
        self.run(self._start())
        return self

    async def _start(self) -> None:
        self.runner = web.AppRunner(create_app(self.settings, SystemClock(), run_engine=False))
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        self.url = f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}"

    def stop(self) -> None:
        with contextlib.suppress(Exception):
            self.run(self.runner.cleanup())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)


async def _seed(dsn: str, now: datetime) -> dict:
    conn = await connect(dsn)
    try:
        await seed_responders(conn)
        person = await enrol(conn, now)
        await officer_accounts.add(conn, now, username="duty", password="correct horse battery", responder_id="pol-1")
        gateway = await gateways.add(conn, now, "traccar")
        await gateways.add_tracker(conn, now, person_id=person.person_id, unique_id="359339077003123")
        return {"person_id": person.person_id, "device_id": person.device_id, "gateway_token": gateway["token"]}
    finally:
        await conn.close()


@pytest.fixture(scope="module")
def served(postgres, template_db, mosquitto, workdir):
    from alertd.settings import Settings

    name = f"contract_{os.getpid()}"

    async def admin(sql: str) -> None:
        conn = await asyncpg.connect(postgres.dsn())
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    asyncio.run(admin(f"CREATE DATABASE {name} TEMPLATE {template_db} STRATEGY FILE_COPY"))
    settings = Settings(database_url=postgres.dsn(name), mqtt_url=mosquitto.service_url,
                        jwt_secret="contract-" + "x" * 40,
                        public_url="https://alertd.example.org", db_pool_min=1, db_pool_max=4,
                        cancel_answer_floor_s=0.0, data_dir=str(workdir / "contract"),
                        # the contract's shapes are checked here, the budgets in test_budgets.py: a 429 here
                        # would only stand between schemathesis and the handlers
                        budget_source_rate=10_000, budget_source_burst=10_000, budget_device_rate=10_000,
                        budget_device_burst=10_000)
    now = datetime.now(UTC)
    person = asyncio.run(_seed(settings.database_url, now))
    server = ServedApp(settings).start()
    claims = {"device": {k: person[k] for k in ("person_id", "device_id")}, "officer": {"responder_id": "pol-1"},
              "supervisor": {"responder_id": "pol-2", "region": "north"}, "engineer": {}, "admin": {}}
    tokens = {role: auth.issue(settings, role=role, sub=claims[role].get("device_id", f"{role}-1"), ttl_s=3600,
                               now=now, **claims[role]) for role in ROLES if role != "gateway"}
    tokens["gateway"] = person["gateway_token"]  # not a JWT: the gateway's own bearer token
    yield server, tokens
    server.stop()
    asyncio.run(admin(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))


# The spec the service serves at /openapi.json (test_the_served_spec_is_this_one checks that it is this dict);
# each operation becomes a test item of its own per role.
schema = schemathesis.openapi.from_dict(SPEC, config=SchemathesisConfig.from_dict({
    **({} if SEED == "random" else {"seed": int(SEED)}),
    "checks": {"enabled": True},
    "generation": {"max-examples": EXAMPLES, "mode": "all"},
    "phases": {"stateful": {"enabled": False}},
    "request-timeout": 10,
})).exclude(path="/v1/events")  # a WebSocket: an HTTP fuzzer cannot hold one open (tests/integration/test_console_* do)


def test_the_served_spec_is_this_one(served):
    server, _tokens = served
    import requests

    assert requests.get(f"{server.url}/openapi.json", timeout=10).json() == json.loads(json.dumps(SPEC))


def _as(role: str):
    @schema.parametrize()
    def test(case, served):
        server, tokens = served
        case.call_and_validate(base_url=server.url, headers={"Authorization": f"Bearer {tokens[role]}"})

    test.__doc__ = f"Every operation keeps the contract when called with a {role}'s token."
    return test


test_contract_as_device = _as("device")
test_contract_as_officer = _as("officer")
test_contract_as_supervisor = _as("supervisor")
test_contract_as_engineer = _as("engineer")
test_contract_as_admin = _as("admin")
test_contract_as_gateway = _as("gateway")
