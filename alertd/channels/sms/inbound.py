"""What an inbound SMS means: a responder's acknowledgement, a survivor's alert or addition, or triage.

Each MessageSid is acted on once (Twilio retries webhooks). An alert raised by SMS carries its MessageSid and
commits with its MessageSid record, and a person has at most one open SMS alert (both unique in the database), so
a retried or concurrent SMS can never make a second alert: it finds the first and adds to it.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import timedelta

import asyncpg

from alertd.channels.sms.location import SmsLocation, locate_text
from alertd.channels.sms.templates import render
from alertd.channels.sms.text import contains_phrase, parse_ack, pin_only, timer_minutes
from alertd.context import Context
from alertd.core.ids import new_id
from alertd.core.model import Conflict, DomainError
from alertd.service import dispatch_actions, intake, timers
from alertd.service.people import normalise_phrase
from alertd.service.timeline import security_event, tell_supervisor
from alertd.store import queries

NOTE_CHARS = 320  # what of her message the timeline keeps (two segments' worth)
SOURCE = "sms:inbound"
# A PIN texted this long after her timer was checked in or ran out is still taken for that timer (a retry, or the
# duress PIN after it fired), never kept as a note.
PIN_AFTER_TIMER = timedelta(hours=1)


@dataclass(frozen=True)
class InboundSms:
    sid: str
    sender: str  # E.164, as Twilio gives it
    body: str


@dataclass(frozen=True)
class Outcome:
    """What happened, and the text to send back (None: the empty reply; only responders ever get text)."""

    kind: str  # duplicate, ack, responder, ignored, raised, added, triage, timer_started, timer_pin
    reply: str | None = None
    alert_id: str | None = None


@dataclass(frozen=True)
class Sender:
    """What the database knows about the MessageSid and the number, read in one round trip."""

    seen: bool
    responder_ids: list[str]
    responder_language: str | None
    person_id: str | None  # enrolled
    code_phrase: str | None
    contact_person_id: str | None  # not enrolled, wrote before
    open_alert_id: object | None  # her open alert, enrolled or not

    @classmethod
    def from_row(cls, row) -> Sender:
        return cls(**{k: row[k] for k in cls.__dataclass_fields__})


async def handle(pool: asyncpg.Pool, ctx: Context, sms: InboundSms) -> Outcome:
    """Act on one inbound SMS; the caller answers Twilio after this returns (everything is committed)."""
    found = locate_text(sms.body, ctx.clock.now())
    code = parse_ack(sms.body)
    async with pool.acquire() as conn:
        sender = Sender.from_row(await conn.fetchrow(queries.get_sms_sender, sms.sid, sms.sender))
        if sender.seen:
            return Outcome("duplicate")
        if (sender.open_alert_id is not None and found.location is None and not (sender.responder_ids and code)
                and not (sender.person_id is not None and _timer_form(sms, sender))):
            # The common case while an alert is open: one more message with no location, only a note to add.
            recorded = await conn.fetchval(queries.record_inbound_sms_with_note, sms.sid, ctx.clock.now(), "added",
                                           sender.open_alert_id, _note(sms, found))
            return Outcome("added" if recorded else "duplicate", alert_id=str(sender.open_alert_id))
    if sender.responder_ids and code:
        return await _acknowledge(pool, ctx, sms, code, sender)
    if sender.person_id is not None:
        return await _from_person(pool, ctx, sms, sender, found)
    if sender.responder_ids:
        await _record(pool, ctx, sms, "responder")
        return Outcome("responder", render("ack_help", {}, sender.responder_language))
    if code:
        await _code_from_stranger(pool, ctx, code)
    return await _from_stranger(pool, ctx, sms, sender, found)


async def _acknowledge(pool, ctx: Context, sms: InboundSms, code: str, sender: Sender) -> Outcome:
    """A code from a responder's registered phone acknowledges that responder's dispatch, and nothing else."""
    async with pool.acquire() as conn:
        dispatch = await conn.fetchrow(queries.get_dispatch_by_code, code)
        mine = dispatch is not None and dispatch["responder_id"] in sender.responder_ids
        language = await conn.fetchval(queries.get_responder_language, dispatch["responder_id"]) if mine else None
    if not mine:
        await _record(pool, ctx, sms, "responder")
        return Outcome("responder", render("ack_unknown", {"code": code}, sender.responder_language))
    responder_id = dispatch["responder_id"]
    try:
        await dispatch_actions.acknowledge(pool, ctx, str(dispatch["id"]), responder_id=responder_id,
                                  actor=f"sms:{responder_id}", via="sms")
    except Conflict:
        await _record(pool, ctx, sms, "responder", dispatch_id=dispatch["id"])
        return Outcome("responder", render("ack_inactive", {"code": code}, language))
    await _record(pool, ctx, sms, "ack", dispatch_id=dispatch["id"])
    return Outcome("ack", render("ack_ok", {"code": code}, language))


async def _code_from_stranger(pool, ctx: Context, code: str) -> None:
    """A real dispatch code from a number no responder registered: acknowledge nothing, record it."""
    async with pool.acquire() as conn:
        dispatch = await conn.fetchrow(queries.get_dispatch_by_code, code)
        if dispatch is not None:
            await security_event(conn, ctx.clock.now(), "sms_ack_unregistered", SOURCE,
                                 dispatch_id=str(dispatch["id"]))


def _timer_form(sms: InboundSms, sender: Sender) -> bool:
    """Whether an enrolled person's message may be about a timer: only a PIN, or `<code phrase> <minutes>`."""
    return pin_only(sms.body) is not None or (
        bool(sender.code_phrase) and timer_minutes(normalise_phrase(sms.body), sender.code_phrase or "") is not None)


