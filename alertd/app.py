"""The composition root: `create_app(settings)` builds the whole service from its parts.

Settings and the clock (the Context), the database pool, the broker connection, the notifiers by channel, the
engine and its modules, the channels' intake and MQTT ingest, and the HTTP application that serves the channels
(alertd/http/server.py). Each long-lived resource is a cleanup_ctx under a typed AppKey, started in order and
stopped in reverse. Nothing else in alertd builds these; tests and commands come through here.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from aiohttp import web

from alertd.channels.buttons.mqtt import ButtonsIn
from alertd.channels.console.events import Hub
from alertd.channels.sms.outbound import build_sms_notifier
from alertd.channels.units.mqtt import UnitsIn
from alertd.channels.units.notifier import MqttNotifier
from alertd.clock import Clock, SystemClock
from alertd.context import Context
from alertd.engine import Engine, Module
from alertd.engine.deadlines import Deadlines
from alertd.engine.outbox import Outbox
from alertd.engine.retention import Retention
from alertd.engine.statistics import FirstStatistics
from alertd.engine.supervision import Supervision
from alertd.engine.timers import Timers
from alertd.http import server
from alertd.metrics import Metrics
from alertd.mqtt.client import BrokerConnection
from alertd.mqtt.dynsec import broker_accounts
from alertd.mqtt.ingest import Channel, Ingest
from alertd.notifiers.console import ConsoleNotifier
from alertd.notifiers.log import LogNotifier
from alertd.service import intake
from alertd.service.ports import Registry
from alertd.settings import Settings
from alertd.store.db import check_vacuum, create_pool
from alertd.web.budgets import RequestBudgets
from alertd.web.keys import ACCOUNTS, BROKER, BUDGETS, CTX, ENGINE, HUB, INTAKE, METRICS, NOTIFIERS, POOL

# What only the composition root (and the tests that drive it) touch.
RUN_ENGINE = web.AppKey("run_engine", bool)
INGEST = web.AppKey("ingest", Ingest)
OWN_SENDER = web.AppKey("own_sender", Outbox)  # the running engine's outbox sender, for the group commits to hand to
CONNECTION = web.AppKey("connection", BrokerConnection)  # what BROKER is, for the notifiers that publish
log = logging.getLogger("alertd")


def build_registry(app: web.Application) -> Registry:
    settings = app[CTX].settings
    registry = Registry()
    registry.register("log", LogNotifier("log"))
    registry.register("console", ConsoleNotifier(app[POOL]))
    registry.register("mqtt", MqttNotifier(app[CONNECTION]))
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
    broker = BrokerConnection(app[CTX].settings)
    app[BROKER] = app[CONNECTION] = broker
    await broker.start()
    yield
    await broker.stop()


async def _hub(app: web.Application):
    hub = Hub(app[POOL], app[CTX].settings.database_url)
    app[HUB] = hub
    await hub.start()
    yield
    await hub.stop()


async def _engine(app: web.Application):
    ctx, metrics = app[CTX], app[METRICS]
    app[NOTIFIERS] = build_registry(app)

    def observe(lateness: float, kind: str, drill: bool) -> None:
        if drill:  # a drill's misses are the drill report's, never a real alert's statistics
            metrics.drill_escalations.labels(kind).inc()
            return
        metrics.deadline_lateness.observe(max(0.0, lateness))
        metrics.escalations.labels(kind).inc()

    deadlines = Deadlines(ctx, observe=observe)
    timers = Timers(ctx, observe=lambda lateness: metrics.timer_lateness.observe(max(0.0, lateness)))
    outbox = Outbox(ctx, app[NOTIFIERS])
    modules: list[Module] = [deadlines, timers, Supervision(ctx), outbox, Retention(ctx), FirstStatistics(ctx)]
    engine = Engine(app[POOL], ctx, modules, ctx.settings.database_url)
    app[ENGINE] = engine
    tasks = []
    if app[RUN_ENGINE]:
        app[OWN_SENDER] = outbox
        tasks = [asyncio.create_task(engine.run(), name="alertd-engine"),
                 asyncio.create_task(outbox.send_handed(app[POOL]), name="alertd-outbox-handed")]
    yield
    if tasks:
        # The group commits have stopped (their cleanups ran first): what they handed over is sent before the end.
        with contextlib.suppress(Exception):
            await asyncio.wait_for(outbox.deliver_handed(app[POOL]), 5.0)
    for task in tasks:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    await outbox.stop()
    for notifier in app[NOTIFIERS].notifiers.values():
        if hasattr(notifier, "aclose"):  # the SMS providers' HTTP sessions
            await notifier.aclose()


async def _intake(app: web.Application):
    """Alerts from the phone app, committed in groups under load (each answered after its own commit)."""
    s = app[CTX].settings
    app[INTAKE] = intake.group_committer(app[POOL], app[CTX], max_group=s.intake_max_group,
                                         committers=s.intake_committers,
                                         observe=app[METRICS].group_observer("app"), sender=app.get(OWN_SENDER))
    app[INTAKE].start()
    yield
    await app[INTAKE].stop()


async def _ingest(app: web.Application):
    """Buttons and unit terminals in over MQTT (shared subscription, acked after commit)."""
    if not app[CTX].settings.mqtt_ingest:
        yield
        return
    pool, ctx = app[POOL], app[CTX]
    channels: list[Channel] = [ButtonsIn(pool, ctx, observe=app[METRICS].group_observer("buttons"),
                                             sender=app.get(OWN_SENDER)),
                               UnitsIn(pool, ctx)]
    app[INGEST] = Ingest(ctx, channels)
    await app[INGEST].start()
    yield
    await app[INGEST].stop()


def create_app(settings: Settings, clock: Clock | None = None, *, run_engine: bool = True) -> web.Application:
    """The whole service. Tests pass a FakeClock and run_engine=False to drive the engine by hand."""
    app = server.application()
    app[CTX] = Context(settings=settings, clock=clock or SystemClock())
    app[BUDGETS] = RequestBudgets.of(app[CTX])
    app[METRICS] = Metrics()
    app[ACCOUNTS] = broker_accounts(settings)
    app[RUN_ENGINE] = run_engine
    app.cleanup_ctx.extend([_pool, _broker, _hub, _engine, _intake, _ingest])
    return app
