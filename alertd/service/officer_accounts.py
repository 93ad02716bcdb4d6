"""Console accounts: argon2id passwords, rate-limited sign-in, sessions that end on sign-out, supervisor views."""

from __future__ import annotations

import asyncio
import functools
import math
import re
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

import asyncpg
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from alertd import auth
from alertd.context import Context
from alertd.core.model import Conflict, DomainError, Invalid, NotFound
from alertd.service.timeline import security_event
from alertd.store import queries

ROLES = ("officer", "supervisor")
LANGUAGES = ("kk", "ru", "en")
TOKEN_TTL_S = 15 * 60  # a console token is short-lived; the page renews it while its session lives
SESSION_TTL = timedelta(hours=12)  # one duty shift; then the officer signs in again
# Sign-in throttles the attacker, not the account: failures count per username from one source, and per source
# over all usernames. Past the free ones, each further attempt from that source waits a delay that doubles with
# every failure, from the last failure on. A throttled attempt checks no password and counts for nothing, so waiting
# it out always works; the same account signs in from anywhere else meanwhile.
FAILURE_WINDOW = timedelta(hours=1)  # failures older than this no longer count
FREE_PER_ACCOUNT = 5  # failures of one username from one source before the delay starts
FREE_PER_SOURCE = 30  # failures from one source, whatever the usernames, before the delay starts
FIRST_DELAY = timedelta(seconds=30)
MAX_DELAY = timedelta(minutes=15)
NEAR_DEADLINE = timedelta(seconds=30)
RECENT = timedelta(hours=24)
# Notices about a survivor's button (silent, battery low) or her channels (one proved it works by a test) rather
# than about an alert.
SUPERVISION_TEMPLATES = ("supervision", "button_silent", "button_low_battery", "channel_proven")
_USERNAME = re.compile(r"^[a-z0-9][a-z0-9._@-]{1,62}$")
# Digit runs that could be a phone number are masked in provider errors shown on the console.
_NUMBER = re.compile(r"\+?\d[\d\s().-]{5,}\d")

_hasher = PasswordHasher()


@functools.cache
def _dummy() -> str:
    """Checked when the username is unknown, so a wrong user costs the same as a wrong password (made on first
    use, not at import: every command line start would pay for it)."""
    return _hasher.hash("no-such-officer-\x00")


class SignInRefused(DomainError):
    """Wrong username or password, or a disabled account: one answer for all, so accounts cannot be probed."""

    status, code = 401, "unauthorized"

    def __init__(self) -> None:
        super().__init__("wrong username or password")


class TooManyAttempts(DomainError):
    status, code = 429, "too_many_attempts"

    def __init__(self, retry_after_s: int) -> None:
        super().__init__("too many failed sign-ins; try again later")
        self.retry_after_s = retry_after_s


@dataclass(frozen=True)
class SignedIn:
    token: str
    expires_at: datetime
    session_expires_at: datetime
    officer: dict


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def _password_matches(hash_: str | None, password: str) -> bool:
    try:
        return _hasher.verify(hash_ or _dummy(), password) and hash_ is not None
    except (VerificationError, InvalidHashError):
        return False


def check_account(username: str, password: str | None, role: str | None, language: str | None) -> None:
    """Refuse malformed account fields with a message that says what is wrong."""
    if not _USERNAME.match(username):
        raise Invalid("username must be 2-63 characters: lowercase letters, digits, . _ @ -")
    if password is not None and not 10 <= len(password) <= 256:
        raise Invalid("password must be 10 to 256 characters")
    if role is not None and role not in ROLES:
        raise Invalid(f"role must be one of {', '.join(ROLES)}")
    if language is not None and language not in LANGUAGES:
        raise Invalid(f"language must be one of {', '.join(LANGUAGES)}")


def profile(row) -> dict:
    """An account as the console and the admin API show it (never the hash)."""
    return {
        "username": row["username"], "responder_id": row["responder_id"], "role": row["role"],
        "language": row["language"], "region": row["region"], "responder_kind": row["responder_kind"],
        "responder_name": row["responder_name"], "disabled": row["disabled_at"] is not None,
        "last_sign_in_at": row["last_sign_in_at"].isoformat() if row["last_sign_in_at"] else None,
    }


async def add(conn: asyncpg.Connection, now: datetime, *, username: str, password: str, responder_id: str,
              role: str = "officer", language: str = "ru") -> dict:
    """Create a console account for a responder; 409 when the username is taken."""
    username = username.strip().lower()
    check_account(username, password, role, language)
    if await conn.fetchrow(queries.check_responder, responder_id) is None:
        raise Conflict(f"no responder {responder_id}")
    password_hash = await asyncio.get_running_loop().run_in_executor(None, hash_password, password)
    if await conn.fetchval(queries.insert_officer, username, password_hash, responder_id, role, language,
                           now) is None:
        raise Conflict(f"username {username} is taken")
    return profile(await conn.fetchrow(queries.get_officer, username))


