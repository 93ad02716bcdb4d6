"""The engine: a loop of idempotent "process everything due" steps, woken by NOTIFY or a bounded poll."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from datetime import datetime
from typing import Protocol

import asyncpg

from alertd.context import Context
from alertd.engine.versions import OtherVersion, take_over
from alertd.store.db import CONNECTION_LOST, connect_primary

log = logging.getLogger("alertd.engine")


class Module(Protocol):
    name: str
    version: int  # raise it when the module's behaviour changes: see alertd/engine/versions.py

    async def process_due(self, pool: asyncpg.Pool, now: datetime) -> int:
        """Do everything due at `now`; return how much was done."""

    async def next_due(self, pool: asyncpg.Pool) -> datetime | None:
        """When this module next has work (None: nothing scheduled)."""


class Engine:
    # Wake-ups that arrive this close together are served by one cycle (a burst of alerts, one outbox pass).
    DEBOUNCE_S = 0.05
    # While a newer release runs a module, this instance says so in its log at least this often.
    STOOD_DOWN_LOG_S = 60.0

    def __init__(self, pool: asyncpg.Pool, ctx: Context, modules: list[Module], dsn: str) -> None:
        self.pool = pool
        self.dsn = dsn
        self.ctx = ctx
        self.modules = modules
        self._wake = asyncio.Event()
        self._woken: set[str] = set()
        self._listener: asyncpg.Connection | None = None
        self.last_cycle_at: float | None = None  # Unix time the last pass finished (alertd_engine_last_cycle_…)
        # Modules a newer release runs: name -> the version the database records (alertd_engine_module_stood_down)
        self.stood_down: dict[str, int] = {}
        self._stood_down_logged: dict[str, float] = {}

    async def run_once(self, now: datetime | None = None, only: set[str] | None = None) -> dict[str, int]:
        """Pass over the modules (all, or those named in `only`) until none has anything due.

        Each pass takes one batch from each module in turn, so a long outbox backlog never holds back a due
        deadline: deadlines are claimed again between every two outbox batches.
        """
        modules = [m for m in self.modules if only is None or m.name in only]
        done = dict.fromkeys((m.name for m in modules), 0)
        while modules:
            busy = []
            for module in modules:
                at = now or self.ctx.clock.now()
                try:
                    n = await module.process_due(self.pool, at)
                except OtherVersion as other:
                    if other.newer:
                        self._stand_down(module, other.recorded)
                    else:
                        if await take_over(self.pool, module, at):
                            log.log(logging.INFO if other.recorded is None else logging.WARNING,
                                    "engine module upgraded: this instance's version runs it from now on",
                                    extra={"fields": {"module": module.name, "version": module.version,
                                                      "was": other.recorded}})
                        # Run it again in this pass: under the version just recorded, or (another instance recorded
                        # one meanwhile) the next hold tells whether this instance runs it or stands it down.
                        busy.append(module)
                    continue
                self._resume(module)
                done[module.name] += n
                if n:
                    busy.append(module)
            modules = busy
        self.last_cycle_at = time.time()
        return done

    def module_states(self) -> dict[str, bool]:
        """Each module's name: True while this instance stands it down."""
        return {m.name: m.name in self.stood_down for m in self.modules}

    def _stand_down(self, module: Module, recorded: int | None) -> None:
        """A newer release runs this module: this instance does none of its work, and says so loudly."""
        first = module.name not in self.stood_down
        self.stood_down[module.name] = recorded or 0
        last = self._stood_down_logged.get(module.name)
        if first or last is None or time.monotonic() - last >= self.STOOD_DOWN_LOG_S:
            self._stood_down_logged[module.name] = time.monotonic()
            log.error("engine module stood down: the database records a newer version, so a newer alertd runs it; "
                      "upgrade this instance (or, rolling back, see docs/operations.md#upgrades)",
                      extra={"fields": {"module": module.name, "version": module.version, "recorded": recorded}})

    def _resume(self, module: Module) -> None:
        if self.stood_down.pop(module.name, None) is not None:
            self._stood_down_logged.pop(module.name, None)
            log.warning("engine module resumed: the database records this instance's version again",
                        extra={"fields": {"module": module.name, "version": module.version}})

    def wake(self, _conn=None, _pid=None, _channel=None, payload: str | None = None) -> None:
        """NOTIFY alertd_wake 'module name' (or anything else: every module) ran somewhere; work is waiting."""
        self._woken.add(payload or "*")
        self._wake.set()

    async def _sleep_s(self) -> float:
        """Sleep until the earliest due work, at most the poll interval."""
        poll = self.ctx.settings.engine_poll_s
        now = self.ctx.clock.now()
        soonest = poll
        for module in self.modules:
            if module.name in self.stood_down:
                continue  # its work is a newer release's: waking for it would only spin
            due = await module.next_due(self.pool)
            if due is not None:
                soonest = min(soonest, max(0.0, (due - now).total_seconds()))
        return soonest

    async def _ensure_listener(self) -> None:
        """(Re)open the LISTEN connection; without it the engine still runs, on its poll interval."""
        if self._listener is not None and not self._listener.is_closed():
            return
        try:
            self._listener = await connect_primary(self.dsn)
            await self._listener.add_listener("alertd_wake", self.wake)
        except (*CONNECTION_LOST, asyncpg.PostgresError) as exc:
            self._listener = None
            log.warning("engine cannot listen; polling only", extra={"fields": {"error": str(exc)}})

    async def run(self) -> None:
        """Run until cancelled. A failing cycle is logged and retried; the database stays the truth.

        A full cycle (every module) runs when the earliest due work or the poll interval comes; a NOTIFY in
        between runs only the module it names, so a stream of alerts does not re-check every deadline each time.
        """
        loop = asyncio.get_running_loop()
        names = {m.name for m in self.modules}
        full_at = loop.time()
        try:
            while True:
                await self._ensure_listener()
                woken, self._woken = self._woken, set()
                self._wake.clear()
                full = loop.time() >= full_at or not woken <= names
                try:
                    await self.run_once(only=None if full else woken)
                    if full:
                        full_at = loop.time() + await self._sleep_s()
                except (*CONNECTION_LOST, asyncpg.PostgresError) as exc:
                    # A failover (no primary yet) or a passing error: the database is the truth, try again.
                    log.warning("engine cycle failed", extra={"fields": {"error": str(exc)}})
                    full_at = loop.time() + self.ctx.settings.engine_poll_s
                timeout = full_at - loop.time()
                if timeout > 0:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._wake.wait(), timeout)
                        await asyncio.sleep(self.DEBOUNCE_S)
        finally:
            if self._listener is not None:
                with contextlib.suppress(Exception):
                    await self._listener.close()
