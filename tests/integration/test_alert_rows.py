"""Every timeline event, fix and dispatch names an alert that exists (migration 0024: checked once per statement,
where a foreign key checked each row): a statement that writes one naming no alert fails whole, and an alert is never
removed from under its rows."""

from __future__ import annotations

import uuid

import asyncpg
import pytest

from alertd.context import Context
from alertd.service import intake
from tests.helpers import app_alert, enrol, seed_responders

WRITES = {
    "alert_events": "INSERT INTO alert_events (alert_id, at, type) SELECT a, now(), 'note' FROM unnest($1::uuid[]) a",
    "location_fixes": "INSERT INTO location_fixes (alert_id, location, source, fix_time, received_at) "
                      "SELECT a, 'POINT(76.9 43.2)'::geography, 'gps', now(), now() FROM unnest($1::uuid[]) a",
    "dispatches": "INSERT INTO dispatches (id, alert_id, kind, responder_id, code, ack_deadline, created_at, updated_at) "
                  "SELECT gen_random_uuid(), a, 'police_post', 'pol-1', 'X' || left(md5(random()::text), 8), now(), "
                  "now(), now() FROM unnest($1::uuid[]) a",
}


async def _raised(db, settings, clock) -> uuid.UUID:
    await seed_responders(db)
    person = await enrol(db, clock.now())
    async with db.transaction():
        raised = await intake.create_alerts(db, Context(settings, clock), clock.now(),
                                            [app_alert(person, "a-1", clock)])
    return uuid.UUID(raised[0].alert_id)


@pytest.mark.parametrize("table", WRITES)
async def test_a_statement_writing_a_row_for_no_alert_fails_whole(db, settings, clock, table):
    alert_id = await _raised(db, settings, clock)
    before = await db.fetchval(f"SELECT count(*) FROM {table}")
    with pytest.raises(asyncpg.ForeignKeyViolationError, match="names an alert that does not exist"):
        await db.execute(WRITES[table], [alert_id, uuid.uuid4(), alert_id])
    assert await db.fetchval(f"SELECT count(*) FROM {table}") == before  # the good rows with it: nothing written
    await db.execute(WRITES[table], [alert_id, alert_id])
    assert await db.fetchval(f"SELECT count(*) FROM {table}") == before + 2


@pytest.mark.parametrize("table", ["location_fixes", "dispatches"])
async def test_a_rows_alert_never_changes(db, settings, clock, table):
    alert_id = await _raised(db, settings, clock)
    with pytest.raises(asyncpg.ForeignKeyViolationError, match="never changes"):
        await db.execute(f"UPDATE {table} SET alert_id = $1 WHERE alert_id = $2", uuid.uuid4(), alert_id)
    await db.execute(f"UPDATE {table} SET alert_id = alert_id WHERE alert_id = $1", alert_id)  # the same: allowed


@pytest.mark.parametrize("statement", ["DELETE FROM alerts", "TRUNCATE alerts CASCADE"])
async def test_an_alert_is_never_removed_from_under_its_rows(db, settings, clock, statement):
    alert_id = await _raised(db, settings, clock)
    with pytest.raises(asyncpg.ForeignKeyViolationError, match="never removed"):
        await db.execute(statement)
    assert await db.fetchval("SELECT count(*) FROM alerts WHERE id = $1", alert_id) == 1
    assert await db.fetchval("SELECT count(*) FROM alert_events WHERE alert_id = $1", alert_id) > 0