async def _from_person(pool, ctx: Context, sms: InboundSms, sender: Sender, found: SmsLocation) -> Outcome:
    """An enrolled person: with a code phrase only a message holding it raises an alert.

    Two exceptions: while her alert is open any message adds to it, and an AML message raises an alert without
    the phrase — nobody types AML by accident; it is her phone's (or the phone app's) emergency location.
    Timers come first: `<code phrase> <minutes>` starts one, and a message that is only a PIN checks in her timer
    (see `_timer`); both are answered with nothing.
    """
    assert sender.person_id is not None  # called only for an enrolled number
    if (timed := await _timer(pool, ctx, sms, sender.person_id, sender.code_phrase)) is not None:
        return timed
    phrase = sender.code_phrase
    if (phrase and sender.open_alert_id is None and not found.aml
            and not contains_phrase(normalise_phrase(sms.body), phrase)):
        await _record(pool, ctx, sms, "ignored")
        return Outcome("ignored")
    return await _alert_or_add(pool, ctx, sms, sender.person_id, sender.open_alert_id, found, verified=True)


async def _timer(pool, ctx: Context, sms: InboundSms, person_id: str, phrase: str | None) -> Outcome | None:
    """`<code phrase> <minutes>` starts a timer (its MessageSid is its key: a retried webhook finds it). A message
    that is only a PIN checks in her running timer (or, within PIN_AFTER_TIMER, the one she last checked in or that
    last ran out): the real PIN checks in, the duress PIN seems to and raises a duress alert, a wrong one is refused
    and recorded. The PIN itself is never kept. None: not about a timer; the message means what it always did."""
    if phrase and (minutes := timer_minutes(normalise_phrase(sms.body), phrase)) is not None:
        await timers.start(pool, ctx, person_id=person_id, device_id=None, channel="sms", client_timer_id=sms.sid,
                           duration_s=minutes * 60)
        await _record(pool, ctx, sms, "timer_started")
        return Outcome("timer_started")
    if (pin := pin_only(sms.body)) is None:
        return None
    async with pool.acquire() as conn:
        timer_id = await conn.fetchval(queries.find_sms_timer, person_id, ctx.clock.now() - PIN_AFTER_TIMER)
    if timer_id is None:
        return None
    try:
        await timers.check_in(pool, ctx, timer_id=str(timer_id), person_id=person_id, pin=pin, source=SOURCE)
    except DomainError:  # a wrong PIN (recorded by the service) or a timer already run out: she hears nothing
        pass
    await _record(pool, ctx, sms, "timer_pin")
    return Outcome("timer_pin")


async def _from_stranger(pool, ctx: Context, sms: InboundSms, sender: Sender, found: SmsLocation) -> Outcome:
    """A number nobody enrolled: AML or coordinates raise an unverified alert; anything else goes to triage."""
    if sender.open_alert_id is None and not found.aml and found.location is None:
        return await _triage(pool, ctx, sms)
    person_id = sender.contact_person_id or await _stranger(pool, ctx, sms.sender)
    return await _alert_or_add(pool, ctx, sms, person_id, sender.open_alert_id, found, verified=False)


async def _stranger(pool, ctx: Context, phone: str) -> str:
    """The pseudonymous person of a number that is not enrolled, created on its first alert."""
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute(queries.lock_sms_contact, phone)
        person_id = await conn.fetchval(queries.get_sms_contact_person, phone)
        if person_id is None:
            person_id = new_id("P-")
            await conn.execute(queries.insert_sms_stranger, person_id)
            await conn.execute(queries.insert_sms_contact, phone, person_id, ctx.clock.now())
        return person_id


