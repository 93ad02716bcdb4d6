"""SMS through a generic HTTP gateway: URL, Authorization header and body template come from settings.

The body template is JSON (it starts with `{`) or a form (`to=$to&text=$text`); `$to`, `$text` and `$ref` are
escaped for that format. Each request carries `Idempotency-Key: alertd-<outbox id>`, so a gateway that honours
it drops the resend after a timeout; the attempt is recorded in sms_messages like Twilio's.
"""

from __future__ import annotations

import json
from string import Template
from urllib.parse import quote_plus

import aiohttp
import asyncpg

from alertd.context import Context
from alertd.service.ports import Message, SendError
from alertd.store import queries


def render_body(template: str, values: dict[str, str]) -> tuple[str, str]:
    """(body, content type) with the values escaped for the template's format."""
    if template.lstrip().startswith("{"):
        escaped = {k: json.dumps(v, ensure_ascii=False)[1:-1] for k, v in values.items()}
        return Template(template).safe_substitute(escaped), "application/json; charset=utf-8"
    escaped = {k: quote_plus(v) for k, v in values.items()}
    return Template(template).safe_substitute(escaped), "application/x-www-form-urlencoded"


class HttpGatewaySms:
    name = "gateway"

    def __init__(self, ctx: Context, pool: asyncpg.Pool) -> None:
        self.ctx = ctx
        self.pool = pool
        self._session: aiohttp.ClientSession | None = None

    def session(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=self.ctx.settings.sms_send_timeout_s))
        return self._session

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def send_sms(self, message: Message, to: str, text: str) -> str:
        s = self.ctx.settings
        ref = f"alertd-{message.id}"
        body, content_type = render_body(s.sms_gateway_body, {"to": to, "text": text, "ref": ref})
        headers = {"Content-Type": content_type, "Idempotency-Key": ref}
        if s.sms_gateway_auth:
            headers["Authorization"] = s.sms_gateway_auth
        async with self.pool.acquire() as conn:
            await conn.execute(queries.begin_sms_send, message.id, self.name, text, self.ctx.clock.now())
        try:
            async with self.session().post(s.sms_gateway_url, data=body.encode(), headers=headers) as resp:
                answer = await resp.text()
                status = resp.status
        except aiohttp.ClientConnectorError as exc:
            await self._outcome(message.id, "rejected", error="connect")
            raise SendError(f"gateway unreachable: {type(exc).__name__}") from None
        except (TimeoutError, aiohttp.ClientError) as exc:
            await self._outcome(message.id, "ambiguous", error="timeout")
            raise SendError(f"gateway did not answer: {type(exc).__name__}") from None
        if status >= 300:
            retryable = status == 429 or status >= 500
            await self._outcome(message.id, "ambiguous" if status >= 500 else "rejected", error=str(status))
            raise SendError(f"gateway answered {status}", retryable=retryable)
        provider_id = _id_in(answer) or ref
        await self._outcome(message.id, "accepted", sid=f"gw:{provider_id}")
        return f"gw:{provider_id}"

    async def _outcome(self, outbox_id: int, state: str, *, sid: str | None = None, error: str | None = None) -> None:
        async with self.pool.acquire() as conn:
            await conn.execute(queries.record_sms_send_outcome, outbox_id, state, sid, None, error, self.ctx.clock.now())


def _id_in(answer: str) -> str | None:
    """The gateway's message id, when it answers JSON with `id` or `message_id`."""
    try:
        doc = json.loads(answer)
    except ValueError:
        return None
    if isinstance(doc, dict):
        value = doc.get("id", doc.get("message_id"))
        return str(value)[:100] if value is not None else None
    return None
