"""deploy/prometheus/alerts.yml: promtool checks it and runs its unit tests; every alertd metric it names is one
/metrics exposes, with the values the rules expect; /metrics can be restricted to a token."""

from __future__ import annotations

import re
import shutil
import subprocess
import uuid
from pathlib import Path

import pytest

from tests.helpers import bearer, device_token, enrol, fix, offset, refusals, running_app, seed_responders

RULES = Path(__file__).parent.parent / "deploy" / "prometheus"
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
    pending = await db.fetchval("SELECT extract(epoch FROM $1 - min(created_at))::float8 FROM outbox "
                                "WHERE status = 'pending' AND channel = 'console'", clock.now())
    assert samples['alertd_outbox_oldest_pending_seconds{channel="console"}'] == pending > 0


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
