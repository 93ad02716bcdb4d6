"""One-time enrolment codes: an advocate hands one over, the phone app redeems it for its device token."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

import asyncpg

from alertd import auth
from alertd.core.model import NotFound
from alertd.settings import Settings
from alertd.store import queries

# 27 letters and digits nobody confuses when read aloud or typed (no 0/O, 1/I/L, 2/Z, 5/S).
ALPHABET = "346789ABCDEFGHJKMNPQRTUVWXY"
LENGTH = 8  # 27**8 ~ 2.8e11: at a few thousand guesses a second, a 15-minute code is out of reach
DEFAULT_TTL_S = 15 * 60
DEVICE_TOKEN_TTL_S = 365 * 86400


@dataclass(frozen=True)
class EnrolmentCode:
    code: str  # shown as ABCD-EFGH; only its HMAC is stored
    device_id: str
    expires_at: datetime


@dataclass(frozen=True)
class Redeemed:
    person_id: str
    device_id: str
    token: str


def normalise(code: str) -> str:
    """Upper case without spaces or dashes, so 'abcd efgh' and 'ABCD-EFGH' are the same code."""
    return "".join(c for c in code.upper() if c not in " -")


def code_hash(settings: Settings, code: str) -> str:
    return hmac.new(settings.jwt_secret.encode(), normalise(code).encode(), hashlib.sha256).hexdigest()


async def issue_code(conn: asyncpg.Connection, settings: Settings, now: datetime, *, person_id: str,
                     device_id: str | None = None, ttl_s: int = DEFAULT_TTL_S) -> EnrolmentCode:
    """A fresh code for the person's phone device; any older unused code of that device stops working."""
    if ttl_s <= 0:
        raise ValueError("the code's lifetime must be positive")
    async with conn.transaction():
        if device_id is None:
            device_id = await conn.fetchval(queries.get_phone_device_of_person, person_id)
            if device_id is None:
                raise NotFound("that person has no enrolled phone app device")
        raw = "".join(secrets.choice(ALPHABET) for _ in range(LENGTH))
        expires_at = now + timedelta(seconds=ttl_s)
        await conn.execute(queries.drop_unused_enrolment_codes, device_id)
        await conn.execute(queries.insert_enrolment_code, code_hash(settings, raw), person_id, device_id, now,
                           expires_at)
    return EnrolmentCode(f"{raw[:4]}-{raw[4:]}", device_id, expires_at)


async def redeem(conn: asyncpg.Connection, settings: Settings, now: datetime, code: str) -> Redeemed | None:
    """The device token for a live, unused code (which is used up by this call), or None."""
    if len(normalise(code)) != LENGTH:
        return None
    row = await conn.fetchrow(queries.redeem_enrolment_code, code_hash(settings, code), now)
    if row is None:
        return None
    token = auth.issue(settings, role="device", sub=row["device_id"], ttl_s=DEVICE_TOKEN_TTL_S, now=now,
                       person_id=row["person_id"], device_id=row["device_id"])
    return Redeemed(row["person_id"], row["device_id"], token)
