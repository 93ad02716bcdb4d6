"""Proofs that her channels work: a button's test press, the phone app's self-test, a confirmation SMS delivered.

Nothing here raises an alert or dispatches anyone. Each proof is recorded once (the same test again is the same
proof), her caseworker's console is told that the channel works (a pseudonymous id, never her name), and the
console shows per person when each of her channels last worked.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

import asyncpg

from alertd.context import Context
from alertd.service.timeline import CONSOLE, SMS, Batch
from alertd.store import queries

CHANNEL_PROVEN = "channel_proven"  # the console notice: "her button (app, SMS) works"
SELF_TEST_SMS = "self_test"        # the neutral confirmation text she opted in to
PERSON = "person:"                 # an outbox recipient that is her own phone, not a responder
CHANNELS = ("button", "app", "sms")
CASELOAD_MAX = 200


@dataclass(frozen=True)
class Proof:
    test_id: str
    at: datetime
    fresh: bool  # False: this test was recorded before (a retry); nothing more is sent for it


async def record(conn: asyncpg.Connection, now: datetime, *, person_id: str, channel: str, device_id: str | None,
                 client_test_id: str) -> Proof:
    """Record one proof, once; the same test again returns the first."""
    for _ in range(2):  # a concurrent twin committed between our insert and our read: the next statement sees it
        row = await conn.fetchrow(queries.record_channel_test, uuid.uuid4(), person_id, device_id, channel,
                                  client_test_id, now)
        if row is not None:
            return Proof(str(row["id"]), row["at"], row["fresh"])
    raise RuntimeError("channel test neither recorded nor found")


def tell_caseworker(batch: Batch, *, caseworker_id: str | None, region: str | None, person_id: str, channel: str,
                    device_id: str | None) -> None:
    """Her caseworker's console (without one, her region's supervisors): this channel of hers works."""
    recipient = caseworker_id or f"supervisor:{region or 'unknown'}"
    batch.message(CONSOLE, recipient, CHANNEL_PROVEN,
                  {"channel": channel, "device_id": device_id, "person_id": person_id})


async def app_self_test(pool: asyncpg.Pool, ctx: Context, *, person_id: str, device_id: str, client_test_id: str,
                        language: str | None = None) -> Proof:
    """The phone app proved its path: recorded, her caseworker told, and (only if she opted in) a neutral SMS."""
    now = ctx.clock.now()
    async with pool.acquire() as conn, conn.transaction():
        proof = await record(conn, now, person_id=person_id, channel="app", device_id=device_id,
                             client_test_id=client_test_id)
        if proof.fresh:
            who = await conn.fetchrow(queries.get_person_caseworker, person_id)
            batch = Batch(now)
            tell_caseworker(batch, caseworker_id=who["caseworker_id"], region=who["region"], person_id=person_id,
                            channel="app", device_id=device_id)
            if await conn.fetchval(queries.get_person_sms_contact, person_id) is not None:  # opted in, has a number
                batch.message(SMS, PERSON + person_id, SELF_TEST_SMS, {"language": language or "ru"})
            await batch.flush(conn)
    return proof


async def sms_delivered(conn: asyncpg.Connection, now: datetime, *, recipient: str, outbox_id: int) -> bool:
    """Her confirmation SMS was delivered: SMS reaches her phone. False for any other message."""
    if not recipient.startswith(PERSON):
        return False
    person_id = recipient.removeprefix(PERSON)
    proof = await record(conn, now, person_id=person_id, channel="sms", device_id=None,
                         client_test_id=f"outbox:{outbox_id}")
    if proof.fresh:
        who = await conn.fetchrow(queries.get_person_caseworker, person_id)
        if who is not None:
            batch = Batch(now)
            tell_caseworker(batch, caseworker_id=who["caseworker_id"], region=who["region"], person_id=person_id,
                            channel="sms", device_id=None)
            await batch.flush(conn)
    return True


def _proofs(rows) -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = {}
    for r in rows:
        out.setdefault(r["person_id"], []).append({
            "channel": r["channel"], "device_id": r["device_id"],
            "last_proven_at": r["last_proven_at"].isoformat() if r["last_proven_at"] else None})
    return out


async def of_person(conn: asyncpg.Connection, person_id: str) -> list[dict]:
    """Each of her channels (every live button and phone app, SMS if she has a number) and when it last worked."""
    return _proofs(await conn.fetch(queries.list_channel_proofs, [person_id])).get(person_id, [])


async def caseload(pool: asyncpg.Pool, responder_id: str) -> list[dict]:
    """The people whose buttons name this responder as caseworker, each with her channels' last proofs."""
    async with pool.acquire() as conn:
        people = [r["person_id"] for r in await conn.fetch(queries.list_caseworker_people, responder_id, CASELOAD_MAX)]
        proofs = _proofs(await conn.fetch(queries.list_channel_proofs, people)) if people else {}
    return [{"person_id": p, "channels": proofs.get(p, [])} for p in people]
