"""Errors as the contract says: JSON {error: {code, message}} with the right status, never cached; every refusal
of a malformed request is recorded as a security event."""

from __future__ import annotations

import logging
from typing import Any

from aiohttp import web

from alertd.core import validate
from alertd.core.model import DomainError
from alertd.service.timeline import security_event
from alertd.store.db import CONNECTION_LOST
from alertd.web.keys import CTX, POOL

log = logging.getLogger("alertd.http")
NO_STORE = {"Cache-Control": "no-store"}
# Refusals of what was sent (not of who sent it: 401/403 are recorded where the token or signature is checked).
RECORDED = {400: "malformed_request", 413: "too_large"}
# While no database primary answers (a failover takes 10-20 s), senders are told to come back this soon: the
# phone app retries 5xx answers by itself, keeping its client_alert_id, so a retry can never make a second alert.
RETRY_AFTER_S = 2


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.headers = status, code, message, headers


def error_response(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> web.Response:
    return web.json_response({"error": {"code": code, "message": message}}, status=status,
                             headers={**NO_STORE, **(headers or {})})


async def _record(request: web.Request, status: int, code: str, message: str) -> None:
    """A malformed request changes nothing but its security event (kept even if it cannot be written)."""
    from alertd.web.security import client_address  # security.py raises ApiError: imported here, not on top

    try:
        ctx = request.app[CTX]
        async with request.app[POOL].acquire() as conn:
            await security_event(conn, ctx.clock.now(), RECORDED[status], f"http:{client_address(request)}",
                                 method=request.method, path=validate.printable(request.path), code=code,
                                 reason=validate.printable(message))
    except Exception:
        log.exception("could not record a refused request", extra={"fields": {"status": status}})


def unavailable_response() -> web.Response:
    """503 while no database primary answers: nothing was changed, or (cut off at the commit) the retry will
    find what was, through its idempotency key."""
    return error_response(503, "unavailable", "the database is unavailable (failing over?); retry shortly",
                          headers={"Retry-After": str(RETRY_AFTER_S)})


@web.middleware
async def error_middleware(request: web.Request, handler):
    try:
        return await handler(request)
    except ApiError as exc:
        status, code, message, headers = exc.status, exc.code, exc.message, exc.headers or {}
    except DomainError as exc:
        status, code, message, headers = exc.status, exc.code, exc.message, {}
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        status, message = exc.status, exc.reason
        code = {404: "not_found", 405: "method_not_allowed", 413: "too_large"}.get(exc.status, "http_error")
        headers = {k: v for k, v in exc.headers.items() if k in ("Allow", "Retry-After")}
    except CONNECTION_LOST as exc:
        log.warning("no database primary answered", extra={"fields": {"path": validate.printable(request.path),
                                                                      "error": type(exc).__name__}})
        return unavailable_response()
    except Exception:
        log.exception("unhandled error", extra={"fields": {"path": validate.printable(request.path)}})
        return error_response(500, "internal", "internal error")
    if status in RECORDED:
        await _record(request, status, code, message)
    return error_response(status, code, message, headers)


async def json_body(request: web.Request, shape: validate.Obj | None = None) -> Any:
    """The request's JSON body (checked by validate.document, then by `shape` when given), or a 400."""
    body = validate.document(await request.read())
    return shape.parse(body) if shape is not None else body
