"""The SMS notifier: find the responder's phone and language, render the text, route it to a provider.

Providers (Twilio, a generic HTTP gateway) send one text to one number and raise SendError to retry; which one
is chosen by the destination's prefix, because Twilio cannot deliver to every country of the region.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import UTC, tzinfo
from typing import Protocol
from zoneinfo import ZoneInfo

import asyncpg

from alertd.channels.sms.templates import render, render_to_her
from alertd.context import Context
from alertd.notifiers.log import LogNotifier
from alertd.service.ports import Message, Notifier, SendError
from alertd.service.proofs import PERSON
from alertd.store import queries

log = logging.getLogger("alertd.notify.sms")


class SmsProvider(Protocol):
    name: str

    async def send_sms(self, message: Message, to: str, text: str) -> str:
        """Send `text` to `to`; return the provider's message id. Raise SendError to retry later."""

    async def aclose(self) -> None:
        """Release connections."""


@dataclass
class SmsNotifier:
    """`send(message)` for channel 'sms': routes by destination prefix, the longest matching prefix wins."""

    pool: asyncpg.Pool
    default: SmsProvider | None
    routes: list[tuple[str, SmsProvider]] = field(default_factory=list)
    tz: tzinfo = UTC  # responders read deadlines in their local time

    def provider_for(self, phone: str) -> SmsProvider | None:
        for prefix, provider in sorted(self.routes, key=lambda r: -len(r[0])):
            if phone.startswith(prefix):
                return provider
        return self.default

    async def send(self, message: Message) -> str | None:
        if message.recipient.startswith(PERSON):
            return await self._send_to_her(message)
        async with self.pool.acquire() as conn:
            contact = await conn.fetchrow(queries.get_responder_contacts, message.recipient)
        if contact is None or not contact["phone"]:
            raise SendError("recipient has no phone number", retryable=False)
        provider = self.provider_for(contact["phone"])
        if provider is None:
            raise SendError("no SMS provider serves this destination", retryable=False)
        text = render(message.template, message.payload, contact["language"], self.tz)
        return await provider.send_sms(message, contact["phone"], text)

    async def _send_to_her(self, message: Message) -> str | None:
        """A neutral text to her own phone, only while she is opted in (checked again at sending time)."""
        text = render_to_her(message.template, message.payload)
        if text is None:
            raise SendError("no such message for her phone", retryable=False)
        async with self.pool.acquire() as conn:
            phone = await conn.fetchval(queries.get_person_sms_contact, message.recipient.removeprefix(PERSON))
        if phone is None:
            raise SendError("she has not opted in to SMS", retryable=False)
        provider = self.provider_for(phone)
        if provider is None:
            raise SendError("no SMS provider serves this destination", retryable=False)
        return await provider.send_sms(message, phone, text)

    async def aclose(self) -> None:
        for provider in {id(p): p for p in [self.default, *(p for _, p in self.routes)] if p}.values():
            await provider.aclose()


def build_sms_notifier(ctx: Context, pool: asyncpg.Pool) -> Notifier:
    """Twilio and/or the HTTP gateway as configured; the log when neither is (and the service says so)."""
    from alertd.channels.sms.gateway import HttpGatewaySms
    from alertd.channels.sms.twilio import TwilioSms

    settings = ctx.settings
    twilio = TwilioSms(ctx, pool) if settings.twilio_configured else None
    gateway = HttpGatewaySms(ctx, pool) if settings.sms_gateway_url else None
    if twilio is None and gateway is None:
        log.warning("Twilio is not configured: SMS to responders goes to the log")
        return LogNotifier("sms")
    prefixes = [p.strip() for p in settings.sms_gateway_prefixes.split(",") if p.strip()]
    if gateway is not None and not prefixes:
        return SmsNotifier(pool, default=twilio or gateway, tz=ZoneInfo(settings.sms_timezone))
    routes: list[tuple[str, SmsProvider]] = [(p, gateway) for p in prefixes] if gateway is not None else []
    if twilio is None:
        log.warning("Twilio is not configured: SMS goes only to the gateway's prefixes")
    return SmsNotifier(pool, default=twilio, routes=routes, tz=ZoneInfo(settings.sms_timezone))
