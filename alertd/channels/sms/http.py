"""Twilio's webhooks (inbound SMS, delivery status), signed with the account's auth token; the SMS triage queue.

The signature covers the URL Twilio called, which is ALERTD_PUBLIC_URL plus the path: behind a proxy the Host
header names the proxy's upstream, not what Twilio signed, so it is never used. During a token rotation either
the current or the secondary token is accepted.
"""

from __future__ import annotations

from aiohttp import web
from multidict import MultiDictProxy
from twilio.request_validator import (
    SIGNATURE_HEADER,
    SIGNATURE_SETTINGS_HEADER,
    RequestValidator,
    get_signature_algorithm,
)
from twilio.twiml.messaging_response import MessagingResponse

from alertd.channels.buttons import sms_fallback as button_sms
from alertd.channels.sms import delivery, inbound
from alertd.core import validate
from alertd.core.validate import Malformed, Text, form_text
from alertd.service.timeline import security_event
from alertd.store import queries
from alertd.store.db import retry_while_unavailable
from alertd.web.errors import ApiError
from alertd.web.keys import CTX, METRICS, POOL
from alertd.web.security import client_address, principal

routes = web.RouteTableDef()
MAX_BODY_CHARS = 1600  # Twilio's own limit for a concatenated SMS
EMPTY_TWIML = str(MessagingResponse())
TRIAGE_PAGE = 200
# The form fields read, through the same rules as every channel's strings; a Body is her words and is never
# refused (what PostgreSQL cannot store in it is replaced by U+FFFD), every other field is.
SID = Text(1, 64)
PHONE = Text(1, 64)
STATUS = Text(1, 32)
ERROR_CODE = Text(0, 16)


def setup(app: web.Application) -> None:
    """Add the webhook routes."""
    app.add_routes(routes)


def twiml(text: str | None) -> web.Response:
    if text is None:
        body = EMPTY_TWIML
    else:
        response = MessagingResponse()
        response.message(text)
        body = str(response)
    return web.Response(text=body, content_type="text/xml")


async def signed_form(request: web.Request) -> MultiDictProxy:
    """The form Twilio posted, or 403 (recorded as a security event) when its signature does not verify."""
    ctx = request.app[CTX]
    settings = ctx.settings
    try:
        form = await request.post()
    except (UnicodeDecodeError, ValueError):
        raise Malformed("body", "is not UTF-8 form data") from None
    signature = request.headers.get(SIGNATURE_HEADER)
    tokens = [t for t in (settings.twilio_auth_token, settings.twilio_auth_token_secondary) if t]
    url = settings.public_url.rstrip("/") + request.path_qs
    algorithm = get_signature_algorithm(request.headers.get(SIGNATURE_SETTINGS_HEADER))
    if not signature:
        reason = "missing"
    elif not tokens:
        reason = "no auth token configured"
    elif any(RequestValidator(t).validate(url, form, signature, algorithm) for t in tokens):
        return form
    else:
        reason = "mismatch"
    async with request.app[POOL].acquire() as conn:
        await security_event(conn, ctx.clock.now(), "bad_signature", f"http:{client_address(request)}",
                             path=request.path, reason=reason)
    raise ApiError(403, "forbidden", "invalid Twilio signature")


def _sid(form) -> str:
    sid = form_text(form, "MessageSid", SID) or form_text(form, "SmsSid", SID)
    if sid is None:
        raise Malformed("MessageSid", "is required")
    return sid


@routes.post("/v1/sms/inbound")
async def sms_inbound(request: web.Request) -> web.Response:
    form = await signed_form(request)
    sid = _sid(form)
    sender = form_text(form, "From", PHONE, required=True)
    body = form.get("Body")
    text = validate.storable_text(body[:MAX_BODY_CHARS]) if isinstance(body, str) else ""
    ctx = request.app[CTX]
    if button_sms.is_button_sms(text):  # a button's press by its second path: checked exactly as over MQTT
        receipt = await retry_while_unavailable(lambda: button_sms.receive(request.app[POOL], ctx, text),
                                                ctx.settings.sms_webhook_hold_s)
        if receipt.ack_seq is not None:
            request.app[METRICS].alerts_received.labels("button_sms", "repeat" if receipt.duplicate else
                                                        "created").inc()
        return twiml(None)
    assert sender is not None  # required=True
    sms = inbound.InboundSms(sid=sid, sender=sender.strip(), body=text)
    # Twilio retries a webhook at most a few times within 15 s in all, so while no database primary answers (a
    # failover) the request is held and tried again here; each MessageSid is acted on once, so a try cut off at
    # its commit is found by the next, never done twice. Past the hold: 503, for Twilio's retry policy.
    outcome = await retry_while_unavailable(lambda: inbound.handle(request.app[POOL], ctx, sms),
                                            ctx.settings.sms_webhook_hold_s)
    if outcome.kind in ("raised", "added", "duplicate"):
        request.app[METRICS].alerts_received.labels("sms", outcome.kind).inc()
    return twiml(outcome.reply)


@routes.post("/v1/sms/status")
async def sms_status(request: web.Request) -> web.Response:
    form = await signed_form(request)
    sid = _sid(form)
    status = form_text(form, "MessageStatus", STATUS) or form_text(form, "SmsStatus", STATUS)
    if status is None:
        raise Malformed("MessageStatus", "is required")
    error_code = form_text(form, "ErrorCode", ERROR_CODE)
    await delivery.record_status(request.app[POOL], request.app[CTX], sid, status.lower(), error_code)
    return twiml(None)


def _triage_id(text: str) -> int | None:
    """A triage id from the path (a bigint), or None for anything else: the same 404 as an unknown one."""
    if not text.isascii() or not text.isdigit() or len(text) > 19:
        return None
    value = int(text)
    return value if 1 <= value < 2**63 else None


@routes.get("/v1/sms/triage")
async def triage_queue(request: web.Request) -> web.Response:
    """The duty desk's queue: messages from numbers nobody enrolled, with nothing to dispatch on (read is audited)."""
    who = await principal(request, "supervisor", "admin")
    ctx = request.app[CTX]
    async with request.app[POOL].acquire() as conn, conn.transaction():
        rows = await conn.fetch(queries.list_open_sms_triage, TRIAGE_PAGE)
        await conn.execute(queries.insert_audit, ctx.clock.now(), who.actor, "read_sms_triage", None,
                           {"items": len(rows)})
    return web.json_response({"items": [
        {"id": r["id"], "phone": r["phone"], "body": r["body"], "received_at": r["received_at"].isoformat()}
        for r in rows]})


@routes.post("/v1/sms/triage/{id}/resolve")
async def triage_resolve(request: web.Request) -> web.Response:
    who = await principal(request, "supervisor", "admin")
    ctx = request.app[CTX]
    triage_id = _triage_id(request.match_info["id"])
    if triage_id is None:
        raise ApiError(404, "not_found", "no such triage message")
    async with request.app[POOL].acquire() as conn, conn.transaction():
        if await conn.fetchval(queries.resolve_sms_triage, triage_id, ctx.clock.now()) is None:
            raise ApiError(404, "not_found", "no such open triage message")
        await conn.execute(queries.insert_audit, ctx.clock.now(), who.actor, "resolve_sms_triage", None,
                           {"triage_id": triage_id})
    return web.json_response({"id": triage_id, "resolved": True})
