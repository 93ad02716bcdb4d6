"""Timers by SMS: `<code phrase> <minutes>` starts one, the PIN alone checks in, each answered with nothing; the
phrase alone still raises her alert, and a PIN is never kept as a note."""

from __future__ import annotations

from alertd.web.keys import ENGINE
from tests.fake_twilio import fake_twilio, inbound, sign, sms_client, sms_settings  # noqa: F401  (fixtures)
from tests.helpers import enrol, offset, refusals, seed_responders

EMPTY = '<?xml version="1.0" encoding="UTF-8"?><Response />'
PHONE = "+77015550071"


async def _text(sms_client, sms_settings, body, phone=PHONE):
    resp = await inbound(sms_client, sms_settings, phone, body)
    assert resp.status == 200 and await resp.text() == EMPTY
    return resp


async def test_phrase_and_minutes_start_a_timer_the_pin_checks_it_in(sms_client, sms_settings, clock, db):
    await seed_responders(db)
    await enrol(db, clock.now(), phone=PHONE, code_phrase="Көк қызғалдақ", home=offset(1))
    await _text(sms_client, sms_settings, "кок кызгалдак 45")
    timer = await db.fetchrow("SELECT id, status, channel, device_id, started_at, due_at FROM timers")
    assert (timer["status"], timer["channel"], timer["device_id"]) == ("running", "sms", None)
    assert (timer["due_at"] - timer["started_at"]).total_seconds() == 45 * 60
    assert await db.fetchval("SELECT count(*) FROM alerts") == 0
    assert await db.fetchval("SELECT count(*) FROM outbox") == 0  # nothing sent to her or anyone

    await _text(sms_client, sms_settings, " 1234 ")
    assert await db.fetchval("SELECT status FROM timers") == "checked_in"
    clock.advance(3600)
    assert (await sms_client.app[ENGINE].run_once())["timers"] == 0
    assert await db.fetchval("SELECT count(*) FROM alerts") == 0
    assert {r["outcome"] for r in await db.fetch("SELECT outcome FROM sms_inbound")} == {"timer_started",
                                                                                         "timer_pin"}


async def test_an_sms_timer_fires_when_not_checked_in(sms_client, sms_settings, clock, db):
    await seed_responders(db)
    await enrol(db, clock.now(), phone=PHONE, code_phrase="blue tulip", home=offset(1))
    await _text(sms_client, sms_settings, "Blue tulip, 10")
    clock.advance(10 * 60)
    assert (await sms_client.app[ENGINE].run_once())["timers"] == 1
    alert = await db.fetchrow("SELECT a.channel, a.location_source FROM alerts a JOIN timers t ON t.alert_id = a.id")
    assert dict(alert) == {"channel": "timer", "location_source": "home"}


async def test_duress_pin_by_sms_checks_in_and_raises_a_duress_alert(sms_client, sms_settings, clock, db):
    await seed_responders(db)
    await enrol(db, clock.now(), phone=PHONE, code_phrase="blue tulip", home=offset(1))
    await _text(sms_client, sms_settings, "blue tulip 30")
    await _text(sms_client, sms_settings, "9999")
    timer = await db.fetchrow("SELECT status, duress, alert_id FROM timers")
    assert timer["status"] == "checked_in" and timer["duress"]
    alert = await db.fetchrow("SELECT channel, duress, priority FROM alerts WHERE id = $1", timer["alert_id"])
    assert dict(alert) == {"channel": "timer", "duress": True, "priority": "high"}


async def test_wrong_pin_by_sms_changes_nothing_is_recorded_and_never_kept(sms_client, sms_settings, clock, db):
    await seed_responders(db)
    await enrol(db, clock.now(), phone=PHONE, home=offset(1))  # no code phrase: any other text raises an alert
    await db.execute("INSERT INTO timers (id, person_id, client_timer_id, channel, started_at, due_at) "
                     "SELECT gen_random_uuid(), id, 'x', 'sms', $1::timestamptz, $1::timestamptz + interval '30 minutes' "
                     "FROM people", clock.now())
    await _text(sms_client, sms_settings, "0000")
    assert await db.fetchval("SELECT status FROM timers") == "running"
    assert await db.fetchval("SELECT wrong_pins FROM timers") == 1
    assert await refusals(db, "wrong_pin") == 1
    assert await db.fetchval("SELECT count(*) FROM alerts") == 0
    assert await db.fetchval("SELECT count(*) FROM alert_events WHERE data::text LIKE '%0000%'") == 0


async def test_the_phrase_alone_or_with_other_words_still_raises_her_alert(sms_client, sms_settings, clock, db):
    await seed_responders(db)
    await enrol(db, clock.now(), phone=PHONE, code_phrase="blue tulip", home=offset(1))
    await _text(sms_client, sms_settings, "blue tulip 0")  # not a duration: the phrase means what it always did
    assert await db.fetchval("SELECT count(*) FROM timers") == 0
    assert await db.fetchval("SELECT channel FROM alerts") == "sms"


async def test_pin_with_no_timer_keeps_its_old_meaning(sms_client, sms_settings, clock, db):
    await seed_responders(db)
    await enrol(db, clock.now(), phone=PHONE, code_phrase="blue tulip", home=offset(1))
    await _text(sms_client, sms_settings, "1234")
    assert await db.fetchval("SELECT outcome FROM sms_inbound") == "ignored"  # no phrase, no timer: nothing
    assert await db.fetchval("SELECT count(*) FROM alerts") == 0


async def test_timer_by_sms_while_her_alert_is_open_is_not_a_note(sms_client, sms_settings, clock, db):
    await seed_responders(db)
    await enrol(db, clock.now(), phone=PHONE, code_phrase="blue tulip", home=offset(1))
    await _text(sms_client, sms_settings, "blue tulip")  # her alert
    await _text(sms_client, sms_settings, "blue tulip 20")
    assert await db.fetchval("SELECT count(*) FROM timers") == 1
    await _text(sms_client, sms_settings, "1234")
    assert await db.fetchval("SELECT status FROM timers") == "checked_in"
    notes = [r["data"]["note"] for r in await db.fetch("SELECT data FROM alert_events WHERE data ? 'note'")]
    assert notes == ["blue tulip"]
