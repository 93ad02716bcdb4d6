"""What an inbound SMS means: a responder's acknowledgement, a survivor's alert or addition, or triage.

Each MessageSid is acted on once (Twilio retries webhooks). An alert raised by SMS carries its MessageSid, and a
person has at most one open SMS alert (both unique in the database), so a retried or concurrent SMS can never
make a second alert: it finds the first and adds to it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import asyncpg

from alertd.core.model import Conflict
from alertd.core.sms_location import SmsLocation, locate_text
from alertd.core.sms_templates import render
from alertd.core.sms_text import contains_phrase, parse_ack
from alertd.service import intake, officer
from alertd.service.context import Context
from alertd.service.enrolment import new_id, normalise_phrase
from alertd.service.timeline import event, security_event, tell_supervisor
from alertd.store import queries

log = logging.getLogger("alertd.sms")
NOTE_CHARS = 320  # what of her message the timeline keeps (two segments' worth)
SOURCE = "sms:inbound"


@dataclass(frozen=True)
class InboundSms:
    sid: str
    sender: str  # E.164, as Twilio gives it
    body: str


@dataclass(frozen=True)
class Outcome:
    """What happened, and the text to send back (None: the empty reply; only responders ever get text)."""

    kind: str  # duplicate, ack, responder, ignored, raised, added, triage
    reply: str | None = None
    alert_id: str | None = None


async def handle(pool: asyncpg.Pool, ctx: Context, sms: InboundSms) -> Outcome:
    """Act on one inbound SMS; the caller answers Twilio after this returns (everything is committed)."""
    async with pool.acquire() as conn:
        if await conn.fetchrow(queries.sms_seen, sms.sid) is not None:
            return Outcome("duplicate")
        responders = await conn.fetch(queries.sms_responders_by_phone, sms.sender)
        person = await conn.fetchrow(queries.sms_person_by_phone, sms.sender)
    code = parse_ack(sms.body)
    if responders and code:
        return await _acknowledge(pool, ctx, sms, code, responders)
    if person is not None:
        return await _from_person(pool, ctx, sms, person["id"], person["code_phrase"])
    if responders:
        await _record(pool, ctx, sms, "responder")
        return Outcome("responder", render("ack_help", {}, responders[0]["language"]))
    if code:
        await _code_from_stranger(pool, ctx, code)
    return await _from_stranger(pool, ctx, sms)


async def _acknowledge(pool, ctx: Context, sms: InboundSms, code: str, responders) -> Outcome:
    """A code from a responder's registered phone acknowledges that responder's dispatch, and nothing else."""
    language = {r["id"]: r["language"] for r in responders}
    async with pool.acquire() as conn:
        dispatch = await conn.fetchrow(queries.sms_dispatch_by_code, code)
    if dispatch is None or dispatch["responder_id"] not in language:
        await _record(pool, ctx, sms, "responder")
        return Outcome("responder", render("ack_unknown", {"code": code}, responders[0]["language"]))
    responder_id = dispatch["responder_id"]
    try:
        await officer.acknowledge(pool, ctx, str(dispatch["id"]), responder_id=responder_id,
                                  actor=f"sms:{responder_id}", via="sms")
    except Conflict:
        await _record(pool, ctx, sms, "responder", dispatch_id=dispatch["id"])
        return Outcome("responder", render("ack_inactive", {"code": code}, language[responder_id]))
    await _record(pool, ctx, sms, "ack", dispatch_id=dispatch["id"])
    return Outcome("ack", render("ack_ok", {"code": code}, language[responder_id]))


async def _code_from_stranger(pool, ctx: Context, code: str) -> None:
    """A real dispatch code from a number no responder registered: acknowledge nothing, record it."""
    async with pool.acquire() as conn:
        dispatch = await conn.fetchrow(queries.sms_dispatch_by_code, code)
        if dispatch is not None:
            await security_event(conn, ctx.clock.now(), "sms_ack_unregistered", SOURCE,
                                 dispatch_id=str(dispatch["id"]))


async def _from_person(pool, ctx: Context, sms: InboundSms, person_id: str, phrase: str | None) -> Outcome:
    """An enrolled person: with a code phrase only a message holding it raises an alert; an open alert takes any."""
    if phrase and not contains_phrase(normalise_phrase(sms.body), phrase):
        async with pool.acquire() as conn:
            has_open = await conn.fetchrow(queries.sms_open_alert, person_id) is not None
        if not has_open:
            await _record(pool, ctx, sms, "ignored")
            return Outcome("ignored")
    return await _alert_or_add(pool, ctx, sms, person_id, locate_text(sms.body, ctx.clock.now()), verified=True)


async def _from_stranger(pool, ctx: Context, sms: InboundSms) -> Outcome:
    """A number nobody enrolled: AML or coordinates raise an unverified alert; anything else goes to triage."""
    found = locate_text(sms.body, ctx.clock.now())
    async with pool.acquire() as conn:
        person_id = await conn.fetchval(queries.sms_contact_person, sms.sender)
        has_open = person_id is not None and await conn.fetchrow(queries.sms_open_alert, person_id) is not None
    if not has_open and not found.aml and found.location is None:
        return await _triage(pool, ctx, sms)
    if person_id is None:
        person_id = await _stranger(pool, ctx, sms.sender)
    return await _alert_or_add(pool, ctx, sms, person_id, found, verified=False)


async def _stranger(pool, ctx: Context, phone: str) -> str:
    """The pseudonymous person of a number that is not enrolled, created on its first alert."""
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute(queries.sms_lock_contact, phone)
        person_id = await conn.fetchval(queries.sms_contact_person, phone)
        if person_id is None:
            person_id = new_id("P-")
            await conn.execute(queries.sms_insert_stranger, person_id)
            await conn.execute(queries.sms_insert_contact, phone, person_id, ctx.clock.now())
        return person_id


async def _alert_or_add(pool, ctx: Context, sms: InboundSms, person_id: str, found: SmsLocation, *,
                        verified: bool) -> Outcome:
    for _ in range(3):
        async with pool.acquire() as conn:
            open_alert = await conn.fetchrow(queries.sms_open_alert, person_id)
        if open_alert is not None:
            return await _add(pool, ctx, sms, person_id, open_alert["id"], found)
        try:
            raised = await intake.raise_alert(
                pool, ctx, person_id=person_id, device_id=None, channel="sms", client_alert_id=sms.sid,
                triggered_at=ctx.clock.now(), location=found.location, verified=verified)
        except asyncpg.UniqueViolationError as exc:
            if exc.constraint_name == "alerts_sms_message":  # the same MessageSid raced in: one alert stands
                return Outcome("duplicate")
            continue  # another SMS of hers raised an alert a moment ago: add to that one
        async with pool.acquire() as conn, conn.transaction():
            await conn.fetchval(queries.sms_record_inbound, sms.sid, ctx.clock.now(), "raised", raised.alert_id,
                                None)
            await _note(conn, ctx, raised.alert_id, sms, found)
        return Outcome("raised", alert_id=raised.alert_id)
    raise RuntimeError("could not raise or find the open SMS alert")


async def _add(pool, ctx: Context, sms: InboundSms, person_id: str, alert_id, found: SmsLocation) -> Outcome:
    """A further SMS while her alert is open: its location joins the trail, its text becomes a note."""
    if found.location is not None:
        try:
            await intake.add_locations(pool, ctx, alert_id=str(alert_id), person_id=person_id,
                                       fixes=[found.location])
        except Conflict:
            pass  # closed a moment ago; the note still records what she sent
    async with pool.acquire() as conn, conn.transaction():
        if await conn.fetchval(queries.sms_record_inbound, sms.sid, ctx.clock.now(), "added", alert_id,
                               None) is None:
            return Outcome("duplicate")
        await _note(conn, ctx, alert_id, sms, found)
    return Outcome("added", alert_id=str(alert_id))


async def _note(conn, ctx: Context, alert_id, sms: InboundSms, found: SmsLocation) -> None:
    await event(conn, alert_id, ctx.clock.now(), "sms_received", note=sms.body[:NOTE_CHARS],
                location_form=found.form, flags=list(found.flags))


async def _triage(pool, ctx: Context, sms: InboundSms) -> Outcome:
    """Nothing to dispatch on from a number nobody enrolled: the duty desk reads it and decides."""
    now = ctx.clock.now()
    async with pool.acquire() as conn, conn.transaction():
        if await conn.fetchval(queries.sms_record_inbound, sms.sid, now, "triage", None, None) is None:
            return Outcome("duplicate")
        triage_id = await conn.fetchval(queries.sms_insert_triage, sms.sid, sms.sender, sms.body, now)
        await tell_supervisor(conn, now, None, "sms_triage", {"triage_id": triage_id})
    return Outcome("triage")


async def _record(pool, ctx: Context, sms: InboundSms, outcome: str, *, dispatch_id=None) -> None:
    async with pool.acquire() as conn:
        await conn.fetchval(queries.sms_record_inbound, sms.sid, ctx.clock.now(), outcome, None, dispatch_id)
