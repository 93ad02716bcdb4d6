"""Retention: an open alert keeps everything; a closed one loses its trail, exact place and words on the right day
and not before; security events and the audit log go after the audit period; a dry run changes nothing."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest

from alertd.engine.retention import purge
from alertd.service.timeline import security_event
from alertd.store import queries
from alertd.web.keys import ENGINE
from tests.helpers import bearer, device_token, enrol, fix, officer_token, offset, seed_responders
from tests.integration.test_cli import cli_env, run  # noqa: F401 - cli_env is a fixture

# Everything a purge may touch, as the test sees it (compared before and after).
SNAPSHOT = {
    "alerts": "SELECT id, ST_AsText(location) AS loc, location_accuracy_m, purged_at FROM alerts ORDER BY id",
    "fixes": "SELECT alert_id, ST_AsText(location) AS loc FROM location_fixes ORDER BY id",
    "events": "SELECT id, data FROM alert_events ORDER BY id",
    "dispatch_notes": "SELECT id, note FROM dispatches ORDER BY id",
    "outbox": "SELECT id, payload FROM outbox ORDER BY id",
    "security": "SELECT id FROM security_events ORDER BY id",
    "audit": "SELECT id FROM audit_log ORDER BY id",
    "purges": "SELECT id FROM retention_purges ORDER BY id",
}


async def snapshot(db) -> dict:
    return {name: [dict(r) for r in await db.fetch(sql)] for name, sql in SNAPSHOT.items()}


async def _raise(client, settings, clock, db, km: float, moves: int = 2):
    """An app alert with a trail of fixes; (alert id, device token)."""
    person = await enrol(db, clock.now())
    token = device_token(settings, person, clock.now(), ttl_s=400 * 86400)
    resp = await client.post("/v1/alerts", json={"client_alert_id": "a", "location": fix(*offset(km, 0.123))},
                             headers=bearer(token))
    assert resp.status == 201
    alert_id = (await resp.json())["alert_id"]
    for i in range(moves):
        resp = await client.post(f"/v1/alerts/{alert_id}/locations",
                                 json=fix(*offset(km + 0.01 * (i + 1), 0.123), when=clock.now()),
                                 headers=bearer(token))
        assert resp.status in (200, 201, 202), await resp.text()
    # her SMS on the timeline, as the SMS channel records it
    await db.fetchval(queries.record_inbound_sms_with_note, f"SM{uuid.uuid4().hex}", clock.now(), "added",
                      uuid.UUID(alert_id), {"note": "help, I am at the school on Abay street", "flags": []})
    return alert_id, token


@pytest.fixture
async def two_alerts(app_client, settings, clock, db):
    """One alert closed (cancelled with her PIN, an officer's note on it) and one still open, both with trails."""
    await seed_responders(db)
    closed, token = await _raise(app_client, settings, clock, db, km=0.5)
    still_open, _ = await _raise(app_client, settings, clock, db, km=1.5)
    dispatch = await db.fetchval("SELECT id FROM dispatches WHERE alert_id = $1 AND responder_id = 'pol-1'",
                                 uuid.UUID(still_open))
    officer = bearer(officer_token(settings, "pol-1", clock.now(), ttl_s=400 * 86400))
    for status, note in (("acknowledged", None), ("en_route", "she is at her sister's, blue gate")):
        path = "ack" if status == "acknowledged" else "status"
        resp = await app_client.post(f"/v1/dispatches/{dispatch}/{path}",
                                     json={"status": status, "note": note}, headers=officer)
        assert resp.status == 200, await resp.text()
    resp = await app_client.post(f"/v1/alerts/{closed}/cancel", json={"pin": "1234"}, headers=bearer(token))
    assert resp.status == 200
    closed_at = await db.fetchval("SELECT closed_at FROM alerts WHERE id = $1", uuid.UUID(closed))
    assert closed_at == clock.now()
    return uuid.UUID(closed), uuid.UUID(still_open)


async def _retention(client, clock) -> int:
    return (await client.app[ENGINE].run_once(only={"retention"}))["retention"]


async def test_closed_alert_is_purged_on_the_right_day_and_not_before(app_client, settings, clock, db, two_alerts):
    closed, still_open = two_alerts
    start = clock.now()
    exact = await db.fetchval("SELECT ST_AsText(location) FROM alerts WHERE id = $1", closed)
    assert await db.fetchval("SELECT count(*) FROM location_fixes WHERE alert_id = $1", closed) == 3

    clock.set(start + timedelta(days=settings.retention_precise_days) - timedelta(seconds=1))
    before = await snapshot(db)
    assert await _retention(app_client, clock) == 0
    assert await snapshot(db) == before

    clock.set(start + timedelta(days=settings.retention_precise_days))
    assert await _retention(app_client, clock) > 0
    assert await db.fetchval("SELECT count(*) FROM location_fixes WHERE alert_id = $1", closed) == 0
    row = await db.fetchrow("SELECT ST_Y(location::geometry) AS lat, ST_X(location::geometry) AS lon, "
                            "ST_AsText(location) AS wkt, location_accuracy_m, purged_at FROM alerts WHERE id = $1",
                            closed)
    assert row["wkt"] != exact and row["purged_at"] == clock.now()
    assert round(row["lat"], 2) == pytest.approx(row["lat"], abs=1e-9)  # on the 0.01-degree grid
    assert round(row["lon"], 2) == pytest.approx(row["lon"], abs=1e-9)
    moved = await db.fetchval("SELECT ST_Distance(location, ST_GeogFromText($2)) FROM alerts WHERE id = $1",
                              closed, exact)
    assert 0 < moved < 1000 and row["location_accuracy_m"] >= 1000
    events = [r["data"] for r in await db.fetch("SELECT data FROM alert_events WHERE alert_id = $1", closed)]
    assert not [d for d in events if "note" in d]
    assert [d for d in events if d.get("note_purged")]
    places = [r["payload"] for r in await db.fetch("SELECT payload FROM outbox WHERE alert_id = $1 "
                                                   "AND payload ? 'lat'", closed)]
    assert places and all(round(p["lat"], 2) == p["lat"] and round(p["lon"], 2) == p["lon"] for p in places)

    # the open alert keeps everything, though it is as old
    assert await db.fetchval("SELECT count(*) FROM location_fixes WHERE alert_id = $1", still_open) == 3
    assert await db.fetchval("SELECT purged_at FROM alerts WHERE id = $1", still_open) is None
    notes = await db.fetch("SELECT data FROM alert_events WHERE alert_id = $1 AND data ? 'note'", still_open)
    assert len(notes) == 2  # her SMS and the officer's note
    assert await db.fetchval("SELECT note FROM dispatches WHERE alert_id = $1 AND note IS NOT NULL", still_open)

    # recorded with counts only; a second pass has nothing left to do
    record = await db.fetchrow("SELECT actor, counts FROM retention_purges")
    assert record["actor"] == "engine"
    assert record["counts"]["alerts_coarsened"] == 1 and record["counts"]["location_fixes_deleted"] == 3
    assert all(isinstance(v, int) for v in record["counts"].values())
    clock.advance(3600)
    assert await _retention(app_client, clock) == 0


async def test_open_alert_is_never_purged(app_client, settings, clock, db, two_alerts):
    _, still_open = two_alerts
    clock.advance(10 * 365 * 86400)
    await _retention(app_client, clock)
    assert await db.fetchval("SELECT count(*) FROM location_fixes WHERE alert_id = $1", still_open) == 3
    assert await db.fetchval("SELECT count(*) FROM alert_events WHERE alert_id = $1 AND data ? 'note'",
                             still_open) == 2


async def test_security_events_and_audit_log_go_after_the_audit_period(app_client, settings, clock, db):
    start = clock.now()
    await security_event(db, start, "bad_token", "http:192.0.2.1")
    await db.execute("INSERT INTO audit_log (at, actor, action) VALUES ($1, 'officer-pol-1', 'read_alert')", start)
    clock.set(start + timedelta(days=settings.retention_audit_days) - timedelta(seconds=1))
    await _retention(app_client, clock)
    assert await db.fetchval("SELECT count(*) FROM security_events") == 1
    assert await db.fetchval("SELECT count(*) FROM audit_log") == 1
    assert await db.fetchval("SELECT count(*) FROM security_episodes") == 1
    clock.set(start + timedelta(days=settings.retention_audit_days))
    assert await _retention(app_client, clock) == 3  # the event, its refusal episode, the audit entry
    assert await db.fetchval("SELECT count(*) FROM security_events") == 0
    assert await db.fetchval("SELECT count(*) FROM security_episodes") == 0
    assert await db.fetchval("SELECT count(*) FROM audit_log") == 0


async def test_dry_run_counts_what_would_go_and_changes_nothing(app_client, settings, clock, db, two_alerts):
    clock.advance(settings.retention_precise_days * 86400)
    before = await snapshot(db)
    would = await purge(db, settings, clock.now(), actor="cli", dry_run=True)
    assert would["alerts_coarsened"] == 1 and would["location_fixes_deleted"] == 3
    assert await snapshot(db) == before
    removed = await purge(db, settings, clock.now(), actor="cli")
    assert removed == would  # the dry run counted exactly what a real purge removes
    assert await db.fetchval("SELECT count(*) FROM retention_purges WHERE actor = 'cli'") == 1


async def test_the_timeline_stays_append_only_but_for_the_purge_of_a_note(db, two_alerts):
    closed, _ = two_alerts
    event = await db.fetchrow("SELECT id, data FROM alert_events WHERE alert_id = $1 AND data ? 'note'", closed)
    with pytest.raises(asyncpg.RaiseError, match="append-only"):
        await db.execute("UPDATE alert_events SET type = 'x' WHERE id = $1", event["id"])
    with pytest.raises(asyncpg.RaiseError, match="append-only"):
        await db.execute("UPDATE alert_events SET data = data || '{\"note\": \"rewritten\"}' WHERE id = $1",
                         event["id"])
    with pytest.raises(asyncpg.RaiseError, match="append-only"):
        await db.execute("DELETE FROM alert_events WHERE id = $1", event["id"])


async def test_purge_command_dry_run_then_real(cli_env, capsys, db):
    long_ago = datetime.now(UTC) - timedelta(days=cli_env.retention_audit_days + 1)
    await security_event(db, long_ago, "bad_token", "http:192.0.2.1")
    code, out = await run(capsys, "purge", "--dry-run")
    assert code == 0 and out["dry_run"] is True
    assert out["would_remove"]["security_events_deleted"] == 1
    assert await db.fetchval("SELECT count(*) FROM security_events") == 1
    code, out = await run(capsys, "purge")
    assert code == 0 and out["removed"]["security_events_deleted"] == 1
    assert await db.fetchval("SELECT count(*) FROM security_events") == 0
    # the episode that counted on that event (its source address) goes with it
    assert out["removed"]["security_episodes_deleted"] == 1
    assert await db.fetchval("SELECT count(*) FROM security_episodes") == 0
    assert await db.fetchval("SELECT counts->>'security_events_deleted' FROM retention_purges "
                             "WHERE actor = 'cli'") == "1"


async def test_sms_texts_triage_and_unknown_numbers_go_after_the_precise_period(app_client, settings, clock, db,
                                                                                two_alerts):
    closed, still_open = two_alerts
    start = clock.now()
    # what an SMS to a responder said about the closed alert, as the SMS notifier records it
    outbox_id = await db.fetchval("SELECT id FROM outbox WHERE alert_id = $1 AND payload ? 'lat' LIMIT 1", closed)
    await db.execute(queries.begin_sms_send, outbox_id, "twilio", "Dispatch K7Q2: 50.005,70.002 by 12:01", start)
    # the duty desk's triage: one message resolved, one not; numbers of senders nobody enrolled
    for sid, phone in (("SMold", "+77015550001"), ("SMopen", "+77015550002")):
        await db.fetchval(queries.insert_sms_triage, sid, phone, "he took my phone, Abay street 12", start)
    await db.execute("UPDATE sms_triage SET resolved_at = $1 WHERE message_sid = 'SMold'", start)
    closed_person = await db.fetchval("SELECT person_id FROM alerts WHERE id = $1", closed)
    open_person = await db.fetchval("SELECT person_id FROM alerts WHERE id = $1", still_open)
    await db.execute(queries.insert_sms_contact, "+77015550003", closed_person, start)
    await db.execute(queries.insert_sms_contact, "+77015550004", open_person, start)

    clock.set(start + timedelta(days=settings.retention_precise_days) - timedelta(seconds=1))
    await _retention(app_client, clock)
    assert await db.fetchval("SELECT body FROM sms_messages WHERE outbox_id = $1", outbox_id) != ""
    assert await db.fetchval("SELECT count(*) FROM sms_triage WHERE body <> ''") == 2
    assert await db.fetchval("SELECT count(*) FROM sms_contacts") == 2

    clock.set(start + timedelta(days=settings.retention_precise_days))
    await _retention(app_client, clock)
    assert await db.fetchval("SELECT body FROM sms_messages WHERE outbox_id = $1", outbox_id) == ""
    triage = {r["message_sid"]: (r["phone"], r["body"]) for r in await db.fetch(
        "SELECT message_sid, phone, body FROM sms_triage")}
    assert triage["SMold"] == ("", "")  # resolved a period ago: her number and words are gone
    assert triage["SMopen"] == ("+77015550002", "he took my phone, Abay street 12")  # the desk still needs it
    # her number is forgotten once her alerts are closed long enough; a number with an open alert stays
    assert [r["phone"] for r in await db.fetch("SELECT phone FROM sms_contacts")] == ["+77015550004"]
    counts = await db.fetchval("SELECT counts FROM retention_purges ORDER BY id DESC LIMIT 1")
    assert counts["sms_bodies_removed"] == 1 and counts["sms_triage_removed"] == 1
    assert counts["sms_contacts_removed"] == 1
