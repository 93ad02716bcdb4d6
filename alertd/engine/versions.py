"""Engine module versions: during a rolling upgrade only the newest release runs a module (GoAlert's processinglock).

Each module class carries a `name` and an integer `version` (raise it when the module's behaviour changes). The
database records, per module, the version the cluster runs (engine_versions). Every transaction in which a module
does its work opens with `hold`: the module's advisory lock, shared, and the recorded version.

- recorded == ours: the module runs, as before;
- recorded newer: this instance is an old release; `OtherVersion` rolls the transaction back, nothing fires;
- recorded older, or none: this instance is the upgrade; `OtherVersion` rolls back, and the engine calls
  `take_over`, which takes the same lock exclusively (so it waits until every transaction still running the module
  under the old version has committed) and records ours. Every later `hold` of an old instance, including one that
  was queued behind the upgrade, reads the new version and stands down.
"""

from __future__ import annotations

from datetime import datetime
from typing import Protocol

import asyncpg

from alertd.store import queries


class Versioned(Protocol):
    name: str
    version: int


class OtherVersion(Exception):
    """The database records another version of this module than this instance's (None: none recorded yet)."""

    def __init__(self, module: Versioned, recorded: int | None) -> None:
        super().__init__(f"engine module {module.name}: this instance has version {module.version}, "
                         f"the database records {recorded}")
        self.recorded = recorded
        # A newer release runs the module: this instance stands it down. Otherwise this instance is the newer one.
        self.newer = recorded is not None and recorded > module.version


async def hold(conn: asyncpg.Connection, module: Versioned) -> None:
    """Inside the module's transaction: hold its version lock until commit; raise OtherVersion unless ours is recorded."""
    check(module, await conn.fetchval(queries.hold_engine_version, module.name))


def check(module: Versioned, recorded: int | None) -> None:
    """Raise OtherVersion unless the version the database records is the module's (for a module whose statement
    holds the lock itself: the outbox's claim)."""
    if recorded != module.version:
        raise OtherVersion(module, recorded)


async def take_over(pool: asyncpg.Pool, module: Versioned, now: datetime) -> bool:
    """Record this instance's (newer) version of the module, once the old version's transactions have ended.

    False when an equal or newer version was recorded meanwhile (another instance of this release got there
    first, or a newer release did): the next `hold` tells which.
    """
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute(queries.lock_engine_version, module.name)
        return await conn.fetchval(queries.record_engine_version, module.name, module.version, now) is not None
