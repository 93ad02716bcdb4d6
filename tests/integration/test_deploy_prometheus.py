"""deploy/prometheus/: promtool checks the rules and runs their unit tests; every alertd metric they name is one
/metrics exposes, with the values the rules expect; /metrics can be restricted to a token; a real Prometheus with
prometheus.yml scrapes the service with that token and an alert fires."""

from __future__ import annotations

import asyncio
import re
import shutil
import subprocess
import uuid
from datetime import UTC, datetime
from pathlib import Path

import aiohttp
import pytest

from alertd.local.services import free_port
from tests.helpers import bearer, device_token, enrol, fix, offset, refusals, running_app, seed_responders
from tests.tls_support import render

RULES = Path(__file__).resolve().parents[2] / "deploy" / "prometheus"
PROMTOOL = shutil.which("promtool") or "/usr/bin/promtool"


def _promtool(*args: str) -> subprocess.CompletedProcess:
    if not Path(PROMTOOL).exists():
        pytest.fail("promtool not found: run scripts/setup.sh (installs Debian's prometheus package)")
    return subprocess.run([PROMTOOL, *args], cwd=RULES, capture_output=True, text=True, timeout=60)


def test_promtool_checks_the_rules_and_their_unit_tests_pass():
    check = _promtool("check", "rules", "alerts.yml")
    assert check.returncode == 0, check.stdout + check.stderr
    assert "SUCCESS: 12 rules found" in check.stdout
    unit = _promtool("test", "rules", "alerts.test.yml")
    assert unit.returncode == 0, unit.stdout + unit.stderr
    assert "SUCCESS" in unit.stdout


def _exposed(text: str) -> dict[str, float]:
    """Sample name with labels -> value, from Prometheus text."""
    samples = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, value = line.rsplit(" ", 1)
            samples[name] = float(value)
    return samples


async def test_every_metric_the_rules_name_is_exposed_with_the_right_values(app_client, settings, clock, db):
    await seed_responders(db)
    await db.execute("UPDATE responders SET on_duty = false WHERE kind = 'crisis_centre'")
    person = await enrol(db, clock.now())
    resp = await app_client.post("/v1/alerts", json={"client_alert_id": "m", "location": fix(*offset(1))},
                                 headers=bearer(device_token(settings, person, clock.now())))
    assert resp.status == 201
    clock.advance(settings.ack_deadline_police_post + 5)  # the police deadline passed; no engine ran
    text = await (await app_client.get("/metrics")).text()

    rules = "\n".join(line for line in (RULES / "alerts.yml").read_text().splitlines()
                      if not line.lstrip().startswith("#"))
    named = set(re.findall(r"\balertd_[a-z_]+", rules))
    assert len(named) >= 10
    families = set(re.findall(r"^# TYPE (\S+) ", text, re.MULTILINE))
    for name in named:
        base = re.sub(r"_(bucket|count|sum)$", "", name)
        assert base in families, f"{name} is in alerts.yml but not in /metrics"

    samples = _exposed(text)
    assert samples['alertd_deadlines_overdue{kind="police_post"}'] == 1
    assert samples['alertd_deadlines_overdue_oldest_seconds{kind="police_post"}'] == 5
    assert samples['alertd_deadlines_overdue{kind="mobile_unit"}'] == 0  # zero, so its alert resolves
    assert samples['alertd_responders_on_duty{kind="crisis_centre",region="north"}'] == 0
    assert samples['alertd_responders_on_duty{kind="police_post",region="north"}'] == 4
    assert samples['alertd_ready{check="database"}'] == 1
    assert samples['alertd_buttons{state="silent"}'] == 0
    # (console messages are sent at their commit: what waits for the engine is the log's and the SMS's)
    waiting = await db.fetch("SELECT channel, extract(epoch FROM $1 - min(created_at))::float8 AS s FROM outbox "
                             "WHERE status = 'pending' GROUP BY channel", clock.now())
    assert waiting and all(samples[f'alertd_outbox_oldest_pending_seconds{{channel="{w["channel"]}"}}'] == w["s"] > 0
                           for w in waiting)


