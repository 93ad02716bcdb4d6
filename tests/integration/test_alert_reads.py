"""Reading an alert: a random id, a malformed id and someone else's alert get one answer after the same work, and
every denied read is on record (audit log and security log)."""

from __future__ import annotations

import uuid

from tests.helpers import bearer, device_token, enrol, fix, officer_token, offset, seed_responders


async def test_denied_reads_are_indistinguishable_and_recorded(app_client, settings, clock, db):
    await seed_responders(db)
    person = await enrol(db, clock.now())
    raised = await app_client.post("/v1/alerts", json={"client_alert_id": "a", "location": fix(*offset(0.5))},
                                   headers=bearer(device_token(settings, person, clock.now())))
    alert_id = (await raised.json())["alert_id"]
    stranger = bearer(officer_token(settings, "pol-4", clock.now()))  # pol-4 was not dispatched
    ids = {"random": str(uuid.uuid4()), "malformed": "not-an-id'; --", "someone else's": alert_id,
           "NUL": "a%00b", "lone surrogate": "%ED%A0%80", "long": "x" * 3000}
    for base in ("/v1/alerts/", "/console/api/alerts/"):
        answers = {}
        for what, ident in ids.items():
            resp = await app_client.get(base + ident, headers=stranger)
            answers[what] = (resp.status, await resp.read())
        assert len(set(answers.values())) == 1, answers
        assert next(iter(answers.values()))[0] == 404

    denied = await db.fetch("SELECT actor, alert_id, detail FROM audit_log WHERE action = 'read_alert_denied' "
                            "ORDER BY id")
    requested = [r["detail"]["requested"] for r in denied]
    assert requested[:3] == list(ids.values())[:3] and requested[3] == "a\\x00b" and requested[5] == "x" * 100
    assert len(requested) == 2 * len(ids) and requested[len(ids):] == requested[:len(ids)]
    assert {r["actor"] for r in denied} == {"officer:officer-pol-4"}
    # Who probed her alert is on its record.
    assert [r["alert_id"] for r in denied if r["alert_id"] == uuid.UUID(alert_id)] == [uuid.UUID(alert_id)] * 2
    assert await db.fetchval("SELECT count(*) FROM security_events WHERE kind = 'alert_not_found'") >= 1
    assert await db.fetchval("SELECT count(*) FROM audit_log WHERE action = 'read_alert'") == 0

    # The officer it was dispatched to, and an admin, still read it (audited as before).
    assert (await app_client.get(f"/v1/alerts/{alert_id}",
                                 headers=bearer(officer_token(settings, "pol-1", clock.now())))).status == 200
    assert await db.fetchval("SELECT count(*) FROM audit_log WHERE action = 'read_alert'") == 1
