"""The intake yardstick: a minimal aiohttp + asyncpg server that answers POST /v1/alerts with one INSERT.

No token check, no location, no dispatch: the floor of what any HTTP-to-PostgreSQL intake costs on this machine.

    python bench/baseline_server.py --dsn postgresql://... --port 8090 [--pool 10]
"""

from __future__ import annotations

import argparse
import json
import uuid
from datetime import UTC, datetime

import asyncpg
from aiohttp import web

POOL = web.AppKey("pool", asyncpg.Pool)

SCHEMA = """CREATE TABLE IF NOT EXISTS baseline_alerts (
    id uuid PRIMARY KEY, client_alert_id text NOT NULL, body jsonb NOT NULL, created_at timestamptz NOT NULL)"""
INSERT = "INSERT INTO baseline_alerts (id, client_alert_id, body, created_at) VALUES ($1, $2, $3::jsonb, $4)"


async def raise_alert(request: web.Request) -> web.Response:
    raw = await request.text()
    body = json.loads(raw) if raw else {}
    alert_id = uuid.uuid4()
    async with request.app[POOL].acquire() as conn:
        await conn.execute(INSERT, alert_id, str(body.get("client_alert_id", "")), raw, datetime.now(UTC))
    return web.json_response({"alert_id": str(alert_id), "status": "open"}, status=201)


async def ready(_request: web.Request) -> web.Response:
    return web.json_response({"status": "ready"})


def create_app(dsn: str, pool_size: int) -> web.Application:
    app = web.Application()

    async def pool(app: web.Application):
        app[POOL] = await asyncpg.create_pool(dsn, min_size=pool_size, max_size=pool_size)
        async with app[POOL].acquire() as conn:
            await conn.execute(SCHEMA)
        yield
        await app[POOL].close()

    app.cleanup_ctx.append(pool)
    app.router.add_post("/v1/alerts", raise_alert)
    app.router.add_get("/readyz", ready)
    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dsn", required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--pool", type=int, default=10, help="connections (alertd's default pool is 10)")
    args = parser.parse_args()
    web.run_app(create_app(args.dsn, args.pool), host="127.0.0.1", port=args.port, access_log=None,
                print=None)


if __name__ == "__main__":
    main()
