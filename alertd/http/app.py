"""create_app(settings): every long-lived resource is a cleanup_ctx under a typed AppKey."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from aiohttp import web

from alertd.channels.sms import http as sms_http
from alertd.clock import Clock, SystemClock
from alertd.engine import Engine
from alertd.engine.deadlines import Deadlines
from alertd.engine.outbox import Outbox
from alertd.engine.retention import Retention
from alertd.engine.supervision import Supervision
from alertd.http import buttons, console, events, officer, ops, phone, phone_app, static
from alertd.http.budgets import RequestBudgets, budget_middleware
from alertd.http.errors import error_middleware
from alertd.http.events import Hub
from alertd.http.keys import (
    BROKER, BUDGETS, CTX, ENGINE, HUB, INGEST, INTAKE, METRICS, NOTIFIERS, POOL, RUN_ENGINE,
)
from alertd.http.metrics import Metrics
from alertd.mqtt.client import BrokerConnection
from alertd.mqtt.ingest import Ingest
from alertd.mqtt.notifier import MqttNotifier
from alertd.notifiers import Registry
from alertd.notifiers.console import ConsoleNotifier
from alertd.notifiers.log import LogNotifier
from alertd.notifiers.sms import build_sms_notifier
from alertd.service.context import Context
from alertd.service import intake
from alertd.settings import Settings
from alertd.store.db import check_vacuum, create_pool

log = logging.getLogger("alertd")


def build_registry(app: web.Application) -> Registry:
    settings = app[CTX].settings
    registry = Registry()
    registry.register("log", LogNotifier("log"))
    registry.register("console", ConsoleNotifier(app[POOL]))
    registry.register("mqtt", MqttNotifier(app[BROKER]))
    if not settings.twilio_configured and not settings.sms_gateway_url:
        log.warning("Twilio is not configured: SMS to responders goes to the log")
        registry.register("sms", LogNotifier("sms"))
    else:
        registry.register("sms", build_sms_notifier(app[CTX], app[POOL]))
    return registry


async def _pool(app: web.Application):
    s = app[CTX].settings
    app[POOL] = await create_pool(s.database_url, s.db_pool_min, s.db_pool_max)
    async with app[POOL].acquire() as conn:
        if advice := await check_vacuum(conn):
            log.warning("PostgreSQL vacuums too rarely for alertd's queues", extra={"fields": {"advice": advice}})
    yield
    await app[POOL].close()


async def _broker(app: web.Application):
    app[BROKER] = BrokerConnection(app[CTX].settings)
    await app[BROKER].start()
    yield
    await app[BROKER].stop()


async def _hub(app: web.Application):
    app[HUB] = Hub(app[POOL], app[CTX].settings.database_url)
    await app[HUB].start()
    yield
    await app[HUB].stop()


async def _engine(app: web.Application):
    ctx, metrics = app[CTX], app[METRICS]
    app[NOTIFIERS] = build_registry(app)

    def observe(lateness: float, kind: str) -> None:
        metrics.deadline_lateness.observe(max(0.0, lateness))
        metrics.escalations.labels(kind).inc()

    deadlines = Deadlines(ctx, observe=observe)
    modules = [deadlines, Supervision(ctx), Outbox(ctx, app[NOTIFIERS]), Retention(ctx)]
    app[ENGINE] = Engine(app[POOL], ctx, modules, ctx.settings.database_url)
    task = None
    if app[RUN_ENGINE]:
        task = asyncio.create_task(app[ENGINE].run(), name="alertd-engine")
    yield
    if task is not None:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def _intake(app: web.Application):
    """Alerts from the phone app, committed in groups under load (each answered after its own commit)."""
    s = app[CTX].settings
    app[INTAKE] = intake.group_committer(app[POOL], app[CTX], max_group=s.intake_max_group,
                                         committers=s.intake_committers,
                                         observe=app[METRICS].group_observer("app"))
    app[INTAKE].start()
    yield
    await app[INTAKE].stop()


async def _ingest(app: web.Application):
    """Buttons and unit terminals in over MQTT (shared subscription, acked after commit)."""
    if not app[CTX].settings.mqtt_ingest:
        yield
        return
    app[INGEST] = Ingest(app[POOL], app[CTX], observe=app[METRICS].group_observer("buttons"))
    await app[INGEST].start()
    yield
    await app[INGEST].stop()


def create_app(settings: Settings, clock: Clock | None = None, *, run_engine: bool = True) -> web.Application:
    """The whole service. Tests pass a FakeClock and run_engine=False to drive the engine by hand."""
    app = web.Application(middlewares=[error_middleware, budget_middleware], client_max_size=256 * 1024)
    app[CTX] = Context(settings=settings, clock=clock or SystemClock())
    app[BUDGETS] = RequestBudgets.of(app[CTX])
    app[METRICS] = Metrics()
    app[RUN_ENGINE] = run_engine
    app.cleanup_ctx.extend([_pool, _broker, _hub, _engine, _intake, _ingest])
    for module in (phone, officer, events, ops, console, phone_app, buttons):
        app.add_routes(module.routes)
    sms_http.setup(app)
    static.setup(app, console.assets, console.index, phone_app.assets)
    return app
