"""deploy/mosquitto/alertd.conf on the real Mosquitto: presses and unit dispatches end to end over TLS, the
service's and the admin's connections over TLS (the service's with a client certificate), the CA pinned."""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import ssl
import subprocess
import uuid
from pathlib import Path

import pytest

from alertd.local.services import dynsec_plugin, free_port, wait_port
from alertd.mqtt.dynsec import Dynsec, broker_accounts
from alertd.service import provisioning
from alertd.web.keys import ENGINE
from clients.button import protocol as firmware
from clients.simulator.sim import Button, Refused, Unit
from tests.buttons_support import eventually, running_service
from tests.helpers import bearer, device_token, enrol, fix, offset, seed_responders
from tests.tls_support import ThrowawayCA, render

CONFIG = Path(__file__).resolve().parents[2] / "deploy" / "mosquitto" / "alertd.conf"
ADMIN, SERVICE = ("admin", "admin-" + uuid.uuid4().hex), ("alertd", "svc-" + uuid.uuid4().hex)


class Broker:
    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.ca = ThrowawayCA(directory / "pki")
        self.other_ca = ThrowawayCA(directory / "other-pki", name="someone else's CA")
        cert, key = self.ca.issue("broker")
        self.client_cert, self.client_key = self.ca.issue("alertd-1", server=False)
        self.port, self.mtls_port = free_port(), free_port()
        dynsec = directory / "dynamic-security.json"
        subprocess.run([shutil.which("mosquitto_ctrl") or "/usr/bin/mosquitto_ctrl", "dynsec", "init", str(dynsec),
                        *ADMIN], check=True, capture_output=True)
        conf = render(CONFIG.read_text(), {
            "/usr/lib/x86_64-linux-gnu/mosquitto_dynamic_security.so": str(dynsec_plugin()),
            "/var/lib/mosquitto/dynamic-security.json": str(dynsec),
            "/var/lib/mosquitto/": f"{directory}/",
            "listener 8883\n": f"listener {self.port} 127.0.0.1\n",
            "listener 8884\n": f"listener {self.mtls_port} 127.0.0.1\n",
            "/etc/mosquitto/certs/broker.crt": str(cert),
            "/etc/mosquitto/certs/broker.key": str(key),
            "/etc/mosquitto/certs/ca.crt": str(self.ca.pem),
            "log_dest syslog": f"log_dest file {directory}/mosquitto.log",
        })
        if os.geteuid() == 0:
            conf += "\nuser root\n"  # it would drop to the mosquitto user, who cannot read this folder
        self.conf = directory / "mosquitto.conf"
        self.conf.write_text(conf)
        self.process = subprocess.Popen([shutil.which("mosquitto") or "/usr/sbin/mosquitto", "-c", str(self.conf)],
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_port(self.port)
        wait_port(self.mtls_port)

    def url(self, user: str, password: str, port: int | None = None) -> str:
        return f"mqtts://{user}:{password}@127.0.0.1:{port or self.port}"

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(10)


@pytest.fixture(scope="module")
async def tls_broker(tmp_path_factory):
    broker = await asyncio.to_thread(Broker, tmp_path_factory.mktemp("mosquitto-tls"))
    await Dynsec(broker.url(*ADMIN), tls_context=ssl.create_default_context(cafile=broker.ca.pem)).add_service(
        *SERVICE)
    yield broker
    await asyncio.to_thread(broker.stop)


@pytest.fixture
def tls_settings(settings, tls_broker):
    """The service on the certificate-only listener with its client certificate; the admin on the TLS one."""
    return settings.replace(
        mqtt_url=tls_broker.url(*SERVICE, port=tls_broker.mtls_port), mqtt_admin_url=tls_broker.url(*ADMIN),
        mqtt_ca_file=str(tls_broker.ca.pem), mqtt_cert_file=str(tls_broker.client_cert),
        mqtt_key_file=str(tls_broker.client_key), mqtt_client_id=f"alertd-tls-{uuid.uuid4().hex[:8]}",
        mqtt_session_expiry_s=300).validate()


async def test_presses_and_unit_dispatches_end_to_end_over_tls(tls_settings, tls_broker, clock, db):
    await seed_responders(db)
    person = await enrol(db, clock.now(), home=offset(1))
    accounts = broker_accounts(tls_settings)  # the dynamic-security admin, over TLS
    creds = await provisioning.provision_button(db, accounts, clock.now(), person_id=person.person_id)
    unit = await provisioning.provision_unit(db, accounts, clock.now(), "mu-1")
    at = lambda: clock.now().timestamp()  # noqa: E731
    async with running_service(tls_settings, clock) as service:
        button = Button(tls_broker.url(creds.username, creds.password), creds.device_id, creds.hmac_secret,
                        clock=at, ca_file=str(tls_broker.ca.pem))
        terminal = Unit(tls_broker.url(unit.username, unit.password), "mu-1", clock=at,
                        ca_file=str(tls_broker.ca.pem))
        await asyncio.to_thread(button.connect)
        await asyncio.to_thread(terminal.connect)
        try:
            seq = await asyncio.to_thread(button.press, loc=(*offset(0.5), 10.0), wait_s=20)
            alert = await db.fetchrow("SELECT id, channel, location_source FROM alerts WHERE device_id = $1",
                                      creds.device_id)
            assert seq == 1 and alert["channel"] == "button" and alert["location_source"] == "gps"
            dispatch = await db.fetchrow("SELECT id, code FROM dispatches WHERE alert_id = $1 "
                                         "AND responder_id = 'mu-1'", alert["id"])
            await service.app[ENGINE].run_once()
            assert await eventually(lambda: _now(terminal.dispatches), timeout=20)
            assert terminal.dispatches[0]["code"] == dispatch["code"]
            assert await asyncio.to_thread(terminal.ack, str(dispatch["id"])) == "Success"
            assert await eventually(lambda: db.fetchval(
                "SELECT status = 'acknowledged' FROM dispatches WHERE id = $1", dispatch["id"]))
            # an app alert dispatched to the unit reaches it over TLS as well
            resp = await service.post("/v1/alerts", json={"client_alert_id": "tls", "location": fix(*offset(3))},
                                      headers=bearer(device_token(tls_settings, await enrol(db, clock.now()),
                                                                  clock.now())))
            assert resp.status == 201
            await service.app[ENGINE].run_once()
            assert await eventually(lambda: _now(len(terminal.dispatches) == 2), timeout=20)
        finally:
            button.close()
            terminal.close()


# paho leaves the socket of a failed TLS handshake for the garbage collector (its reconnect loop)
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
async def test_the_broker_refuses_plain_connections_and_other_cas(tls_broker):
    creds = (SERVICE[0], SERVICE[1])
    with pytest.raises(Refused):  # someone else's CA: the simulator will not talk to this broker
        await asyncio.to_thread(Button(tls_broker.url(*creds), "x", "00" * 32, ca_file=str(tls_broker.other_ca.pem))
                                .conn.connect, 1.5)
    with pytest.raises(Refused):  # plain MQTT on the TLS port
        await asyncio.to_thread(Button(f"mqtt://{creds[0]}:{creds[1]}@127.0.0.1:{tls_broker.port}", "x", "00" * 32)
                                .conn.connect, 1.5)
    with pytest.raises(Refused):  # the service's port wants a client certificate
        await asyncio.to_thread(Button(tls_broker.url(*creds, port=tls_broker.mtls_port), "x", "00" * 32,
                                       ca_file=str(tls_broker.ca.pem)).conn.connect, 1.5)


def _handshake(context: ssl.SSLContext, port: int) -> str:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
        with context.wrap_socket(raw, server_hostname="127.0.0.1") as tls:
            return tls.version()


async def test_the_firmware_pins_the_brokers_ca(tls_broker):
    """clients/button's TLS context (the same code runs on MicroPython) accepts only the CA flashed with it."""
    pinned = firmware.tls_context(ssl, tls_broker.ca.der)
    assert await asyncio.to_thread(_handshake, pinned, tls_broker.port) in ("TLSv1.2", "TLSv1.3")
    wrong = firmware.tls_context(ssl, tls_broker.other_ca.der)
    with pytest.raises(ssl.SSLCertVerificationError):
        await asyncio.to_thread(_handshake, wrong, tls_broker.port)


async def _now(value):
    return value
