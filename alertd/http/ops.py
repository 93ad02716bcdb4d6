"""Operations endpoints: liveness, readiness, metrics, the API spec."""

from __future__ import annotations

import asyncio

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST

from alertd.http.keys import BROKER, METRICS, POOL
from alertd.http.openapi import SPEC
from alertd.store import queries

routes = web.RouteTableDef()


@routes.get("/healthz")
async def healthz(_request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


@routes.get("/readyz")
async def readyz(request: web.Request) -> web.Response:
    """200 only when the database answers and the broker connection is up."""
    checks = {"database": False, "broker": request.app[BROKER].is_connected}
    try:
        async with asyncio.timeout(2):
            async with request.app[POOL].acquire() as conn:
                checks["database"] = await conn.fetchval(queries.ping) == 1
    except (OSError, TimeoutError, Exception):
        checks["database"] = False
    ok = all(checks.values())
    return web.json_response({"status": "ready" if ok else "not ready", "checks": checks}, status=200 if ok else 503)


@routes.get("/metrics")
async def metrics(request: web.Request) -> web.Response:
    body = await request.app[METRICS].render(request.app[POOL])
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})


@routes.get("/openapi.json")
async def openapi(_request: web.Request) -> web.Response:
    return web.json_response(SPEC)
