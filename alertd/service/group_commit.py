"""Group commit: alerts that arrive together are committed together, and each sender still hears back only after
the commit that holds her alert.

Under load most of an alert's cost is per statement and per transaction, not per row: a group of alerts takes
the same seven statements and one commit as a single alert. A committer takes whatever has queued while the
previous group committed (nothing is held back to wait for company: a lone alert goes at once), up to
`max_group`. A group that fails is retried one alert per transaction, so one bad alert cannot fail the others,
and each sender gets her own answer or her own error.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

import asyncpg

from alertd.service import intake
from alertd.service.context import Context
from alertd.service.intake import NewAlert, Raised

log = logging.getLogger("alertd.intake")


class GroupCommit:
    def __init__(self, pool: asyncpg.Pool, ctx: Context, *, max_group: int = 64, committers: int = 4,
                 observe: Callable[[int, list[float], float], None] | None = None) -> None:
        """`observe(size, waits, commit_s)` hears of each group committed: its size, how long each of its
        alerts waited for a committer, and how long the commit took (seconds)."""
        self.pool, self.ctx = pool, ctx
        self.max_group = max_group
        self.committers = committers
        self.observe = observe
        self.queue: asyncio.Queue[tuple[NewAlert, asyncio.Future, float]] = asyncio.Queue()
        self.tasks: list[asyncio.Task] = []

    async def raise_alert(self, new: NewAlert) -> Raised:
        """Queue the alert and wait for the commit that holds it (or the error that stopped it)."""
        loop = asyncio.get_running_loop()
        done = loop.create_future()
        self.queue.put_nowait((new, done, loop.time()))
        return await done

    def start(self) -> None:
        self.tasks = [asyncio.create_task(self._commit_groups(), name=f"alertd-intake-{i}")
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
            group = [await self.queue.get()]
            while len(group) < self.max_group and not self.queue.empty():
                group.append(self.queue.get_nowait())
            try:
                await self._commit(group)
            finally:
                for _ in group:
                    self.queue.task_done()

    async def _commit(self, group: list[tuple[NewAlert, asyncio.Future, float]]) -> None:
        # One order for every group: two groups that both hold repeats of the same client_alert_ids take their
        # unique-index locks in the same order and cannot deadlock.
        group.sort(key=lambda item: (item[0].device_id or "", item[0].client_alert_id or ""))
        loop = asyncio.get_running_loop()
        started = loop.time()
        try:
            async with self.pool.acquire() as conn, conn.transaction():
                answers = await intake.raise_group(conn, self.ctx, [new for new, _, _ in group])
        except Exception as exc:
            if len(group) == 1:
                _settle(group[0][1], exc=exc)
                return
            log.warning("alert group failed, committing its alerts one by one",
                        extra={"fields": {"alerts": len(group), "error": type(exc).__name__}})
            for item in group:
                await self._commit([item])
            return
        if self.observe is not None:
            self.observe(len(group), [started - queued for _, _, queued in group], loop.time() - started)
        for (_, done, _), answer in zip(group, answers, strict=True):
            _settle(done, answer=answer)


def _settle(done: asyncio.Future, *, answer: Raised | None = None, exc: BaseException | None = None) -> None:
    if done.done():  # the sender went away; her alert stands (or failed) all the same
        return
    if exc is not None:
        done.set_exception(exc)
    else:
        done.set_result(answer)
