"""Invariants 1 and 2: the sender hears "received" only after commit, and everything commits together or not at all."""

from __future__ import annotations

import pytest

from alertd.service import dispatching, timeline
from tests.helpers import bearer, device_token, enrol, fix, offset, seed_responders

TABLES = ("alerts", "location_fixes", "dispatches", "alert_events", "outbox")


async def _counts(db) -> dict[str, int]:
    return {t: await db.fetchval(f"SELECT count(*) FROM {t}") for t in TABLES}


_written = timeline.Batch.written


def _written_then_crash(self, rows):
    """The group's last statement wrote the alerts, dispatches, timeline and outbox rows; then fail: a crash after
    the last statement, before COMMIT."""
    _written(self, rows)
    raise ConnectionResetError("database went away before the commit")


def _failing(*_args, **_kwargs):
    raise ConnectionResetError("database went away mid-transaction")


@pytest.mark.parametrize("target, name, replacement", [
    (dispatching, "nearest_at", _failing),
    (dispatching, "record", _failing),
    (timeline.Batch, "written", _written_then_crash),
])
async def test_failure_midway_commits_nothing_and_is_not_acknowledged(app_client, settings, clock, db, monkeypatch,
                                                                      target, name, replacement):
    await seed_responders(db)
    person = await enrol(db, clock.now())
    monkeypatch.setattr(target, name, replacement)
    token = device_token(settings, person, clock.now())
    resp = await app_client.post("/v1/alerts", json={"client_alert_id": "z", "location": fix(*offset(1))},
                                 headers=bearer(token))
    # not acknowledged: the database went away, so 503 with Retry-After (issue 13: it was 500, which the phone
    # also retries, but which says "our bug" rather than "come back shortly")
    assert resp.status == 503 and resp.headers["Retry-After"] == "2"
    assert (await resp.json())["error"]["code"] == "unavailable"
    assert await _counts(db) == dict.fromkeys(TABLES, 0)

    # the phone retries with the same client_alert_id once things are well: one alert, fully dispatched
    monkeypatch.undo()
    resp = await app_client.post("/v1/alerts", json={"client_alert_id": "z", "location": fix(*offset(1))},
                                 headers=bearer(token))
    assert resp.status == 201
    counts = await _counts(db)
    assert counts["alerts"] == 1 and counts["dispatches"] == 3 and counts["outbox"] == 4  # console for each, SMS for the one with a phone