async def _alert_or_add(pool, ctx: Context, sms: InboundSms, person_id: str, open_alert_id, found: SmsLocation,
                        *, verified: bool) -> Outcome:
    """Add to her open alert, or raise one; losing a race to another SMS of hers turns into adding to its alert."""
    for _ in range(3):
        if open_alert_id is not None:
            return await _add(pool, ctx, sms, person_id, open_alert_id, found)
        try:
            alert_id, outcome = await _raise(pool, ctx, sms, person_id, found, verified=verified)
        except asyncpg.UniqueViolationError as exc:
            if exc.constraint_name == "alerts_sms_message":  # the same MessageSid raced in: one alert stands
                return Outcome("duplicate")
            # another SMS of hers raised an alert a moment ago: add to that one
            async with pool.acquire() as conn:
                open_alert_id = await conn.fetchval(queries.get_open_alert_of_person, person_id)
            continue
        return Outcome(outcome, alert_id=alert_id)
    raise RuntimeError("could not raise or find the open SMS alert")


async def _raise(pool, ctx: Context, sms: InboundSms, person_id: str, found: SmsLocation, *,
                 verified: bool) -> tuple[str, str]:
    """One transaction: the alert (carrying its MessageSid), its fix, located and dispatched by the core, and the
    MessageSid record with her message as the first note. One commit, so a retry finds all of it or none.
    An alert of hers from another channel raised a moment ago makes this one a repeat of it: "added".
    Returns the alert's id and what happened ("raised" or "added")."""
    async with pool.acquire() as conn, conn.transaction():
        now = ctx.clock.now()
        # The MessageSid is the client_alert_id: a second copy of this SMS violates alerts_sms_message.
        raised = await intake.create_alert(conn, ctx, now, person_id=person_id, device_id=None, channel="sms",
                                           client_alert_id=sms.sid, triggered_at=now, location=found.location,
                                           verified=verified)
        outcome = "raised" if raised.created else "added"
        await conn.fetchval(queries.record_inbound_sms_with_note, sms.sid, now, outcome, uuid.UUID(raised.alert_id),
                            _note(sms, found))
    return raised.alert_id, outcome


async def _add(pool, ctx: Context, sms: InboundSms, person_id: str, alert_id, found: SmsLocation) -> Outcome:
    """A further SMS while her alert is open: its location joins the trail, its text becomes a note."""
    if found.location is not None:
        try:
            await intake.add_locations(pool, ctx, alert_id=str(alert_id), person_id=person_id,
                                       fixes=[found.location])
        except Conflict:
            pass  # closed a moment ago; the note still records what she sent
    if not await _record_note(pool, ctx, sms, "added", alert_id, found):
        return Outcome("duplicate")
    return Outcome("added", alert_id=str(alert_id))


def _note(sms: InboundSms, found: SmsLocation) -> dict:
    return {"note": sms.body[:NOTE_CHARS], "location_form": found.form, "flags": list(found.flags)}


async def _record_note(pool, ctx: Context, sms: InboundSms, outcome: str, alert_id, found: SmsLocation) -> bool:
    """Record the MessageSid and her message as a note on the alert, together; False if already recorded."""
    async with pool.acquire() as conn:
        return await conn.fetchval(queries.record_inbound_sms_with_note, sms.sid, ctx.clock.now(), outcome,
                                   uuid.UUID(str(alert_id)), _note(sms, found)) is not None


async def _triage(pool, ctx: Context, sms: InboundSms) -> Outcome:
    """Nothing to dispatch on from a number nobody enrolled: the duty desk reads it and decides."""
    now = ctx.clock.now()
    async with pool.acquire() as conn, conn.transaction():
        if await conn.fetchval(queries.record_inbound_sms, sms.sid, now, "triage", None, None) is None:
            return Outcome("duplicate")
        triage_id = await conn.fetchval(queries.insert_sms_triage, sms.sid, sms.sender, sms.body, now)
        await tell_supervisor(conn, now, None, "sms_triage", {"triage_id": triage_id})
    return Outcome("triage")


async def _record(pool, ctx: Context, sms: InboundSms, outcome: str, *, dispatch_id=None) -> None:
    async with pool.acquire() as conn:
        await conn.fetchval(queries.record_inbound_sms, sms.sid, ctx.clock.now(), outcome, None, dispatch_id)
