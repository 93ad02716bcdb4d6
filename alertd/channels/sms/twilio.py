"""SMS through Twilio's REST API on the async client, never sending the same outbox message twice.

Every attempt is recorded in sms_messages before Twilio is called. When an attempt ends ambiguously (a timeout
or a 5xx after the request went out, or a crash mid-call) the next attempt first asks Twilio whether the message
exists — by destination and exact text — and only sends when it does not.
"""

from __future__ import annotations

import asyncio
import logging

import aiohttp
import asyncpg
from twilio.base.exceptions import TwilioException, TwilioRestException
from twilio.http.async_http_client import AsyncTwilioHttpClient
from twilio.rest import Client

from alertd.context import Context
from alertd.service.ports import Message, SendError
from alertd.store import queries

log = logging.getLogger("alertd.notify.twilio")
# twilio's client logs every request line by line at INFO (URLs with responder numbers): keep only its warnings.
_http_log = logging.getLogger("alertd.notify.twilio.http")
_http_log.setLevel(logging.WARNING)
STATUS_PATH = "/v1/sms/status"
# 5xx other than 503 may come after Twilio accepted the message: reconcile before sending again.
_AMBIGUOUS_STATUS = {500, 502, 504}
_RECONCILE_LOOKBACK = 50


class TwilioSms:
    name = "twilio"

    def __init__(self, ctx: Context, pool: asyncpg.Pool) -> None:
        self.ctx = ctx
        self.pool = pool
        self._client: Client | None = None
        self._http: AsyncTwilioHttpClient | None = None

    def client(self) -> Client:
        """The Twilio client, created on first use: AsyncTwilioHttpClient must be made inside the running loop."""
        if self._client is None:
            s = self.ctx.settings
            # The async client does not apply its own timeout (twilio 9.13): send_sms bounds each call itself.
            self._http = AsyncTwilioHttpClient(logger=_http_log)
            self._client = Client(s.twilio_account_sid, s.twilio_auth_token, http_client=self._http)
            if s.twilio_api_url:
                self._client.api.base_url = s.twilio_api_url.rstrip("/")
        return self._client

    async def aclose(self) -> None:
        if self._http is not None:
            await self._http.close()
            self._http, self._client = None, None

    async def send_sms(self, message: Message, to: str, text: str) -> str:
        s = self.ctx.settings
        async with self.pool.acquire() as conn:
            previous = await conn.fetchrow(queries.get_sms_send, message.id)
        if previous is not None and previous["provider"] == self.name:
            if previous["state"] == "accepted" and previous["sid"]:
                return previous["sid"]  # accepted before a crash kept the outbox from hearing it
            if previous["state"] in ("sending", "ambiguous"):
                sid = await self._reconcile(to, previous["body"])
                if sid is not None:
                    log.info("reconciled: already sent", extra={"fields": {"outbox_id": message.id}})
                    await self._outcome(message.id, "accepted", sid=sid)
                    return sid
        async with self.pool.acquire() as conn:
            await conn.execute(queries.begin_sms_send, message.id, self.name, text, self.ctx.clock.now())
        try:
            async with asyncio.timeout(s.sms_send_timeout_s):
                sent = await self.client().messages.create_async(
                    to=to, from_=s.twilio_from_number, body=text, validity_period=s.sms_validity_s,
                    status_callback=s.public_url.rstrip("/") + STATUS_PATH)
        except TwilioRestException as exc:
            retryable = exc.status == 429 or exc.status >= 500
            state = "ambiguous" if exc.status in _AMBIGUOUS_STATUS else "rejected"
            await self._outcome(message.id, state, error=str(exc.code or exc.status))
            raise SendError(f"twilio answered {exc.status} (code {exc.code})", retryable=retryable) from None
        except aiohttp.ClientConnectorError as exc:  # never connected: nothing can have been sent
            await self._outcome(message.id, "rejected", error="connect")
            raise SendError(f"twilio unreachable: {type(exc).__name__}") from None
        except (TimeoutError, aiohttp.ClientError) as exc:
            await self._outcome(message.id, "ambiguous", error="timeout")
            raise SendError(f"twilio did not answer: {type(exc).__name__}") from None
        await self._outcome(message.id, "accepted", sid=sent.sid, delivery=sent.status)
        return sent.sid

    async def _reconcile(self, to: str, body: str) -> str | None:
        """The sid of a message Twilio already holds for this destination and text, if any."""
        s = self.ctx.settings
        try:
            async with asyncio.timeout(s.sms_send_timeout_s):
                recent = await self.client().messages.list_async(to=to, from_=s.twilio_from_number,
                                                                 limit=_RECONCILE_LOOKBACK)
        except (TwilioException, TimeoutError, aiohttp.ClientError) as exc:
            # Not knowing is not permission to send again: retry the whole attempt later.
            raise SendError(f"could not reconcile an earlier attempt: {type(exc).__name__}") from None
        for m in recent:
            if m.body == body:
                return m.sid
        return None

    async def _outcome(self, outbox_id: int, state: str, *, sid: str | None = None, delivery: str | None = None,
                       error: str | None = None) -> None:
        async with self.pool.acquire() as conn:
            await conn.execute(queries.record_sms_send_outcome, outbox_id, state, sid, delivery, error,
                               self.ctx.clock.now())
