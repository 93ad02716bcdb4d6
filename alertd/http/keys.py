"""Typed keys for what the application holds."""

from __future__ import annotations

import asyncpg
from aiohttp import web

from alertd.engine import Engine
from alertd.http.metrics import Metrics
from alertd.mqtt.client import BrokerConnection
from alertd.mqtt.ingest import Ingest
from alertd.notifiers import Registry
from alertd.service.context import Context
from alertd.service.group_commit import GroupCommit

CTX = web.AppKey("ctx", Context)
POOL = web.AppKey("pool", asyncpg.Pool)
BROKER = web.AppKey("broker", BrokerConnection)
ENGINE = web.AppKey("engine", Engine)
NOTIFIERS = web.AppKey("notifiers", Registry)
METRICS = web.AppKey("metrics", Metrics)
HUB = web.AppKey("hub", object)
RUN_ENGINE = web.AppKey("run_engine", bool)
INGEST = web.AppKey("ingest", Ingest)
INTAKE = web.AppKey("intake", GroupCommit)
BUDGETS = web.AppKey("budgets", object)  # http.budgets.RequestBudgets
