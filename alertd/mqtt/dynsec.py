"""Broker accounts through Mosquitto's dynamic-security plugin over $CONTROL: one client and one role per device.

Mosquitto 2.0's dynamic-security ACLs do not expand %u/%c, so each button and unit gets its own role whose
ACLs name its own topics. Changes take effect at once; deleting a client disconnects it.
"""

from __future__ import annotations

import asyncio
import json
import ssl
import threading
import uuid
from dataclasses import dataclass, field

import paho.mqtt.client as mqtt

from alertd.channels.buttons.protocol import button_topic
from alertd.channels.mqtt_wire import PREFIX
from alertd.channels.units.protocol import unit_topic
from alertd.service.ports import BrokerAccounts, BrokerError
from alertd.settings import Settings
from alertd.tls import parse_url, secure

CONTROL = "$CONTROL/dynamic-security/v1"


def topics(kind: str, ident: str) -> dict[str, str]:
    """The topics a button or unit terminal is flashed with, by leaf."""
    if kind == "button":
        return {leaf: button_topic(ident, leaf) for leaf in ("press", "heartbeat", "test", "ack")}
    return {leaf: unit_topic(ident, leaf) for leaf in ("location", "dispatch", "ack")}


def broker_accounts(settings: Settings) -> BrokerAccounts:
    """The dynamic-security plugin when an admin account is configured, else the database alone."""
    if not settings.mqtt_admin_url:
        return NoBroker()
    return Dynsec(settings.mqtt_admin_url, tls_context=settings.mqtt_tls_context())


class NoBroker:
    """No admin account configured: credentials live only in the database (EMQX reads them from there)."""

    def topics(self, kind: str, ident: str) -> dict[str, str]:
        return topics(kind, ident)

    async def add_button(self, device_id: str, password: str) -> None:
        return None

    async def add_unit(self, unit_id: str, password: str) -> None:
        return None

    async def set_password(self, username: str, password: str) -> None:
        return None

    async def remove(self, username: str) -> None:
        return None

    async def allow_tests(self, device_ids: list[str]) -> int:
        return 0


def _acl(kind: str, topic: str) -> dict:
    return {"acltype": kind, "topic": topic, "priority": 0, "allow": True}


def button_acls(device_id: str) -> list[dict]:
    return [_acl("publishClientSend", button_topic(device_id, "press")),
            _acl("publishClientSend", button_topic(device_id, "heartbeat")),
            _acl("publishClientSend", button_topic(device_id, "test")),
            _acl("subscribeLiteral", button_topic(device_id, "ack"))]


def unit_acls(unit_id: str) -> list[dict]:
    return [_acl("publishClientSend", unit_topic(unit_id, "location")),
            _acl("publishClientSend", unit_topic(unit_id, "ack")),
            _acl("subscribeLiteral", unit_topic(unit_id, "dispatch"))]


def service_acls() -> list[dict]:
    """The service reads what buttons and units send and writes acks and dispatches only."""
    acls = [_acl("subscribePattern", f"$share/alertd/{PREFIX}/{family}/+/{leaf}")
            for family, leaf in (("buttons", "press"), ("buttons", "heartbeat"), ("buttons", "test"),
                                 ("units", "location"), ("units", "ack"))]
    acls += [_acl("subscribePattern", f"{PREFIX}/+/+/+"),
             _acl("publishClientSend", f"{PREFIX}/buttons/+/ack"),
             _acl("publishClientSend", f"{PREFIX}/units/+/dispatch")]
    return acls


@dataclass(frozen=True)
class Account:
    """A broker client and the role of its own that carries its ACLs."""

    username: str
    password: str = field(repr=False)
    role: str
    acls: list[dict]
    clientid: str | None  # the only client id it may connect with; None: any

    @classmethod
    def button(cls, device_id: str, password: str) -> Account:
        return cls(device_id, password, f"button-{device_id}", button_acls(device_id), device_id)

    @classmethod
    def unit(cls, unit_id: str, password: str) -> Account:
        return cls(unit_id, password, f"unit-{unit_id}", unit_acls(unit_id), unit_id)

    @classmethod
    def service(cls, username: str, password: str) -> Account:
        # several instances (and their admin tools) connect under client ids of their own
        return cls(username, password, "alertd-service", service_acls(), None)


