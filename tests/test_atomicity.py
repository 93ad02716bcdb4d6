"""Invariants 1 and 2: the sender hears "received" only after commit, and everything commits together or not at all."""

from __future__ import annotations

import pytest

from alertd.service import dispatching
from tests.helpers import bearer, device_token, enrol, fix, offset, seed_responders

TABLES = ("alerts", "location_fixes", "dispatches", "alert_events", "outbox")


async def _counts(db) -> dict[str, int]:
    return {t: await db.fetchval(f"SELECT count(*) FROM {t}") for t in TABLES}


@pytest.mark.parametrize("fail_after", [0, 1, 2])
async def test_failure_midway_commits_nothing_and_is_not_acknowledged(app_client, settings, clock, db, monkeypatch,
                                                                      fail_after):
    await seed_responders(db)
    person = await enrol(db, clock.now())
    real = dispatching.dispatch_to
    calls = {"n": 0}

    async def flaky(*args, **kwargs):
        if calls["n"] == fail_after:
            raise ConnectionResetError("database went away mid-transaction")
        calls["n"] += 1
        return await real(*args, **kwargs)

    monkeypatch.setattr(dispatching, "dispatch_to", flaky)
    token = device_token(settings, person, clock.now())
    resp = await app_client.post("/v1/alerts", json={"client_alert_id": "z", "location": fix(*offset(1))},
                                 headers=bearer(token))
    assert resp.status == 500
    assert (await resp.json())["error"]["code"] == "internal"
    assert await _counts(db) == dict.fromkeys(TABLES, 0)

    # the phone retries with the same client_alert_id once things are well: one alert, fully dispatched
    monkeypatch.setattr(dispatching, "dispatch_to", real)
    resp = await app_client.post("/v1/alerts", json={"client_alert_id": "z", "location": fix(*offset(1))},
                                 headers=bearer(token))
    assert resp.status == 201
    counts = await _counts(db)
    assert counts["alerts"] == 1 and counts["dispatches"] == 3
