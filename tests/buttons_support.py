"""Fixtures for button and unit tests: a Mosquitto with the dynamic-security plugin, the service on it, devices."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import tempfile
import uuid
from contextlib import asynccontextmanager
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from aiohttp.test_utils import TestClient, TestServer

from alertd.app import INGEST, create_app
from alertd.local.services import LocalMosquitto, ServiceError
from alertd.mqtt.dynsec import broker_accounts
from alertd.service import provisioning
from alertd.service.ports import BrokerError
from alertd.web.keys import BROKER
from clients.simulator.sim import Button, Unit
from tests.helpers import BROKER_ADMIN, BROKER_SERVICE

ADMIN, SERVICE = BROKER_ADMIN, BROKER_SERVICE


async def start_secured_broker(directory) -> LocalMosquitto:
    """A Mosquitto that refuses anonymous clients, with alertd's own service account in dynamic security."""
    for attempt in range(3):
        broker = LocalMosquitto(directory / f"try-{attempt}", dynsec_admin=ADMIN, service=SERVICE)
        try:
            await asyncio.to_thread(broker.start)
        except (ServiceError, BrokerError):
            # beaten to its free port by another test run on this machine (its admin login was refused there)
            await asyncio.to_thread(broker.stop)
            continue
        await asyncio.sleep(0.2)
        if broker.process.poll() is None:
            break
    return broker


_session_brokers: dict[Path, LocalMosquitto] = {}


@pytest.fixture(scope="session")
async def secured_broker_process(workdir):
    """One secured broker for the whole session. Test modules import this fixture, and pytest makes an imported
    session fixture once per importing module: without the cache each module started a broker of its own in the
    same folder, two or more Mosquittos sharing one persistence file and one dynamic-security file."""
    broker = _session_brokers.get(workdir)
    if broker is None:
        broker = _session_brokers[workdir] = await start_secured_broker(workdir / "mqtt-secured")
    yield broker
    _session_brokers.pop(workdir, None)
    await asyncio.to_thread(broker.stop)


@pytest.fixture
async def secured_broker(secured_broker_process):
    """The session's secured broker, started again (its state is on disk) if something ended it since."""
    broker = secured_broker_process
    if broker.process is None or broker.process.poll() is not None:
        log = broker.directory / "mosquitto.log"
        if log.exists():  # keep the evidence: why did it stop?
            shutil.copy(log, Path(tempfile.gettempdir()) / f"alertd-secured-broker-{os.getpid()}.log")
        await asyncio.to_thread(broker.start)
    return broker


def secured_settings(settings, broker: LocalMosquitto, **changes):
    """Settings on the secured broker, with a session of its own for each service instance."""
    return settings.replace(mqtt_url=broker.service_url, mqtt_admin_url=broker.admin_url,
                            mqtt_client_id=f"alertd-test-{uuid.uuid4().hex[:8]}", mqtt_session_expiry_s=300,
                            **changes)


@pytest.fixture
def button_settings(settings, secured_broker):
    return secured_settings(settings, secured_broker)


@asynccontextmanager
async def running_service(settings, clock):
    """The service on a test server (engine driven by hand) once its ingest holds its subscriptions."""
    app = create_app(settings, clock, run_engine=False)
    client = TestClient(TestServer(app))
    await client.start_server()
    try:
        try:
            await asyncio.wait_for(app[INGEST].subscribed.wait(), 30)
            await asyncio.wait_for(app[BROKER].connected.wait(), 30)
        except TimeoutError:
            ingest = app[INGEST].broker
            raise AssertionError(f"the service did not get onto the broker: ingest connected "
                                 f"{ingest.is_connected} ({ingest.connected.is_set()}), subscribed "
                                 f"{app[INGEST].subscribed.is_set()}, other connection "
                                 f"{app[BROKER].is_connected}") from None
        yield client
    finally:
        await client.close()


@pytest.fixture
async def button_service(button_settings, clock):
    async with running_service(button_settings, clock) as client:
        yield client


async def provision_button(db, settings, clock, person_id: str, caseworker_id: str | None = None):
    creds = await provisioning.provision_button(db, broker_accounts(settings), clock.now(),
                                                person_id=person_id, caseworker_id=caseworker_id)
    return creds


async def connected_button(broker: LocalMosquitto, creds, clock, **kw) -> Button:
    button = Button(broker.user_url(creds.username, creds.password), creds.device_id, creds.hmac_secret,
                    clock=lambda: clock.now().timestamp(), **kw)
    return await asyncio.to_thread(button.connect)


async def connected_unit(broker: LocalMosquitto, creds, clock) -> Unit:
    unit = Unit(broker.user_url(creds.username, creds.password), creds.device_id,
                clock=lambda: clock.now().timestamp())
    return await asyncio.to_thread(unit.connect)


def run_mqtt_client(tool: str, url: str, *args: str, client_id: str | None = None,
                     timeout_s: float = 20.0) -> subprocess.CompletedProcess:
    """Run one of Debian's own MQTT clients (mosquitto_pub, mosquitto_sub, mosquitto_rr: nobody here wrote them)
    with the account in `url`, over MQTT 5 so that a denied publish is reported ("Not authorized")."""
    parts = urlsplit(url)
    cmd = [tool, "-h", parts.hostname or "127.0.0.1", "-p", str(parts.port), "-V", "mqttv5", *args]
    if parts.username:
        cmd += ["-u", parts.username, "-P", parts.password or ""]
    if client_id:
        cmd += ["-i", client_id]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s)


async def mqtt_client(tool: str, url: str, *args: str, **kwargs) -> subprocess.CompletedProcess:
    return await asyncio.to_thread(run_mqtt_client, tool, url, *args, **kwargs)


def refused_at_connect(result: subprocess.CompletedProcess) -> bool:
    """The broker refused the client's CONNECT (no or wrong account, someone else's client id)."""
    return result.returncode != 0 and "not authori" in result.stderr.lower()


async def eventually(predicate, timeout: float = 30.0, interval: float = 0.02):
    """Poll an async predicate until it is truthy (for work another process or thread does)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        value = await predicate()
        if value or loop.time() > deadline:
            return value
        await asyncio.sleep(interval)


class PressLoop:
    """Buttons pressing in their own threads, each press retried until acknowledged (like the firmware)."""

    def __init__(self, buttons: list[Button], presses: int, gap_s: float = 0.05, wait_s: float = 60.0) -> None:
        import threading

        self.acked: list[tuple[str, int]] = []
        self.errors: list[BaseException] = []
        self._lock = threading.Lock()
        self.threads = [threading.Thread(target=self._run, args=(b, presses, gap_s, wait_s), daemon=True)
                        for b in buttons]
        for t in self.threads:
            t.start()

    def _run(self, button: Button, presses: int, gap_s: float, wait_s: float) -> None:
        import time

        try:
            for _ in range(presses):
                seq = button.press(wait_s=wait_s)
                with self._lock:
                    self.acked.append((button.device_id, seq))
                time.sleep(gap_s)
        except BaseException as exc:  # reported by join()
            self.errors.append(exc)

    @property
    def count(self) -> int:
        with self._lock:
            return len(self.acked)

    async def join(self, timeout: float = 90.0) -> list[tuple[str, int]]:
        for t in self.threads:
            await asyncio.to_thread(t.join, timeout)
        assert not self.errors, self.errors
        return sorted(self.acked)
