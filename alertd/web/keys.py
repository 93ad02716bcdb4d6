"""Typed keys for what the application holds that request handlers use (the composition root, alertd/app.py,
fills them; it keeps its own keys for what only it touches)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

import asyncpg
from aiohttp import web

from alertd.context import Context
from alertd.metrics import Metrics
from alertd.service.group_commit import GroupCommit
from alertd.service.ports import BrokerAccounts, Registry

if TYPE_CHECKING:
    from alertd.web.budgets import RequestBudgets


class Connection(Protocol):
    """The service's own broker connection, as /readyz sees it."""

    @property
    def is_connected(self) -> bool: ...


class EngineView(Protocol):
    """The engine, as /metrics sees it."""

    last_cycle_at: float | None  # Unix time

    def module_states(self) -> dict[str, bool]: ...  # each engine module: True while this instance stands it down


CTX = web.AppKey("ctx", Context)
POOL = web.AppKey("pool", asyncpg.Pool)
BROKER = web.AppKey("broker", Connection)
ACCOUNTS = web.AppKey("broker_accounts", BrokerAccounts)
ENGINE = web.AppKey("engine", EngineView)
NOTIFIERS = web.AppKey("notifiers", Registry)
METRICS = web.AppKey("metrics", Metrics)
HUB = web.AppKey("hub", object)  # channels.console.events.Hub
INTAKE = web.AppKey("intake", GroupCommit)
BUDGETS: web.AppKey[RequestBudgets] = web.AppKey("budgets")
