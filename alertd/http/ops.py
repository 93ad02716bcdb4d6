"""Operations endpoints: liveness, readiness, metrics, the API spec."""

from __future__ import annotations

import asyncio
import hmac
import logging

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST

from alertd.http.openapi import SPEC
from alertd.service.timeline import security_event
from alertd.store.db import ping
from alertd.web.errors import ApiError
from alertd.web.keys import BROKER, CTX, ENGINE, METRICS, POOL
from alertd.web.security import bearer, client_address

log = logging.getLogger("alertd.http.ops")
routes = web.RouteTableDef()


@routes.get("/healthz")
async def healthz(_request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def checks(app: web.Application) -> dict[str, bool]:
    """Does the database answer, is the broker connection up? (Kept in alertd_ready{check} as well.)"""
    result = {"database": False, "broker": app[BROKER].is_connected}
    try:
        async with asyncio.timeout(2):
            async with app[POOL].acquire() as conn:
                result["database"] = await ping(conn)
    except (OSError, TimeoutError, Exception):
        result["database"] = False
    for name, ok in result.items():
        if app[METRICS].set_ready(name, ok):  # said once per outage, not on every probe
            log.warning("not ready", extra={"fields": {"check": name}})
    return result


@routes.get("/readyz")
async def readyz(request: web.Request) -> web.Response:
    """200 only when the database answers and the broker connection is up.

    Anyone may ask, so the answer says no more than ready or not: which part is down (a broker outage means
    buttons cannot raise alerts) is in the log and in alertd_ready{check}, behind the metrics token.
    """
    ok = all((await checks(request.app)).values())
    return web.json_response({"status": "ready" if ok else "not ready"}, status=200 if ok else 503)


@routes.get("/metrics")
async def metrics(request: web.Request) -> web.Response:
    ctx = request.app[CTX]
    token = ctx.settings.metrics_token
    if token and not hmac.compare_digest(bearer(request) or "", token):
        async with request.app[POOL].acquire() as conn:
            await security_event(conn, ctx.clock.now(), "bad_metrics_token", f"http:{client_address(request)}",
                                 path=request.path)
        raise ApiError(401, "unauthorized", "a metrics token is required")
    await checks(request.app)
    engine = request.app.get(ENGINE)
    body = await request.app[METRICS].render(request.app[POOL], ctx.settings, ctx.clock.now(),
                                             engine.last_cycle_at if engine else None,
                                             engine.module_states() if engine else None)
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})


@routes.get("/openapi.json")
async def openapi(_request: web.Request) -> web.Response:
    return web.json_response(SPEC)
