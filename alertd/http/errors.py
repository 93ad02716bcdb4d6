"""Errors as the contract says: JSON {error: {code, message}} with the right status."""

from __future__ import annotations

import json
import logging

from aiohttp import web

from alertd.core.model import DomainError

log = logging.getLogger("alertd.http")


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.headers = status, code, message, headers


def error_response(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> web.Response:
    return web.json_response({"error": {"code": code, "message": message}}, status=status, headers=headers)


@web.middleware
async def error_middleware(request: web.Request, handler):
    try:
        return await handler(request)
    except ApiError as exc:
        return error_response(exc.status, exc.code, exc.message, exc.headers)
    except DomainError as exc:
        return error_response(exc.status, exc.code, exc.message)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        code = {404: "not_found", 405: "method_not_allowed", 413: "too_large"}.get(exc.status, "http_error")
        return error_response(exc.status, code, exc.reason)
    except Exception:
        log.exception("unhandled error", extra={"fields": {"path": request.path}})
        return error_response(500, "internal", "internal error")


async def json_body(request: web.Request) -> dict | list:
    """The request's JSON body, or a 400 that says what is wrong."""
    try:
        body = await request.json(loads=json.loads)
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise ApiError(400, "malformed", "body is not valid JSON") from None
    if not isinstance(body, dict | list):
        raise ApiError(400, "malformed", "body must be a JSON object")
    return body
