"""The outbox sender: lease due messages, hand each to its channel's notifier, record the outcome."""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from datetime import datetime, timedelta

import asyncpg

from alertd.context import Context
from alertd.engine import versions
from alertd.service.ports import Message, Registry, SendError
from alertd.store import queries
from alertd.store.db import CONNECTION_LOST

log = logging.getLogger("alertd.engine.outbox")
LEASE_S = 60.0  # a message a crashed instance leased is retried after this
# Messages this instance records (sent, failed or put back) between its vacuums of the queue. Each leaves a dead row
# version in `outbox_pending`; autovacuum looks at most once a minute, and meanwhile every scan of the queue (a claim,
# the next due time, marking messages sent) reads the dead versions too. At 1,000 alerts/s a minute of them made
# marking sent the dearest statement there is (docs/benchmarks.md).
VACUUM_AFTER = 2000


class Outbox:
    """Sends every due message, claimed from the database, and, with no claim, the messages this instance's own
    group commits leased to it (`hand`). One delivery at a time, messages handed over before any claimed later:
    each recipient hears this instance's messages in the order they were committed."""

    name = "outbox"
    version = 1
    lease_s = LEASE_S  # a message handed over at commit is leased as long as a claimed one (ports.OwnSender)

    def __init__(self, ctx: Context, registry: Registry, batch: int = 200, concurrency: int = 16,
                 vacuum_after: int = VACUUM_AFTER) -> None:
        self.ctx = ctx
        self.registry = registry
        self.batch = batch
        self.concurrency = concurrency
        self.vacuum_after = vacuum_after
        self._handed: list[Message] = []
        self._handed_ready = asyncio.Event()
        self._delivering = asyncio.Lock()
        self._recorded = 0  # since the last vacuum
        self._vacuum: asyncio.Task | None = None

    def hand(self, rows: list) -> None:
        """After the commit that leased them to this instance: messages for `send_handed` to send."""
        self._handed.extend(Message.from_row(row) for row in rows)
        self._handed_ready.set()

    async def send_handed(self, pool: asyncpg.Pool, gather_s: float = 0.05) -> None:
        """Run until cancelled: send what was handed over, what arrived within gather_s of the first together
        (at 200 alerts/s, one mark for ten alerts' messages; 50 ms against the seconds an SMS provider takes).
        A database error leaves them leased: the lease runs out and a claim, here or elsewhere, takes them."""
        while True:
            await self._handed_ready.wait()
            await asyncio.sleep(gather_s)
            self._handed_ready.clear()
            try:
                await self.deliver_handed(pool)
            except (*CONNECTION_LOST, asyncpg.PostgresError) as exc:
                log.warning("handed messages not recorded; their lease will run out",
                            extra={"fields": {"error": str(exc)}})
            except Exception:  # a bug must not stop this loop: what comes next is still sent
                log.exception("handed messages not sent; their lease will run out")

    async def deliver_handed(self, pool: asyncpg.Pool) -> int:
        """Send what was handed over until now (shutting down: before the engine stops)."""
        async with self._delivering:
            return await self._deliver_handed(pool)

    async def process_due(self, pool: asyncpg.Pool, now: datetime) -> int:
        """Lease a batch, deliver it (no pooled connection held while notifiers talk to providers), record it;
        what was handed over meanwhile goes first.

        Messages to one recipient on one channel go in order; different recipients are served concurrently.
        """
        async with self._delivering:
            done = await self._deliver_handed(pool)
            # Only the claim holds the version lock: what an old release leased before an upgrade it still sends
            # (the lease keeps anyone else from sending it too), but it leases nothing new afterwards. The claim is
            # one statement, its own transaction, with the lock held inside it (versions.hold's check, one round
            # trip).
            async with pool.acquire() as conn:
                claimed = await conn.fetch(queries.claim_outbox, now, self.batch, LEASE_S, self.name, self.version)
            versions.check(self, claimed[0]["recorded"])
            rows = [Message.from_row(row) for row in claimed if row["id"] is not None]
            return done + (await self._deliver(pool, rows) if rows else 0)

    async def _deliver_handed(self, pool: asyncpg.Pool) -> int:
        """(Delivering already) send what was handed over until now."""
        handed, self._handed = self._handed, []
        return await self._deliver(pool, handed) if handed else 0

    async def _deliver(self, pool: asyncpg.Pool, messages: list[Message]) -> int:
        """Send leased messages (to one recipient on one channel in order, recipients concurrently), then record
        each outcome."""
        queues: dict[tuple[str, str], list[Message]] = defaultdict(list)
        batched: dict[str, list[Message]] = defaultdict(list)
        for message in messages:
            if hasattr(self.registry.get(message.channel), "send_batch"):
                batched[message.channel].append(message)
            else:
                queues[(message.channel, message.recipient)].append(message)
        gate = asyncio.Semaphore(self.concurrency)
        sent: list[tuple[int, str | None]] = []
        failed: list[tuple[Message, str, bool]] = []

        async def send_batch(channel: str, messages: list[Message]) -> None:
            """A notifier that can take the whole batch at once (the console: one NOTIFY statement)."""
            try:
                refs = await self.registry.get(channel).send_batch(messages)  # type: ignore[union-attr]  # checked by hasattr above
            except Exception as exc:
                log.warning("batch send failed", extra={"fields": {"channel": channel, "error": str(exc)}})
                failed.extend((m, f"{type(exc).__name__}: {exc}", True) for m in messages)
                return
            sent.extend((m.id, ref) for m, ref in zip(messages, refs, strict=True))

        async def drain(messages: list[Message]) -> None:
            async with gate:
                for message in messages:
                    outcome = await self._send(message)
                    if isinstance(outcome, tuple):
                        failed.append((message, *outcome))
                    else:
                        sent.append((message.id, outcome))

        await asyncio.gather(*(drain(q) for q in queues.values()),
                             *(send_batch(channel, ms) for channel, ms in batched.items()))
        done_at = self.ctx.clock.now()
        async with pool.acquire() as conn:
            if sent:
                await conn.execute(queries.mark_outbox_sent, [i for i, _ in sent], done_at, [r for _, r in sent])
            for message, error, retryable in failed:
                await self._failed(conn, message, error, retryable, done_at)
        self._recorded += len(messages)
        if self._recorded >= self.vacuum_after and (self._vacuum is None or self._vacuum.done()):
            self._recorded = 0
            self._vacuum = asyncio.create_task(self.vacuum_queue(pool), name="alertd-outbox-vacuum")
        return len(messages)

    async def vacuum_queue(self, pool: asyncpg.Pool) -> None:
        """Clear the queue of the dead row versions its messages left (in the background, after every
        `vacuum_after` recorded here; another instance's vacuum running already does it for both)."""
        try:
            async with pool.acquire() as conn:
                await conn.execute(queries.vacuum_outbox_queue)
        except (*CONNECTION_LOST, asyncpg.PostgresError) as exc:
            log.warning("the outbox queue was not vacuumed; autovacuum will", extra={"fields": {"error": str(exc)}})

    async def stop(self) -> None:
        """Let a vacuum under way finish (the queue is small: moments)."""
        if self._vacuum is not None:
            await asyncio.wait([self._vacuum], timeout=5.0)

    async def _send(self, message: Message) -> str | tuple[str, bool] | None:
        """The provider reference on success, or (error, retryable)."""
        notifier = self.registry.get(message.channel)
        if notifier is None:
            return f"no notifier for channel {message.channel}", False
        try:
            return await notifier.send(message)
        except SendError as exc:
            return str(exc), exc.retryable
        except Exception as exc:  # a notifier bug must not stop the engine; the message is retried
            log.exception("notifier raised", extra={"fields": {"channel": message.channel}})
            return f"{type(exc).__name__}: {exc}", True

    async def _failed(self, conn: asyncpg.Connection, message: Message, error: str, retryable: bool,
                      now: datetime) -> None:
        if not retryable or message.attempts >= self.ctx.settings.outbox_max_attempts:
            await conn.execute(queries.fail_outbox, message.id, error)
            log.warning("message failed", extra={"fields": {"id": message.id, "channel": message.channel}})
            return
        backoff = min(300.0, 2.0 ** message.attempts)
        await conn.execute(queries.retry_outbox, message.id, now + timedelta(seconds=backoff), error)

    async def next_due(self, pool: asyncpg.Pool) -> datetime | None:
        async with pool.acquire() as conn:
            return await conn.fetchval(queries.get_outbox_next_due)
