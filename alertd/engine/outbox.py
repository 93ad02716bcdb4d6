"""The outbox sender: lease due messages, hand each to its channel's notifier, record the outcome."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

import asyncpg

from alertd.notifiers import Message, Registry, SendError
from alertd.service.context import Context
from alertd.store import queries

log = logging.getLogger("alertd.engine.outbox")
LEASE_S = 60.0  # a message a crashed instance leased is retried after this


class Outbox:
    name = "outbox"

    def __init__(self, ctx: Context, registry: Registry, batch: int = 50) -> None:
        self.ctx = ctx
        self.registry = registry
        self.batch = batch

    async def process_due(self, pool: asyncpg.Pool, now: datetime) -> int:
        async with pool.acquire() as conn:
            rows = await conn.fetch(queries.claim_outbox, now, self.batch, LEASE_S)
        for row in rows:
            await self._deliver(pool, Message.from_row(row))
        return len(rows)

    async def _deliver(self, pool: asyncpg.Pool, message: Message) -> None:
        notifier = self.registry.get(message.channel)
        now = self.ctx.clock.now()
        async with pool.acquire() as conn:
            if notifier is None:
                await conn.execute(queries.outbox_failed, message.id, f"no notifier for channel {message.channel}")
                return
            try:
                ref = await notifier.send(message)
            except SendError as exc:
                await self._failed(conn, message, str(exc), exc.retryable, now)
                return
            except Exception as exc:  # a notifier bug must not stop the engine; the message is retried
                log.exception("notifier raised", extra={"fields": {"channel": message.channel}})
                await self._failed(conn, message, f"{type(exc).__name__}: {exc}", True, now)
                return
            await conn.execute(queries.outbox_sent, message.id, self.ctx.clock.now(), ref)

    async def _failed(self, conn: asyncpg.Connection, message: Message, error: str, retryable: bool,
                      now: datetime) -> None:
        if not retryable or message.attempts >= self.ctx.settings.outbox_max_attempts:
            await conn.execute(queries.outbox_failed, message.id, error)
            log.warning("message failed", extra={"fields": {"id": message.id, "channel": message.channel}})
            return
        backoff = min(300.0, 2.0 ** message.attempts)
        await conn.execute(queries.outbox_retry, message.id, now + timedelta(seconds=backoff), error)

    async def next_due(self, pool: asyncpg.Pool) -> datetime | None:
        async with pool.acquire() as conn:
            return await conn.fetchval(queries.outbox_next_due)
