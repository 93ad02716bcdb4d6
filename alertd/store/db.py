"""Connection pool with the codecs alertd relies on."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Awaitable, Callable
from typing import TypeVar
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import orjson

from alertd.store.queries import queries

# No primary answers: the database went away (or never answered), is shutting down or starting up, or only a
# standby is left (during a failover, until Patroni promotes it). Trying again alone or with other work will not
# help until a primary is back. A transaction cut off this way may or may not have committed: whoever retries
# must go through the idempotency keys (client_alert_id, (device_id, seq), MessageSid), never a blind insert.
# InternalClientError covers TargetServerAttributeNotMatched (only standbys answer) and what asyncpg raises for a
# pooled connection the server closed while shutting down ("cannot switch to state 12; another operation is in
# progress", seen in a Patroni switchover).
CONNECTION_LOST = (asyncpg.PostgresConnectionError, asyncpg.InterfaceError, asyncpg.CannotConnectNowError,
                   asyncpg.AdminShutdownError, asyncpg.CrashShutdownError, asyncpg.ReadOnlySQLTransactionError,
                   asyncpg.InternalClientError, OSError, TimeoutError)
T = TypeVar("T")
# Each host of ALERTD_DATABASE_URL gets this long to answer a new connection (connect, authenticate, say whether
# it is the primary): long enough for a loaded server, short enough that a dead one does not stall a failover.
CONNECT_TIMEOUT_S = 5.0


async def retry_while_unavailable(attempt: Callable[[], Awaitable[T]], hold_s: float) -> T:
    """attempt() again while no primary answers, for at most hold_s (then its last error).

    Only for idempotent work: an attempt cut off at its commit may have committed, and the next one must find
    that out through the idempotency key, not do it twice."""
    loop = asyncio.get_running_loop()
    give_up = loop.time() + hold_s
    delay = 0.1
    while True:
        try:
            return await attempt()
        except CONNECTION_LOST:
            if loop.time() + delay >= give_up:
                raise
            await asyncio.sleep(delay)
            delay = min(delay * 2, 1.0)


# Connecting failed for a reason the configured URL explains: nobody listens, no such host or database, refused.
_CANNOT_CONNECT = (*CONNECTION_LOST, asyncpg.InvalidCatalogNameError, asyncpg.InvalidAuthorizationSpecificationError,
                   asyncpg.InvalidPasswordError, ValueError)


class DatabaseUnavailable(ConnectionError):
    """The database URL could not be connected to; `reason` says why in the driver's words."""

    def __init__(self, dsn: str, reason: BaseException) -> None:
        self.dsn = dsn
        self.reason = reason
        super().__init__(f"{type(reason).__name__}: {reason}")


# The outbox and the pending dispatches are queues: every message sent and every deadline met leaves a dead row
# version in the queue's index until VACUUM removes it, and each claim reads past them. The outbox's queue is its
# own small partition, vacuumed after every 500 dead rows (migration 0009), so PostgreSQL's default naptime
# (60 s) is enough (bench/deadlines.py, 10k deadlines over a minute: p99 93 ms late at 60 s, 13 ms at 5 s);
# with autovacuum off, or checked more rarely than that, a burst slows every claim. The setting is the server's,
# so alertd warns.
QUEUE_NAPTIME_MAX_S = 60


def vacuum_advice(autovacuum_on: bool, naptime_s: int) -> str | None:
    """What is wrong with the server's autovacuum settings for alertd's queues, if anything."""
    if not autovacuum_on:
        return "autovacuum is off: the outbox and deadline queues will slow down with every message sent"
    if naptime_s > QUEUE_NAPTIME_MAX_S:
        return (f"autovacuum_naptime is {naptime_s} s: set it to {QUEUE_NAPTIME_MAX_S} s or less "
                f"(postgresql.conf), or bursts of alerts slow the outbox and deadline claims")
    return None


async def ping(conn: asyncpg.Connection) -> bool:
    """Does the database answer on this connection?"""
    return bool(await conn.fetchval(queries.ping) == 1)


async def check_vacuum(conn: asyncpg.Connection) -> str | None:
    row = await conn.fetchrow(queries.get_vacuum_settings)
    return vacuum_advice(row["autovacuum"] == "on", int(row["naptime_s"]))


def json_bytes(value) -> bytes:
    """A json/jsonb parameter's JSON (UTF-8). orjson: every alert encodes a dozen timeline details and outbox
    payloads and decodes what the outbox sends, at a tenth of the stdlib's cost (docs/benchmarks.md); keys that
    are not strings become strings, as with the stdlib."""
    return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS)


def json_text(value) -> str:
    """A json parameter (text format)."""
    return json_bytes(value).decode()


def jsonb_binary(value) -> bytes:
    """A jsonb parameter in PostgreSQL's binary format: a version byte (1), then the JSON text."""
    return b"\x01" + json_bytes(value)


def jsonb_value(data: bytes):
    """A jsonb column's value from PostgreSQL's binary format (version 1)."""
    if data[:1] != b"\x01":
        raise ValueError(f"jsonb binary format version {data[:1]!r}: only version 1 is known")
    return orjson.loads(memoryview(data)[1:])


async def _init_connection(conn: asyncpg.Connection) -> None:
    # jsonb in the binary format, so that an array of jsonb (a group's event details and message payloads) travels
    # as a binary array: in the text format PostgreSQL parsed each array whole, quotes and escapes, before parsing
    # its values as JSON (array_in: 5% of PostgreSQL's CPU under full load; docs/benchmarks.md).
    await conn.set_type_codec("jsonb", encoder=jsonb_binary, decoder=jsonb_value, schema="pg_catalog",
                              format="binary")
    await conn.set_type_codec("json", encoder=json_text, decoder=orjson.loads, schema="pg_catalog")


