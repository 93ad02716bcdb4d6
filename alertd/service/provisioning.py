"""Give buttons and unit terminals broker credentials (and buttons an HMAC secret); rotate and revoke them.

The database row is written and the broker told in one transaction: if the broker refuses, nothing is kept.
Secrets are returned once and never logged.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime

import asyncpg

from alertd.core.ids import new_id
from alertd.core.model import NotFound
from alertd.service.ports import BrokerAccounts
from alertd.store import queries


def hash_password(password: str, salt: str) -> str:
    """hex sha256(salt || password): what EMQX calls sha256 with salt_position prefix (passwords are random)."""
    return hashlib.sha256((salt + password).encode()).hexdigest()


def _new_password() -> tuple[str, str, str]:
    password, salt = secrets.token_urlsafe(24), secrets.token_hex(8)
    return password, salt, hash_password(password, salt)


@dataclass(frozen=True)
class Credentials:
    """Everything a device is flashed with; shown once."""

    kind: str
    device_id: str
    username: str
    password: str
    client_id: str
    hmac_secret: str | None
    topics: dict[str, str]
    person_id: str | None = None

    def as_json(self) -> dict:
        return {k: v for k, v in self.__dict__.items() if v is not None}


def _button_credentials(broker: BrokerAccounts, device_id: str, person_id: str, password: str,
                        secret: str) -> Credentials:
    return Credentials("button", device_id, device_id, password, device_id, secret,
                       broker.topics("button", device_id), person_id)


async def provision_button(conn: asyncpg.Connection, broker: BrokerAccounts, now: datetime, *, person_id: str,
                           caseworker_id: str | None = None) -> Credentials:
    """A new button for a person: device row, broker account, HMAC secret."""
    if await conn.fetchrow(queries.get_person, person_id) is None:
        raise NotFound("no such person")
    if caseworker_id is not None and await conn.fetchrow(queries.check_responder, caseworker_id) is None:
        raise NotFound("no such caseworker responder")
    device_id = new_id("B-", 10)
    password, salt, hashed = _new_password()
    secret = secrets.token_hex(32)
    async with conn.transaction():
        await conn.execute(queries.insert_device, device_id, person_id, "button", now)
        await conn.execute(queries.insert_button, device_id, secret, caseworker_id, now)
        await conn.execute(queries.insert_mqtt_account, device_id, "button", device_id, None, hashed, salt, now)
        await broker.add_button(device_id, password)
    return _button_credentials(broker, device_id, person_id, password, secret)


async def rotate_button(conn: asyncpg.Connection, broker: BrokerAccounts, now: datetime,
                        device_id: str) -> Credentials:
    """New MQTT password and HMAC secret for a button; the old ones stop working at once."""
    account = await conn.fetchrow(queries.get_mqtt_account, device_id)
    if account is None or account["kind"] != "button" or account["revoked_at"] is not None:
        raise NotFound("no such button")
    password, salt, hashed = _new_password()
    secret = secrets.token_hex(32)
    async with conn.transaction():
        await conn.execute(queries.set_mqtt_password, device_id, hashed, salt, now)
        await conn.execute(queries.set_button_secret, device_id, secret)
        await broker.set_password(device_id, password)
    person_id = (await conn.fetchrow(queries.get_device_for_token, device_id))["person_id"]
    return _button_credentials(broker, device_id, person_id, password, secret)


async def revoke(conn: asyncpg.Connection, broker: BrokerAccounts, now: datetime, username: str) -> dict:
    """Revoke a button or unit terminal: the database refuses its messages, the broker disconnects it."""
    async with conn.transaction():
        row = await conn.fetchrow(queries.revoke_mqtt_account, username, now)
        if row is None:
            raise NotFound("no such active button or terminal")
        if row["kind"] == "button":
            await conn.execute(queries.revoke_device, username, now)
        await broker.remove(username)
    return {"username": username, "kind": row["kind"], "revoked_at": now.isoformat()}


async def provision_unit(conn: asyncpg.Connection, broker: BrokerAccounts, now: datetime,
                         unit_id: str) -> Credentials:
    """Terminal credentials for a mobile unit (again: new ones, the old stop working)."""
    if await conn.fetchrow(queries.get_mobile_unit, unit_id) is None:
        raise NotFound("no such mobile unit")
    password, salt, hashed = _new_password()
    async with conn.transaction():
        await conn.execute(queries.insert_mqtt_account, unit_id, "unit", None, unit_id, hashed, salt, now)
        await broker.add_unit(unit_id, password)
    return Credentials("unit", unit_id, unit_id, password, unit_id, None,
                       broker.topics("unit", unit_id))