async def update(conn: asyncpg.Connection, now: datetime, username: str, *, password: str | None = None,
                 responder_id: str | None = None, role: str | None = None, language: str | None = None,
                 disabled: bool | None = None) -> dict:
    """Change an account; a new password, responder or role, or disabling it, ends its open sessions."""
    check_account(username, password, role, language)
    if responder_id is not None and await conn.fetchrow(queries.check_responder, responder_id) is None:
        raise Conflict(f"no responder {responder_id}")
    password_hash = None
    if password is not None:
        password_hash = await asyncio.get_running_loop().run_in_executor(None, hash_password, password)
    async with conn.transaction():
        if await conn.fetchval(queries.update_officer, username, password_hash, responder_id, role, language,
                               now, disabled) is None:
            raise NotFound("no such officer")
        if password is not None or responder_id is not None or role is not None or disabled:
            await conn.execute(queries.end_officer_sessions, username, now)
    return profile(await conn.fetchrow(queries.get_officer, username))


async def list_all(conn: asyncpg.Connection) -> list[dict]:
    return [profile(row) for row in await conn.fetch(queries.list_officers)]


def _token(ctx: Context, row, session_id: uuid.UUID, now: datetime, session_ends: datetime) -> tuple[str, datetime]:
    """A short-lived JWT bound to the account's responder and role (and region, for a supervisor).

    It never outlives its session: /v1 endpoints check only the token, not the session.
    """
    ttl_s = max(1, min(TOKEN_TTL_S, int((session_ends - now).total_seconds())))
    token = auth.issue(ctx.settings, role=row["role"], sub=row["username"], ttl_s=ttl_s, now=now,
                       responder_id=row["responder_id"], sid=str(session_id),
                       region=row["region"] if row["role"] == "supervisor" else None)
    return token, now + timedelta(seconds=ttl_s)


def throttle_delay(failures: int, free: int) -> timedelta:
    """How long after the last failure the next attempt must wait: none for the first `free`, then doubling."""
    if failures < free:
        return timedelta(0)
    return min(FIRST_DELAY * 2 ** min(failures - free, 16), MAX_DELAY)


async def _claim_attempt(conn: asyncpg.Connection, now: datetime, username: str, source: str) -> timedelta:
    """Count this attempt as failed before its password is checked (parallel guesses cannot slip past the limit),
    unless the source must still wait: then how long, and nothing is counted."""
    async with conn.transaction():
        await conn.execute(queries.lock_sign_in_source, source)
        await conn.execute(queries.forget_sign_in_failures, source, now - FAILURE_WINDOW)
        counts = await conn.fetchrow(queries.count_sign_in_failures, username, source)
        waits = [timedelta(0)]
        if counts["by_account"]:
            waits.append(counts["last_by_account"] + throttle_delay(counts["by_account"], FREE_PER_ACCOUNT) - now)
        if counts["by_source"]:
            waits.append(counts["last_by_source"] + throttle_delay(counts["by_source"], FREE_PER_SOURCE) - now)
        if (wait := max(waits)) > timedelta(0):
            return wait
        await conn.execute(queries.insert_sign_in_failure, now, username, source)
    return timedelta(0)


async def sign_in(pool: asyncpg.Pool, ctx: Context, username: str, password: str, source: str) -> SignedIn:
    """Check the password (always one argon2 verification) unless the source must wait; every failure is a
    security event (`bad_sign_in`, `sign_in_throttled`)."""
    username = username.strip().lower()[:64]
    now = ctx.clock.now()
    async with pool.acquire() as conn:
        wait = await _claim_attempt(conn, now, username, source)
        if wait > timedelta(0):
            retry_after_s = math.ceil(wait.total_seconds())
            await security_event(conn, now, "sign_in_throttled", f"console:{source}", username=username,
                                 retry_after_s=retry_after_s)
            raise TooManyAttempts(retry_after_s)
        row = await conn.fetchrow(queries.get_officer, username)
    stored = row["password_hash"] if row is not None else None
    ok = await asyncio.get_running_loop().run_in_executor(None, _password_matches, stored, password)
    if not ok or row["disabled_at"] is not None:
        async with pool.acquire() as conn:
            await security_event(conn, now, "bad_sign_in", f"console:{source}", username=username)
        raise SignInRefused()
    async with pool.acquire() as conn, conn.transaction():
        session_id = uuid.uuid4()
        await conn.execute(queries.insert_officer_session, session_id, username, now, now + SESSION_TTL)
        await conn.execute(queries.stamp_officer_sign_in, username, now)
        await conn.execute(queries.clear_sign_in_failures, username, source)
    token, expires_at = _token(ctx, row, session_id, now, now + SESSION_TTL)
    return SignedIn(token, expires_at, now + SESSION_TTL, profile(row))


