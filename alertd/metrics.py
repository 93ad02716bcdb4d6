"""Prometheus metrics: process counters plus database gauges read at scrape time (true across instances)."""

from __future__ import annotations

from datetime import datetime, timedelta

import asyncpg
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from alertd.core.model import KINDS
from alertd.settings import Settings
from alertd.store import queries

SMS_WINDOW = timedelta(minutes=15)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.alerts_received = Counter("alertd_alerts_received", "Alerts received by this instance",
                                       ["channel", "outcome"], registry=r)
        # Traccar forwards each event once: what it sent that raised nothing is counted here, by why (not_alarm,
        # not_sos, unknown_tracker, no_open_alert, no_position); SOS alerts count in alerts_received.
        self.traccar_ignored = Counter("alertd_traccar_ignored", "Traccar forwards that raised or added nothing",
                                       ["reason"], registry=r)
        self.traccar_locations = Counter("alertd_traccar_locations",
                                         "Tracker positions added to their person's open alert", registry=r)
        self.requests_refused = Counter("alertd_requests_refused", "Requests refused over their budget (429)",
                                        ["budget"], registry=r)
        self.escalations = Counter("alertd_escalations", "Missed deadlines of real alerts this instance escalated",
                                   ["kind"], registry=r)
        # Drills (docs/drills.md) are counted apart: never in a real alert's figures.
        self.drills_started = Counter("alertd_drills_started", "Drills started through this instance", registry=r)
        self.drill_escalations = Counter("alertd_drill_escalations", "Missed deadlines of drills this instance "
                                         "escalated", ["kind"], registry=r)
        self.drill_alerts = Gauge("alertd_drill_alerts", "Drill alerts by status", ["status"], registry=r)
        self.deadline_lateness = Histogram(
            "alertd_deadline_lateness_seconds", "How late after its deadline a missed dispatch was escalated",
            buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60), registry=r)
        self.timer_lateness = Histogram(
            "alertd_timer_lateness_seconds", "How late after its due time an expired check-in timer raised her alert",
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
        # What deploy/prometheus/alerts.yml pages on (database gauges are the same on every instance).
        self._ready: dict[str, bool] = {}
        self.ready = Gauge("alertd_ready", "1 when this instance's check passes (database, broker)", ["check"],
                           registry=r)
        self.engine_cycle = Gauge("alertd_engine_last_cycle_timestamp_seconds",
                                  "When this instance's engine last finished a pass (Unix time)", registry=r)
        self.stood_down = Gauge("alertd_engine_module_stood_down", "1 while this instance leaves an engine module "
                                "to a newer release (rolling upgrade)", ["module"], registry=r)
        self.overdue = Gauge("alertd_deadlines_overdue", "Pending dispatches past their deadline", ["kind"],
                             registry=r)
        self.overdue_oldest = Gauge("alertd_deadlines_overdue_oldest_seconds",
                                    "How long past its deadline the oldest pending dispatch is", ["kind"], registry=r)
        self.outbox_oldest = Gauge("alertd_outbox_oldest_pending_seconds",
                                   "Age of the oldest message waiting to be sent", ["channel"], registry=r)
        self.sms_delivery = Gauge("alertd_sms_recent", "SMS to responders updated in the last 15 minutes, by "
                                  "delivery state", ["provider", "delivery"], registry=r)
        self.on_duty = Gauge("alertd_responders_on_duty", "Responders on duty", ["region", "kind"], registry=r)
        self.buttons = Gauge("alertd_buttons", "Live buttons heard from at least once: all, and silent ones",
                             ["state"], registry=r)
        self.replication_lag = Gauge("alertd_db_replication_lag_seconds",
                                     "Replay lag of each PostgreSQL standby, as the primary sees it", ["standby"],
                                     registry=r)

    def set_ready(self, check: str, ok: bool) -> bool:
        """Record a readiness check; True when it has just failed (it passed, or was never checked, before)."""
        was = self._ready.get(check)
        self._ready[check] = ok
        self.ready.labels(check).set(1 if ok else 0)
        return not ok and was is not False

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

    async def render(self, pool: asyncpg.Pool, settings: Settings, now: datetime,
                     engine_cycle_at: float | None = None, stood_down: dict[str, bool] | None = None) -> bytes:
        async with pool.acquire() as conn:
            rows = {name: await conn.fetch(getattr(queries, name), *args) for name, args in (
                ("count_alerts", ()), ("count_drill_alerts", ()), ("count_dispatches", ()), ("count_outbox_unsent", ()),
                ("count_overdue_deadlines", (now,)), ("measure_outbox_oldest", (now,)),
                ("count_sms_deliveries", (now - SMS_WINDOW,)),
                ("count_on_duty", (now - timedelta(seconds=settings.unit_silence_s),)),
                ("count_buttons", (now - timedelta(seconds=settings.button_silence_s),)),
                ("measure_replication_lag", ()))}
        for gauge in (self.alerts, self.drill_alerts, self.dispatches, self.outbox_depth, self.overdue, self.overdue_oldest,
                      self.outbox_oldest, self.sms_delivery, self.on_duty, self.replication_lag):
            gauge.clear()
        for row in rows["count_alerts"]:
            self.alerts.labels(row["status"]).set(row["n"])
        for row in rows["count_drill_alerts"]:
            self.drill_alerts.labels(row["status"]).set(row["n"])
        for row in rows["count_dispatches"]:
            self.dispatches.labels(row["kind"], row["status"]).set(row["n"])
        for row in rows["count_outbox_unsent"]:
            self.outbox_depth.labels(row["channel"], row["status"]).set(row["n"])
        for kind in KINDS:  # zero when nothing is overdue, so that an alert on them resolves
            self.overdue.labels(kind).set(0)
            self.overdue_oldest.labels(kind).set(0)
        for row in rows["count_overdue_deadlines"]:
            self.overdue.labels(row["kind"]).set(row["n"])
            self.overdue_oldest.labels(row["kind"]).set(row["oldest_s"])
        for row in rows["measure_outbox_oldest"]:
            self.outbox_oldest.labels(row["channel"]).set(row["oldest_s"])
        for row in rows["count_sms_deliveries"]:
            self.sms_delivery.labels(row["provider"], row["delivery"]).set(row["n"])
        for row in rows["count_on_duty"]:
            self.on_duty.labels(row["region"], row["kind"]).set(row["n"])
        buttons = rows["count_buttons"][0]
        self.buttons.labels("all").set(buttons["total"])
        self.buttons.labels("silent").set(buttons["silent"])
        for row in rows["measure_replication_lag"]:
            self.replication_lag.labels(row["standby"]).set(row["lag_s"])
        self.engine_cycle.set(engine_cycle_at or 0)
        for module, down in (stood_down or {}).items():
            self.stood_down.labels(module).set(int(down))
        return generate_latest(self.registry)
