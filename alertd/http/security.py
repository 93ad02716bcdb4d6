"""Who is calling: bearer tokens checked, refusals recorded as security events."""

from __future__ import annotations

import uuid

from aiohttp import web

from alertd import auth
from alertd.http.errors import ApiError
from alertd.http.keys import CTX, POOL
from alertd.service.timeline import security_event
from alertd.store import queries


def bearer(request: web.Request) -> str | None:
    header = request.headers.get("Authorization", "")
    if header.startswith("Bearer "):
        return header[7:].strip()
    # Browsers cannot set headers on a WebSocket: the console passes the token as a query parameter.
    if request.headers.get("Upgrade", "").lower() == "websocket":
        return request.query.get("access_token")
    return None


async def _refuse(request: web.Request, kind: str, status: int, code: str, message: str, **detail) -> ApiError:
    ctx = request.app[CTX]
    async with request.app[POOL].acquire() as conn:
        await security_event(conn, ctx.clock.now(), kind, f"http:{request.remote}", path=request.path, **detail)
    return ApiError(status, code, message)


def _uuid_or_none(value: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(value)
    except ValueError:
        return None


async def principal(request: web.Request, *roles: str) -> auth.Principal:
    """The verified caller, or 401 (no or bad token) / 403 (wrong role)."""
    ctx = request.app[CTX]
    token = bearer(request)
    if not token:
        raise ApiError(401, "unauthorized", "a bearer token is required")
    try:
        who = auth.verify(ctx.settings, token, ctx.clock.now(), allow_expired_device="device" in roles)
    except auth.TokenError as exc:
        raise await _refuse(request, "bad_token", 401, "unauthorized", f"invalid token: {exc}",
                            reason=str(exc)) from None
    if who.role not in roles:
        raise await _refuse(request, "wrong_role", 403, "forbidden", "this token may not do that", role=who.role)
    if who.session_id is not None:
        async with request.app[POOL].acquire() as conn:
            live = await conn.fetchrow(queries.officer_session_live, _uuid_or_none(who.session_id), ctx.clock.now())
        if live is None:
            raise await _refuse(request, "ended_session", 401, "unauthorized", "the session has ended; sign in again")
    if who.role == "device":
        async with request.app[POOL].acquire() as conn:
            device = await conn.fetchrow(queries.device_for_token, who.device_id)
        if device is None or device["revoked_at"] is not None or device["person_id"] != who.person_id:
            raise await _refuse(request, "revoked_device", 401, "unauthorized", "device is not enrolled",
                                device_id=who.device_id)
    return who