async def renew(pool: asyncpg.Pool, ctx: Context, session_id: str | None) -> SignedIn:
    """A fresh token for a live session; a signed-out, expired or disabled one gets 401."""
    now = ctx.clock.now()
    try:
        key = uuid.UUID(session_id or "")
    except ValueError:
        raise SignInRefused() from None
    async with pool.acquire() as conn:
        session = await conn.fetchrow(queries.get_live_officer_session, key, now)
        if session is None:
            raise SignInRefused()
        row = await conn.fetchrow(queries.get_officer, session["username"])
    token, expires_at = _token(ctx, row, key, now, session["expires_at"])
    return SignedIn(token, expires_at, session["expires_at"], profile(row))


async def sign_out(pool: asyncpg.Pool, ctx: Context, session_id: str | None) -> None:
    try:
        key = uuid.UUID(session_id or "")
    except ValueError:
        return
    async with pool.acquire() as conn:
        await conn.execute(queries.end_officer_session, key, ctx.clock.now())


async def session_is_live(pool: asyncpg.Pool, ctx: Context, session_id: str | None) -> bool:
    try:
        key = uuid.UUID(session_id or "")
    except ValueError:
        return False
    async with pool.acquire() as conn:
        return await conn.fetchrow(queries.get_live_officer_session, key, ctx.clock.now()) is not None


def _row(row) -> dict:
    """A row as JSON: uuids and times as strings."""
    out = {}
    for key, value in dict(row).items():
        if isinstance(value, datetime):
            value = value.isoformat()
        elif isinstance(value, uuid.UUID):
            value = str(value)
        out[key] = value
    return out


def mask_numbers(text: str | None) -> str | None:
    return _NUMBER.sub("…", text) if text else text


async def region_view(pool: asyncpg.Pool, now: datetime, region: str) -> dict:
    """What a supervisor of a region must watch: open alerts, deadlines, escalations, triage, failures, notices."""
    since = now - RECENT
    async with pool.acquire() as conn:
        alerts = [_row(r) for r in await conn.fetch(queries.list_region_alerts, region)]
        deadlines = [_row(r) for r in await conn.fetch(queries.list_region_deadlines, region, now + NEAR_DEADLINE)]
        escalations = [_row(r) for r in await conn.fetch(queries.list_region_escalations, region, since)]
        notices = [_row(r) for r in await conn.fetch(queries.list_region_notices, region, since)]
        failures = [_row(r) for r in await conn.fetch(queries.list_region_outbox_failures, region)]
    for failure in failures:
        failure["last_error"] = mask_numbers(failure["last_error"])
    return {
        "region": region, "now": now.isoformat(),
        "supervision": [n for n in notices if n["template"] in SUPERVISION_TEMPLATES],
        "open_alerts": [a for a in alerts if a["status"] == "open" and not a["triage"]],
        "unanswered": [a for a in alerts if a["status"] == "unanswered"],
        "triage": [a for a in alerts if a["triage"]],
        "deadlines": deadlines, "escalations": escalations, "outbox_failures": failures,
        "notices": [n for n in notices if n["template"] not in SUPERVISION_TEMPLATES],
    }


async def responder_notices(pool: asyncpg.Pool, now: datetime, responder_id: str) -> list[dict]:
    """Button supervision notices addressed to a responder (a caseworker) in the last day."""
    async with pool.acquire() as conn:
        rows = await conn.fetch(queries.list_responder_notices, responder_id, now - RECENT,
                                list(SUPERVISION_TEMPLATES))
    return [_row(r) for r in rows]


async def dispatched_responders(pool: asyncpg.Pool, alert_id: str) -> list[dict]:
    async with pool.acquire() as conn:
        return [_row(r) for r in await conn.fetch(queries.list_alert_responders, uuid.UUID(alert_id))]


async def reveal_contact(pool: asyncpg.Pool, now: datetime, *, actor: str, alert_id: str, reason: str) -> dict:
    """An admin reads the phone numbers of the person behind an alert; the reveal is written to the audit log first."""
    try:
        key = uuid.UUID(alert_id)
    except ValueError:
        raise NotFound("no such alert") from None
    async with pool.acquire() as conn, conn.transaction():
        alert = await conn.fetchrow(queries.get_alert, key)
        if alert is None:
            raise NotFound("no such alert")
        person_id = alert["person_id"]
        await conn.execute(queries.insert_audit, now, actor, "reveal_contact", key,
                           {"person_id": person_id, "reason": reason})
        phones = [r["phone"] for r in await conn.fetch(queries.list_person_phones, person_id)]
    return {"alert_id": alert_id, "person_id": person_id, "phones": phones}