async def test_metrics_need_the_token_when_one_is_set(settings, clock, db):
    token = uuid.uuid4().hex
    async with running_app(settings.replace(metrics_token=token), clock) as client:
        for headers in ({}, bearer("wrong"), {"Authorization": token}):
            resp = await client.get("/metrics", headers=headers)
            assert resp.status == 401
            assert (await resp.json())["error"]["code"] == "unauthorized"
        resp = await client.get("/metrics", headers=bearer(token))
        assert resp.status == 200 and "alertd_alerts" in await resp.text()
        assert (await client.get("/healthz")).status == 200  # probes stay open, and say nothing
    assert await refusals(db, "bad_metrics_token") == 3  # one episode (one source, one minute), every one counted


async def test_prometheus_scrapes_alertd_with_the_token_and_an_alert_fires(settings, clock, db, tmp_path):
    """deploy/prometheus/prometheus.yml on Debian's Prometheus, scraping the service with the metrics token: the
    rules load, and SMS the provider reported undelivered make AlertdSmsUndelivered fire."""
    binary = shutil.which("prometheus") or "/usr/bin/prometheus"
    token = uuid.uuid4().hex
    async with running_app(settings.replace(metrics_token=token), clock) as client:
        now = datetime.now(UTC)  # the gauge counts the last 15 minutes of the database's real time
        await db.execute("INSERT INTO sms_messages (outbox_id, provider, state, body, attempted_at, delivery, "
                         "updated_at) VALUES (1, 'twilio', 'accepted', '', $1, 'undelivered', $1)", now)
        (tmp_path / "token").write_text(token)
        (tmp_path / "alerts.yml").write_text((RULES / "alerts.yml").read_text())
        port = free_port()
        config = render((RULES / "prometheus.yml").read_text(), {
            "scrape_interval: 15s": "scrape_interval: 1s",
            "evaluation_interval: 15s": "evaluation_interval: 1s",
            "/etc/prometheus/alertd-alerts.yml": str(tmp_path / "alerts.yml"),
            "/etc/prometheus/alertd-metrics-token": str(tmp_path / "token"),
            '["10.0.0.11:8080", "10.0.0.12:8080"]': f'["127.0.0.1:{client.server.port}"]',
        })
        (tmp_path / "prometheus.yml").write_text(config)
        check = _promtool("check", "config", str(tmp_path / "prometheus.yml"))
        assert check.returncode == 0, check.stdout + check.stderr
        server = subprocess.Popen([binary, f"--config.file={tmp_path / 'prometheus.yml'}",
                                   f"--storage.tsdb.path={tmp_path / 'data'}",
                                   f"--web.listen-address=127.0.0.1:{port}"],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            async with aiohttp.ClientSession(base_url=f"http://127.0.0.1:{port}") as http:
                firing = await _eventually_firing(http, "AlertdSmsUndelivered")
                assert firing["labels"] == {"alertname": "AlertdSmsUndelivered", "provider": "twilio",
                                            "severity": "page"}
                async with http.get("/api/v1/targets") as resp:
                    targets = (await resp.json())["data"]["activeTargets"]
                assert [t["health"] for t in targets] == ["up"]  # scraped with the token
                async with http.get("/api/v1/rules") as resp:
                    groups = (await resp.json())["data"]["groups"]
                assert sum(len(g["rules"]) for g in groups) == 12
                assert all(r["health"] == "ok" for g in groups for r in g["rules"])
        finally:
            server.terminate()
            server.wait(15)
    # nothing was refused: Prometheus sent the token on every scrape
    assert await refusals(db, "bad_metrics_token") == 0


async def _eventually_firing(http, name: str, timeout: float = 60.0) -> dict:
    """The alert once Prometheus reports it firing (it scrapes and evaluates every second here)."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        try:
            async with http.get("/api/v1/alerts") as resp:
                alerts = (await resp.json())["data"]["alerts"]
            for alert in alerts:
                if alert["labels"]["alertname"] == name and alert["state"] == "firing":
                    return alert
        except aiohttp.ClientError:
            pass  # not listening yet
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"{name} never fired")
        await asyncio.sleep(0.5)
