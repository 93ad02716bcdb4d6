"""Prometheus metrics: process counters plus database gauges read at scrape time (true across instances)."""

from __future__ import annotations

import asyncpg
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from alertd.store import queries


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.alerts_received = Counter("alertd_alerts_received", "Alerts received by this instance",
                                       ["channel", "outcome"], registry=r)
        self.escalations = Counter("alertd_escalations", "Missed deadlines this instance escalated",
                                   ["kind"], registry=r)
        self.deadline_lateness = Histogram(
            "alertd_deadline_lateness_seconds", "How late after its deadline a missed dispatch was escalated",
            buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60), registry=r)
        # Group commit (service/group_commit.py), by what is committed: app alerts, or button messages.
        self.intake_group_size = Histogram(
            "alertd_intake_group_size", "Items committed together in one group commit", ["source"],
            buckets=(1, 2, 4, 8, 16, 32, 64, 128), registry=r)
        self.intake_wait = Histogram(
            "alertd_intake_wait_seconds", "How long an item waited for a free committer", ["source"],
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1), registry=r)
        self.intake_commit = Histogram(
            "alertd_intake_commit_seconds", "How long one group commit took, first statement to commit", ["source"],
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1), registry=r)
        self.alerts = Gauge("alertd_alerts", "Alerts by status", ["status"], registry=r)
        self.dispatches = Gauge("alertd_dispatches", "Dispatches by kind and status", ["kind", "status"], registry=r)
        self.outbox_depth = Gauge("alertd_outbox_depth", "Outbox messages not yet sent", ["channel", "status"],
                                  registry=r)

    def group_observer(self, source: str):
        """GroupCommit's `observe` for this source ("app" or "buttons")."""
        size, wait, commit = (m.labels(source) for m in (self.intake_group_size, self.intake_wait,
                                                          self.intake_commit))

        def observe(items: int, waits: list[float], commit_s: float) -> None:
            size.observe(items)
            commit.observe(commit_s)
            for w in waits:
                wait.observe(w)

        return observe

    async def render(self, pool: asyncpg.Pool) -> bytes:
        async with pool.acquire() as conn:
            alerts = await conn.fetch(queries.metrics_alerts)
            dispatches = await conn.fetch(queries.metrics_dispatches)
            outbox = await conn.fetch(queries.outbox_depth)
        for gauge in (self.alerts, self.dispatches, self.outbox_depth):
            gauge.clear()
        for row in alerts:
            self.alerts.labels(row["status"]).set(row["n"])
        for row in dispatches:
            self.dispatches.labels(row["kind"], row["status"]).set(row["n"])
        for row in outbox:
            self.outbox_depth.labels(row["channel"], row["status"]).set(row["n"])
        return generate_latest(self.registry)
