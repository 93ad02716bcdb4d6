"""Gateways (a Traccar server forwarding its trackers' events) and the trackers mapped to people.

A gateway's bearer token is 32 random bytes, shown once; only its SHA-256 is kept. A token is found by its hash
(an index lookup that reveals nothing about near misses) and the stored hash is compared again in constant time.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import datetime

import asyncpg

from alertd.core.model import Conflict, Invalid, NotFound
from alertd.store import queries

TOKEN_PREFIX = "gw_"
NAME = re.compile(r"^[a-z0-9][a-z0-9._-]{0,62}$")
UNIQUE_ID = re.compile(r"^[\x21-\x7e]{1,128}$")  # Traccar's uniqueId: an IMEI or any printable ASCII identifier


@dataclass(frozen=True)
class Gateway:
    id: int
    name: str
    revoked: bool


def token_hash(token: str) -> bytes:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).digest()


def new_token() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def _row(row) -> dict:
    return {"name": row["name"], "kind": row["kind"], "created_at": row["created_at"].isoformat(),
            "revoked_at": row["revoked_at"].isoformat() if row["revoked_at"] else None}


async def authenticate(conn: asyncpg.Connection, token: str) -> Gateway | None:
    """The gateway this bearer token belongs to (revoked ones included, flagged), or None."""
    digest = token_hash(token)
    row = await conn.fetchrow(queries.get_gateway_by_token, digest)
    if row is None or not hmac.compare_digest(bytes(row["token_sha256"]), digest):
        return None
    return Gateway(id=row["id"], name=row["name"], revoked=row["revoked_at"] is not None)


async def add(conn: asyncpg.Connection, now: datetime, name: str) -> dict:
    """A new gateway and its token (shown only here, never again)."""
    if not NAME.match(name):
        raise Invalid("a gateway name is 1 to 63 lowercase letters, digits, '.', '_' or '-'")
    token = new_token()
    row = await conn.fetchrow(queries.insert_gateway, name, token_hash(token), now)
    if row is None:
        raise Conflict(f"a gateway named {name} exists already")
    return {**_row(row), "token": token,
            "header": f"Authorization: Bearer {token}"}


async def list_all(conn: asyncpg.Connection) -> list[dict]:
    return [{**_row(r), "trackers": r["trackers"]} for r in await conn.fetch(queries.list_gateways)]


async def revoke(conn: asyncpg.Connection, now: datetime, name: str) -> dict:
    row = await conn.fetchrow(queries.revoke_gateway, name, now)
    if row is None:
        if await conn.fetchrow(queries.get_gateway_by_name, name) is None:
            raise NotFound(f"no gateway named {name}")
        raise Conflict(f"gateway {name} is revoked already")
    return _row(row)


async def add_tracker(conn: asyncpg.Connection, now: datetime, *, person_id: str, unique_id: str,
                      gateway: str | None = None) -> dict:
    """Map a tracker (Traccar's uniqueId) to a person; bound to one gateway when `gateway` is named."""
    if not UNIQUE_ID.match(unique_id):
        raise Invalid("a tracker's unique id is 1 to 128 printable ASCII characters, as Traccar shows it")
    if await conn.fetchval(queries.get_person, person_id) is None:
        raise NotFound(f"no person {person_id}")
    gateway_id = None
    if gateway is not None:
        row = await conn.fetchrow(queries.get_gateway_by_name, gateway)
        if row is None:
            raise NotFound(f"no gateway named {gateway}")
        gateway_id = row["id"]
    row = await conn.fetchrow(queries.upsert_tracker, unique_id, person_id, gateway_id, now)
    return {"unique_id": row["unique_id"], "person_id": row["person_id"], "gateway": gateway,
            "added_at": row["added_at"].isoformat(), "new": row["inserted"]}


async def list_trackers(conn: asyncpg.Connection, *, removed: bool = False) -> list[dict]:
    return [{"unique_id": r["unique_id"], "person_id": r["person_id"], "gateway": r["gateway"],
             "added_at": r["added_at"].isoformat(),
             "removed_at": r["removed_at"].isoformat() if r["removed_at"] else None}
            for r in await conn.fetch(queries.list_trackers, removed)]


async def remove_tracker(conn: asyncpg.Connection, now: datetime, unique_id: str) -> dict:
    row = await conn.fetchrow(queries.remove_tracker, unique_id, now)
    if row is None:
        raise NotFound(f"no tracker {unique_id} in use")
    return {"unique_id": row["unique_id"], "person_id": row["person_id"], "removed": True}