class PooledConnection(asyncpg.Connection):
    """alertd never changes session state on a pooled connection (no SET, LISTEN, advisory lock or temp table:
    listeners and migrations use their own connections), so releasing one needs no reset query: one round trip
    fewer per request. asyncpg still rolls back an open transaction on release."""

    def get_reset_query(self) -> str:
        return ""


def host_urls(dsn: str) -> list[str]:
    """One URL per host of a multi-host URL (postgresql://u@h1:5432,h2:5432/db?...), in order, each keeping the
    rest (user, database, target_session_attrs); a one-host URL as it is."""
    parts = urlsplit(dsn)
    userinfo, at, hosts = parts.netloc.rpartition("@")
    if "," not in hosts:
        return [dsn]
    return [urlunsplit(parts._replace(netloc=f"{userinfo}{at}{host}")) for host in hosts.split(",")]


# A machine that dies without a word (power, kernel panic, a cut cable) leaves every connection to it open: a
# query sent on one waits for Linux's retransmissions (~15 minutes), and an idle one is never noticed. Keepalive
# probes (after 5 s idle, every 2 s, 3 misses) and TCP_USER_TIMEOUT (unacknowledged data for 10 s) drop such a
# connection in about 11 s: the request gets 503, the pool reconnects to whichever host is the primary.
KEEPALIVE = ((socket.SOL_SOCKET, "SO_KEEPALIVE", 1), (socket.IPPROTO_TCP, "TCP_KEEPIDLE", 5),
             (socket.IPPROTO_TCP, "TCP_KEEPINTVL", 2), (socket.IPPROTO_TCP, "TCP_KEEPCNT", 3),
             (socket.IPPROTO_TCP, "TCP_USER_TIMEOUT", 10_000))


def notice_dead_peer(conn: asyncpg.Connection) -> asyncpg.Connection:
    """Turn on KEEPALIVE on a connection's TCP socket (what the platform has of it; nothing for a Unix socket).
    asyncpg exposes no socket options, so its transport is reached through the connection's `_transport`."""
    transport = getattr(conn, "_transport", None)
    sock = transport.get_extra_info("socket") if transport is not None else None
    if sock is None or sock.family not in (socket.AF_INET, socket.AF_INET6):
        return conn
    for level, name, value in KEEPALIVE:
        if hasattr(socket, name):
            sock.setsockopt(level, getattr(socket, name), value)
    return conn


async def connect_primary(dsn: str, *, timeout: float = CONNECT_TIMEOUT_S, **kwargs) -> asyncpg.Connection:
    """A connection to the host of the URL that suits it (with target_session_attrs=primary: the primary), every
    host tried at once, each within `timeout`.

    asyncpg tries a multi-host URL's hosts one after the other within one timeout (60 s by default): a machine
    that is powered off drops packets instead of refusing, so with it first in the list every connection would
    wait on it until the timeout and never reach the new primary.

    JIT compilation is off for alertd's sessions: its statements are short, and a plan whose estimate crosses
    jit_above_cost (a table grown faster than its statistics) spent 650-870 ms compiling a 3-row read
    (docs/benchmarks.md). Each prepared statement is planned once (plan_cache_mode force_generic_plan): for a
    statement over unnest($1::text[]) a custom plan always looks cheaper than the generic one, so PostgreSQL
    re-planned the intake's lookups on every call, 0.3-0.4 ms each, more than running them. The hot statements
    are written for a plan made once (index probes per key, LATERAL ... LIMIT 1), whatever the table's size."""
    kwargs["server_settings"] = {"jit": "off", "plan_cache_mode": "force_generic_plan",
                                 **(kwargs.get("server_settings") or {})}
    urls = host_urls(dsn)
    if len(urls) == 1:
        return notice_dead_peer(await asyncpg.connect(dsn, timeout=timeout, **kwargs))
    attempts = [asyncio.ensure_future(asyncpg.connect(url, timeout=timeout, **kwargs)) for url in urls]
    chosen = None
    try:
        error: BaseException | None = None
        for attempt in asyncio.as_completed(attempts):
            try:
                chosen = await attempt
                return notice_dead_peer(chosen)
            except (*CONNECTION_LOST, asyncpg.PostgresError) as exc:
                error = exc
        assert error is not None
        raise error
    finally:
        for attempt in attempts:
            if not attempt.cancel() and not attempt.cancelled() and attempt.exception() is None \
                    and attempt.result() is not chosen:
                attempt.result().terminate()  # connected too, but another host answered first


async def create_pool(dsn: str, min_size: int = 2, max_size: int = 10) -> asyncpg.Pool:
    """A pool whose connections are warmed: the first PostGIS query on a connection costs ~9 ms."""
    try:
        pool = await asyncpg.create_pool(dsn, min_size=min_size, max_size=max_size, init=_init_connection,
                                         connection_class=PooledConnection, connect=connect_primary)
    except _CANNOT_CONNECT as exc:
        raise DatabaseUnavailable(dsn, exc) from exc
    for _ in range(min_size):
        async with pool.acquire() as conn:
            await conn.fetchval(queries.warm_postgis)
    return pool


async def connect(dsn: str) -> asyncpg.Connection:
    try:
        conn = await connect_primary(dsn)
    except _CANNOT_CONNECT as exc:
        raise DatabaseUnavailable(dsn, exc) from exc
    await _init_connection(conn)
    return conn
