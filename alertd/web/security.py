"""Who is calling: bearer tokens checked, refusals recorded as security events."""

from __future__ import annotations

import ipaddress
import uuid

from aiohttp import web

from alertd import auth
from alertd.service.timeline import security_event
from alertd.store import queries
from alertd.web.budgets import limited, spend
from alertd.web.errors import ApiError
from alertd.web.keys import BUDGETS, CTX, POOL


def _address(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        address = ipaddress.ip_address(text.strip())
    except ValueError:
        return None
    return getattr(address, "ipv4_mapped", None) or address


def client_address(request: web.Request) -> str:
    """Who sent the request: the socket's peer, or, when the peer is a trusted proxy (ALERTD_TRUSTED_PROXIES), the
    nearest X-Forwarded-For hop that is not one. Every limit and security event keys on this, never on a header
    an untrusted sender could have written."""
    peer = request.remote or "unknown"
    client = _address(peer)
    if client is None:
        return peer
    trusted = request.app[CTX].settings.trusted_proxy_networks
    hops = [hop for header in request.headers.getall("X-Forwarded-For", ()) for hop in header.split(",")]
    for hop in reversed(hops):
        if not any(client in network for network in trusted):
            break
        address = _address(hop)
        if address is None:  # a malformed hop: the last trusted proxy is as far back as anyone can tell
            break
        client = address
    return str(client)


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
        await security_event(conn, ctx.clock.now(), kind, f"http:{client_address(request)}", path=request.path,
                             **detail)
    return ApiError(status, code, message)


async def refuse_device(request: web.Request, who: auth.Principal) -> ApiError:
    """Record and refuse a signed token whose device is not enrolled (revoked, or never this person's)."""
    return await _refuse(request, "revoked_device", 401, "unauthorized", "device is not enrolled",
                         device_id=who.device_id)


def _uuid_or_none(value: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(value)
    except ValueError:
        return None


async def principal(request: web.Request, *roles: str, allow_expired_device: bool = False,
                    device_checked_later: bool = False) -> auth.Principal:
    """The verified caller, or 401 (no or bad token) / 403 (wrong role). Only where `allow_expired_device` says so
    does an expired device token pass (flagged `expired`): raising her alert, and finishing what it started.
    `device_checked_later`: the caller checks the device is enrolled and live in its own transaction (intake does,
    for a whole group of alerts in one statement) and refuses it with `refuse_device`."""
    ctx = request.app[CTX]
    token = bearer(request)
    if not token:
        raise ApiError(401, "unauthorized", "a bearer token is required")
    try:
        who = auth.verify(ctx.settings, token, ctx.clock.now(), allow_expired_device=allow_expired_device)
    except auth.TokenError as exc:
        raise await _refuse(request, "bad_token", 401, "unauthorized", f"invalid token: {exc}",
                            reason=str(exc)) from None
    if who.role not in roles:
        raise await _refuse(request, "wrong_role", 403, "forbidden", "this token may not do that", role=who.role)
    if who.session_id is not None:
        async with request.app[POOL].acquire() as conn:
            live = await conn.fetchrow(queries.get_live_officer_session, _uuid_or_none(who.session_id), ctx.clock.now())
        if live is None:
            raise await _refuse(request, "ended_session", 401, "unauthorized", "the session has ended; sign in again")
    if who.role == "device" and not device_checked_later:
        async with request.app[POOL].acquire() as conn:
            device = await conn.fetchrow(queries.get_device_for_token, who.device)
        if device is None or device["revoked_at"] is not None or device["person_id"] != who.person_id:
            raise await refuse_device(request, who)
        if limited(request):  # a device's own budget, beside its address's (her alerts spend neither)
            await spend(request, request.app[BUDGETS].device, who.device, "device")
    return who
