"""Connection pool with the codecs alertd relies on."""

from __future__ import annotations

import json

import asyncpg

from alertd.store.queries import queries


# The outbox and the pending dispatches are queues: every message sent and every deadline met leaves a dead row
# version in the queue's index until VACUUM removes it, and each claim reads past them. PostgreSQL's default
# autovacuum_naptime (1 min) lets a burst pile up tens of thousands (bench/deadlines.py: 10k deadlines over a
# minute were 3.7 to 13 s late at p99 with it, 17 ms with 5 s). The setting is the server's, so alertd warns.
QUEUE_NAPTIME_S = 5
QUEUE_NAPTIME_MAX_S = 15


def vacuum_advice(autovacuum_on: bool, naptime_s: int) -> str | None:
    """What is wrong with the server's autovacuum settings for alertd's queues, if anything."""
    if not autovacuum_on:
        return "autovacuum is off: the outbox and deadline queues will slow down with every message sent"
    if naptime_s > QUEUE_NAPTIME_MAX_S:
        return (f"autovacuum_naptime is {naptime_s} s: set it to {QUEUE_NAPTIME_S}-{QUEUE_NAPTIME_MAX_S} s "
                f"(postgresql.conf), or bursts of alerts slow the outbox and deadline claims")
    return None


async def check_vacuum(conn: asyncpg.Connection) -> str | None:
    row = await conn.fetchrow(queries.vacuum_settings)
    return vacuum_advice(row["autovacuum"] == "on", int(row["naptime_s"]))


async def _init_connection(conn: asyncpg.Connection) -> None:
    await conn.set_type_codec("jsonb", encoder=json.dumps, decoder=json.loads, schema="pg_catalog")
    await conn.set_type_codec("json", encoder=json.dumps, decoder=json.loads, schema="pg_catalog")


class PooledConnection(asyncpg.Connection):
    """alertd never changes session state on a pooled connection (no SET, LISTEN, advisory lock or temp table:
    listeners and migrations use their own connections), so releasing one needs no reset query: one round trip
    fewer per request. asyncpg still rolls back an open transaction on release."""

    def get_reset_query(self) -> str:
        return ""


async def create_pool(dsn: str, min_size: int = 2, max_size: int = 10) -> asyncpg.Pool:
    """A pool whose connections are warmed: the first PostGIS query on a connection costs ~9 ms."""
    pool = await asyncpg.create_pool(dsn, min_size=min_size, max_size=max_size, init=_init_connection,
                                     connection_class=PooledConnection)
    for _ in range(min_size):
        async with pool.acquire() as conn:
            await conn.fetchval(queries.warm_postgis)
    return pool


async def connect(dsn: str) -> asyncpg.Connection:
    conn = await asyncpg.connect(dsn)
    await _init_connection(conn)
    return conn