class Dynsec:
    """Sends dynamic-security commands with the admin account of `admin_url` (mqtt[s]://user:pass@host:port);
    an mqtts:// URL connects over TLS with `tls_context` (the service's: its CA pinned)."""

    def __init__(self, admin_url: str, timeout: float = 5.0, tls_context: ssl.SSLContext | None = None) -> None:
        try:
            self.host, self.port, username, password, self.tls = parse_url(admin_url, "the MQTT admin URL")
        except ValueError as exc:
            raise BrokerError(str(exc)) from None
        if not username:
            raise BrokerError("the MQTT admin URL must be mqtt[s]://user:password@host:port")
        self.username, self.password = username, password or ""
        self.tls_context = tls_context
        self.timeout = timeout

    def topics(self, kind: str, ident: str) -> dict[str, str]:
        return topics(kind, ident)

    async def add_button(self, device_id: str, password: str) -> None:
        await self.replace([Account.button(device_id, password)])

    async def add_unit(self, unit_id: str, password: str) -> None:
        await self.replace([Account.unit(unit_id, password)])

    async def add_service(self, username: str, password: str) -> None:
        await self.replace([Account.service(username, password)])

    async def set_password(self, username: str, password: str) -> None:
        await self.run([{"command": "setClientPassword", "username": username, "password": password}])

    async def allow_tests(self, device_ids: list[str]) -> int:
        """Add the test topic to each button's role (removed first, so running it twice changes nothing); a button
        without a role on this broker is skipped."""
        changed = 0
        for device_id in device_ids:
            role, topic = f"button-{device_id}", button_topic(device_id, "test")
            await self.run([{"command": "removeRoleACL", "rolename": role, "acltype": "publishClientSend",
                             "topic": topic}], missing_ok=True)
            answer = await self.run([{"command": "addRoleACL", "rolename": role, **_acl("publishClientSend", topic)}],
                                    missing_ok=True)
            changed += not any(r.get("error") for r in answer)
        return changed

    async def remove(self, username: str) -> None:
        """Delete the client (the broker disconnects it at once) and its role."""
        await self.run([{"command": "deleteClient", "username": username}], missing_ok=True)
        for role in (f"button-{username}", f"unit-{username}"):
            await self.run([{"command": "deleteRole", "rolename": role}], missing_ok=True)

    async def replace(self, accounts: list[Account]) -> None:
        await asyncio.get_running_loop().run_in_executor(None, self.replace_now, accounts)

    def replace_now(self, accounts: list[Account]) -> None:
        """Create these accounts, replacing any of the same name, so the broker ends up as the caller says
        (two round trips however many accounts: `alertd demo` sets up all its devices at each start)."""
        gone = [c for a in accounts for c in ({"command": "deleteClient", "username": a.username},
                                               {"command": "deleteRole", "rolename": a.role})]
        self._run(gone, missing_ok=True)
        made = []
        for a in accounts:
            client = {"command": "createClient", "username": a.username, "password": a.password,
                      "roles": [{"rolename": a.role}]}
            if a.clientid:
                client["clientid"] = a.clientid  # a device connects under its own id only
            made += [{"command": "createRole", "rolename": a.role, "acls": a.acls}, client]
        self._run(made, missing_ok=False)

    async def run(self, commands: list[dict], *, missing_ok: bool = False) -> list[dict]:
        return await asyncio.get_running_loop().run_in_executor(None, self._run, commands, missing_ok)

    def _run(self, commands: list[dict], missing_ok: bool) -> list[dict]:
        tag = uuid.uuid4().hex
        for i, command in enumerate(commands):
            command["correlationData"] = f"{tag}-{i}"
        answered = threading.Event()
        subscribed = threading.Event()
        responses: list[dict] = []
        failure: list[str] = []
        client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"alertd-admin-{tag[:10]}",
                             protocol=mqtt.MQTTv311)
        client.username_pw_set(self.username, self.password)
        secure(client, self.tls, self.tls_context)

        def on_connect(c, _u, _f, reason, _p):
            if reason.is_failure:
                failure.append(f"admin connection refused: {reason}")
                answered.set()
                return
            c.subscribe(f"{CONTROL}/response", qos=1)

        def on_message(_c, _u, msg):
            for r in json.loads(msg.payload).get("responses", []):
                if str(r.get("correlationData", "")).startswith(tag):
                    responses.append(r)
            if len(responses) >= len(commands):
                answered.set()

        client.on_connect = on_connect
        client.on_subscribe = lambda *_a: subscribed.set()
        client.on_message = on_message
        try:
            client.connect(self.host, self.port, keepalive=10)
        except (OSError, ssl.SSLError) as exc:
            raise BrokerError(f"cannot reach the broker: {exc}") from None
        client.loop_start()
        try:
            if not subscribed.wait(self.timeout) and not failure:
                raise BrokerError("the broker did not accept the admin subscription")
            if not failure:
                client.publish(CONTROL, json.dumps({"commands": commands}), qos=1)
            if not answered.wait(self.timeout):
                raise BrokerError("the broker did not answer the dynamic-security command")
        finally:
            client.disconnect()
            client.loop_stop()
        if failure:
            raise BrokerError(failure[0])
        for r in responses:
            error = r.get("error")
            if error and not (missing_ok and "not found" in error.lower()):
                raise BrokerError(f"{r.get('command')}: {error}")
        return responses
