"""Group commit: work that arrives together is committed together, and each sender still hears back only after
the commit that holds her work.

Under load most of an alert's cost is per statement and per transaction, not per row: a group of alerts takes
the same few statements and one commit as a single alert. A committer takes whatever has queued while the
previous group committed, up to `max_group`. With `gather_s`, while work is arriving closely (the last two
arrivals within gather_s of each other), a committer also waits up to gather_s from its first item for what
comes next: at 200 alerts/s a group of three instead of one each, for a few milliseconds. A lone alert (nothing
arrived within gather_s before it) goes at once, and nobody waits for company while a flood's work is parked
(see `coalesce_s`: the flood makes its own groups, and the others must not wait behind it; bench/flood.py). One
committer gathers at a time, so the others' turns keep the commits going.

A group that fails is retried one item per transaction, so one bad item cannot fail the others, and each sender
gets her own answer or her own error; when the database itself is gone, every sender of the group gets that
error at once (the channel retries: the phone app, Twilio, the broker's redelivery).

One sender's work is in one group at a time (`key`: her person for app alerts, the device for button messages):
work of a key already being committed waits, parked, for that commit and then goes together into a next group,
instead of taking a committer only to wait there for the first group's row locks. A flood from one device so
fills one committer's groups, at most one at a time, while the others commit everyone else's work.

With `coalesce_s`, work parked behind its key's commit waits that much longer before it queues again, so the
rest of a flood joins it: a stuck button or a looping app sends hundreds of repeats a second, and each commit of
a few costs nearly what a commit of many does. A sender with nothing parked is never delayed: only work that
arrived while her earlier work was committing (in intake, a repeat of the alert that commit raised) waits.

Used for app alerts (`intake.raise_group`) and button messages (`buttons.receive_group`).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
from collections.abc import Awaitable, Callable, Hashable
from typing import Any, Generic, TypeVar

import asyncpg

from alertd.service.ports import OwnSender
from alertd.service.timeline import leasing
from alertd.store.db import CONNECTION_LOST

log = logging.getLogger("alertd.intake")
# How long a committer waits for company while alerts arrive closely: three alerts' worth at 200/s, a few ms
# against a phone's round trip; its statements and commit are shared by the group (docs/benchmarks.md).
GATHER_S = 0.01
# How long one sender's work that queued behind her own commit waits for the rest of a flood to join it: short
# against a phone's or a button's retry, long against a commit (5-20 ms), so a flood commits a few dozen at a time.
COALESCE_S = 0.05
T = TypeVar("T")
R = TypeVar("R")


class GroupCommit(Generic[T, R]):
    def __init__(self, pool: asyncpg.Pool, work: Callable[[asyncpg.Connection, list[T]], Awaitable[list[R]]], *,
                 name: str, order: Callable[[T], Any] | None = None, key: Callable[[T], Hashable] | None = None,
                 max_group: int = 64, committers: int = 4, coalesce_s: float = 0.0, gather_s: float = 0.0,
                 observe: Callable[[int, list[float], float], None] | None = None,
                 sender: OwnSender | None = None) -> None:
        """`work(conn, items)` does a group's work in the transaction and returns one answer per item, in order.
        `order` sorts a group first (one order for every group: two groups that lock the same rows take their
        locks in the same order and cannot deadlock). `observe(size, waits, commit_s)` hears of each group
        committed: its size, how long each item waited for a committer, and how long the commit took. `key`
        names whose work an item is: items of a key being committed wait for that commit, and `coalesce_s` more;
        `gather_s` is how long a committer waits for company (see the module). With `sender` (this instance's
        running outbox sender), a group's messages are leased to it and handed over after the group's commit: no
        claim, no wake-up of every instance's engine. A group whose commit's outcome is unknown (the connection
        lost at COMMIT) hands nothing over: its messages, if they committed, wait for their lease to run out."""
        self.pool, self.work, self.name, self.order, self.key = pool, work, name, order, key
        self.in_flight: set[Hashable] = set()
        self.parked: dict[Hashable, list[tuple[T, asyncio.Future, float]]] = {}
        self.max_group = max_group
        self.committers = committers
        self.coalesce_s = coalesce_s
        self.gather_s = gather_s
        self._arrivals: collections.deque[float] = collections.deque(maxlen=2)
        self._gathering = asyncio.Lock()
        self.observe = observe
        self.sender = sender
        self.queue: asyncio.Queue[tuple[T, asyncio.Future, float]] = asyncio.Queue()
        self.tasks: list[asyncio.Task] = []

    async def submit(self, item: T) -> R:
        """Queue the item and wait for the commit that holds it (or the error that stopped it)."""
        loop = asyncio.get_running_loop()
        done = loop.create_future()
        now = loop.time()
        self._arrivals.append(now)
        self.queue.put_nowait((item, done, now))
        return await done

    def start(self) -> None:
        self.tasks = [asyncio.create_task(self._commit_groups(), name=f"alertd-{self.name}-{i}")
                      for i in range(self.committers)]

    async def stop(self, drain_s: float = 5.0) -> None:
        """Commit what is queued (at most drain_s), then stop."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.queue.join(), drain_s)
        for task in self.tasks:
            task.cancel()
        for task in self.tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _commit_groups(self) -> None:
        while True:
            group, keys = await self._next_group()
            try:
                await self._commit(group)
            except Exception as exc:  # a bug, not the database: no sender may wait forever, and this committer goes on
                log.exception("group commit failed", extra={"fields": {"group": self.name, "items": len(group)}})
                for _, done, _ in group:
                    _settle(done, exc=exc)
            finally:
                self._release(keys)
                for _ in group:
                    self.queue.task_done()

    async def _next_group(self) -> tuple[list[tuple[T, asyncio.Future, float]], set[Hashable]]:
        """What has queued, up to max_group, less the items of keys another committer holds (parked); while work
        arrives closely, what comes within gather_s of the first item too."""
        group: list[tuple[T, asyncio.Future, float]] = []
        keys: set[Hashable] = set()
        async with self._gathering:
            while not group:
                self._take(await self.queue.get(), group, keys)
            loop = asyncio.get_running_loop()
            close = (not self.parked and len(self._arrivals) == 2
                     and self._arrivals[1] - self._arrivals[0] <= self.gather_s)
            until = loop.time() + self.gather_s if close else 0.0
            while len(group) < self.max_group:
                if not self.queue.empty():
                    self._take(self.queue.get_nowait(), group, keys)
                    continue
                if (left := until - loop.time()) <= 0:
                    break
                try:
                    self._take(await asyncio.wait_for(self.queue.get(), left), group, keys)
                except TimeoutError:
                    break
        self.in_flight |= keys
        return group, keys

    def _take(self, entry: tuple[T, asyncio.Future, float], group: list, keys: set[Hashable]) -> None:
        if self.key is None:
            group.append(entry)
            return
        key = self.key(entry[0])
        if key in self.in_flight:
            self.parked.setdefault(key, []).append(entry)  # still unfinished in the queue's count until requeued
        else:
            group.append(entry)
            keys.add(key)

    def _release(self, keys: set[Hashable]) -> None:
        """The keys' commit is over: their parked items queue again (before anything of theirs that comes later),
        after `coalesce_s` for a key that has any (the key stays held meanwhile, so more of its work parks)."""
        for key in keys:
            if self.coalesce_s > 0 and key in self.parked:
                asyncio.get_running_loop().call_later(self.coalesce_s, self._requeue, key)
            else:
                self._requeue(key)

    def _requeue(self, key: Hashable) -> None:
        self.in_flight.discard(key)
        for entry in self.parked.pop(key, []):
            self.queue.put_nowait(entry)
            self.queue.task_done()  # it was counted when first queued

    async def _commit(self, group: list[tuple[T, asyncio.Future, float]]) -> None:
        if (order := self.order) is not None:
            group.sort(key=lambda entry: order(entry[0]))
        loop = asyncio.get_running_loop()
        started = loop.time()
        try:
            with leasing(self.sender.lease_s if self.sender is not None else None) as leased:
                async with self.pool.acquire() as conn, conn.transaction():
                    answers = await self.work(conn, [item for item, _, _ in group])
        except Exception as exc:
            if len(group) == 1 or isinstance(exc, CONNECTION_LOST):
                # Alone, or the database is gone: one item at a time would only fail again, N times over.
                for _, done, _ in group:
                    _settle(done, exc=exc)
                return
            log.warning("group failed, committing its items one by one",
                        extra={"fields": {"group": self.name, "items": len(group), "error": type(exc).__name__}})
            for entry in group:
                await self._commit([entry])
            return
        if leased and self.sender is not None:
            self.sender.hand(leased)
        if self.observe is not None:
            self.observe(len(group), [started - queued for _, _, queued in group], loop.time() - started)
        for (_, done, _), answer in zip(group, answers, strict=True):
            _settle(done, answer=answer)


def _settle(done: asyncio.Future, *, answer: Any = None, exc: BaseException | None = None) -> None:
    if done.done():  # the sender went away; her work stands (or failed) all the same
        return
    if exc is not None:
        done.set_exception(exc)
    else:
        done.set_result(answer)
