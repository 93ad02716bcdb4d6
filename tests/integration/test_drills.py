"""Drills on the real services (docs/drills.md): real responders dispatched by the normal path, every message
DRILL-marked in their language (SMS through fake Twilio, the unit terminal over the secured Mosquitto), the person
a drill names never contacted nor joined, escalation by the engine, the report's figures from acknowledgements at
known clock times, metrics and the supervisor's view keeping drills apart, roles, and `alertd drills`."""

from __future__ import annotations

import asyncio
import json
import uuid
from pathlib import Path

import pytest

from alertd import auth
from alertd.mqtt.dynsec import broker_accounts
from alertd.service import provisioning
from alertd.web.keys import ENGINE
from tests.buttons_support import (  # noqa: F401  (fixtures)
    connected_unit,
    eventually,
    running_service,
    secured_broker,
    secured_broker_process,
    secured_settings,
)
from tests.fake_twilio import (  # noqa: F401  (fixtures)
    FROM_NUMBER,
    fake_twilio,
    sms_client,
    sms_settings,
)
from tests.helpers import bearer, device_token, enrol, fix, officer_token, offset, refusals, responder, seed_responders
from tests.integration.test_cli import cli_env, run  # noqa: F401  (cli_env is a fixture)

HER_PHONE = "+77015550901"


def supervisor(settings, clock, region: str | None = "north", responder_id: str = "pol-1") -> dict:
    claims = {"region": region} if region else {}
    return bearer(auth.issue(settings, role="supervisor", sub=f"sup-{responder_id}", ttl_s=3600, now=clock.now(),
                             responder_id=responder_id, **claims))


def admin(settings, clock) -> dict:
    return bearer(officer_token(settings, "pol-1", clock.now(), role="admin"))


async def _start(client, headers, **body) -> dict:
    resp = await client.post("/v1/drills", json=body, headers=headers)
    assert resp.status == 201, await resp.text()
    return await resp.json()


async def _ack(client, settings, clock, db, alert_id, responder_id: str) -> None:
    dispatch_id = await db.fetchval("SELECT id FROM dispatches WHERE alert_id = $1 AND responder_id = $2 "
                                    "AND status = 'pending'", uuid.UUID(alert_id), responder_id)
    resp = await client.post(f"/v1/dispatches/{dispatch_id}/ack",
                             headers=bearer(officer_token(settings, responder_id, clock.now())))
    assert resp.status == 200, await resp.text()


@pytest.fixture
def drill_settings(settings, secured_broker, fake_twilio):
    return secured_settings(settings, secured_broker).replace(
        twilio_account_sid=fake_twilio.account_sid, twilio_auth_token=fake_twilio.auth_token,
        twilio_from_number=FROM_NUMBER, twilio_api_url=fake_twilio.url, sms_send_timeout_s=1.5)


async def test_a_drill_reaches_real_responders_marked_drill_in_their_language_and_never_her(
        drill_settings, secured_broker, fake_twilio, clock, db):
    await seed_responders(db, [
        responder("pol-1", "police_post", 2, phone="+77010000041", language="en"),
        responder("cc-1", "crisis_centre", 3, phone="+77010000042", language="kk"),
        responder("mu-1", "mobile_unit", 4, phone="+77010000043", language="ru"),
    ])
    her = await enrol(db, clock.now(), phone=HER_PHONE, home=offset(0.5))
    creds = await provisioning.provision_unit(db, broker_accounts(drill_settings), clock.now(), "mu-1")
    unit = await connected_unit(secured_broker, creds, clock)
    async with running_service(drill_settings, clock) as client:
        try:
            assert await asyncio.to_thread(unit.move, *offset(4)) == "Success"
            assert await eventually(lambda: db.fetchval("SELECT last_seen_at FROM responders WHERE id = 'mu-1'"))
            started = await _start(client, supervisor(drill_settings, clock), person_id=her.person_id)
            await client.app[ENGINE].run_once()

            alert = await db.fetchrow("SELECT person_id, device_id, channel, drill, location_source "
                                      "FROM alerts WHERE id = $1", uuid.UUID(started["alert_id"]))
            assert (alert["person_id"], alert["device_id"], alert["channel"], alert["drill"]) == (
                None, None, "drill", True)
            assert alert["location_source"] == "home"  # no fix of hers yet: her home
            codes = {r["responder_id"]: r["code"] for r in await db.fetch("SELECT responder_id, code FROM dispatches")}
            by_to = {m.to: m.body for m in fake_twilio.messages}
            assert by_to["+77010000041"].startswith(f"DRILL: ALERT {codes['pol-1']} police: ")
            assert by_to["+77010000042"].startswith(f"ЖАТТЫҒУ: ДАБЫЛ {codes['cc-1']} дағдарыс орталығы")
            assert by_to["+77010000043"].startswith(f"УЧЕНИЯ: ТРЕВОГА {codes['mu-1']} моб. группа")
            assert fake_twilio.sent_to(HER_PHONE) == [] and fake_twilio.unexpected == []
            for body in by_to.values():
                assert her.person_id not in body and HER_PHONE not in body

            assert await eventually(lambda: _now(unit.dispatches), timeout=20)
            sent = unit.dispatches[0]
            assert (sent["template"], sent["drill"], sent["language"], sent["code"]) == (
                "dispatch", True, "ru", codes["mu-1"])
            assert her.person_id not in json.dumps(sent, ensure_ascii=False)

            # nothing at all was queued for her, her phone or her device
            assert await db.fetchval("SELECT count(*) FROM outbox WHERE recipient = ANY($1::text[])",
                                     [her.person_id, her.device_id, HER_PHONE]) == 0
            # every message about the drill says so, the supervisor's too
            assert await db.fetchval("SELECT bool_and((payload->>'drill')::boolean) FROM outbox WHERE alert_id = $1",
                                     uuid.UUID(started["alert_id"]))
            officer = bearer(officer_token(drill_settings, "pol-1", clock.now()))
            [item] = (await (await client.get("/v1/dispatches", headers=officer)).json())["items"]
            assert (item["drill"], item["channel"], item["person_id"]) == (True, "drill", None)

            # the supervisor ends it: every open dispatch is stood down with a drill-ended message
            resp = await client.post(f"/v1/drills/{started['drill_id']}/end", headers=supervisor(drill_settings, clock))
            assert resp.status == 200
            await client.app[ENGINE].run_once()
            ended = [m.body for m in fake_twilio.messages if m.to == "+77010000041"][-1]
            assert ended == f"DRILL: {codes['pol-1']}: drill ended. Stand down."
            assert await eventually(lambda: _now(len(unit.dispatches) == 2), timeout=20)
            assert (unit.dispatches[1]["template"], unit.dispatches[1]["drill"]) == ("drill_ended", True)
            assert fake_twilio.sent_to(HER_PHONE) == []
        finally:
            await asyncio.to_thread(unit.close)


async def _now(value):
    return value


async def test_a_drill_never_joins_her_real_alert_nor_hers_the_drill(sms_client, sms_settings, fake_twilio, clock,
                                                                     db):
    await seed_responders(db)
    her = await enrol(db, clock.now(), phone=HER_PHONE, home=offset(0.2))
    token = bearer(device_token(sms_settings, her, clock.now()))
    resp = await sms_client.post("/v1/alerts", json={"client_alert_id": "real-1", "location": fix(*offset(0.7))},
                                 headers=token)
    assert resp.status == 201
    real = (await resp.json())["alert_id"]
    started = await _start(sms_client, admin(sms_settings, clock), person_id=her.person_id)
    assert started["alert_id"] != real
    # held at her last fix (offset 0.7 km), not her home
    lat = await db.fetchval("SELECT ST_Y(location::geometry) FROM alerts WHERE id = $1",
                            uuid.UUID(started["alert_id"]))
    assert abs(lat - offset(0.7)[0]) < 1e-6
    # she presses again: a repeat of her real alert, never of the drill
    resp = await sms_client.post("/v1/alerts", json={"client_alert_id": "real-2", "location": fix(*offset(0.8))},
                                 headers=token)
    assert (await resp.json())["alert_id"] == real
    assert await db.fetchval("SELECT repeats FROM alerts WHERE id = $1", uuid.UUID(real)) == 1
    assert await db.fetchval("SELECT repeats FROM alerts WHERE id = $1", uuid.UUID(started["alert_id"])) == 0
    # her real alert closes; while the drill that names her still runs, her next alert is dispatched as normal
    await db.execute("UPDATE alerts SET status = 'resolved', closed_at = now() WHERE id = $1", uuid.UUID(real))
    resp = await sms_client.post("/v1/alerts", json={"client_alert_id": "real-3", "location": fix(*offset(0.5))},
                                 headers=token)
    assert resp.status == 201
    third = await resp.json()
    assert third["alert_id"] not in (real, started["alert_id"])
    assert await db.fetchval("SELECT count(*) FROM dispatches WHERE alert_id = $1", uuid.UUID(third["alert_id"])) == 3
    await sms_client.app[ENGINE].run_once()
    real_sms = [m.body for m in fake_twilio.messages if m.to == "+77010000001"]  # cc-1, Russian
    assert sum(b.startswith("УЧЕНИЯ: ТРЕВОГА") for b in real_sms) == 1  # the drill's
    assert sum(b.startswith("ТРЕВОГА") for b in real_sms) == 2  # her two real alerts'
    assert fake_twilio.sent_to(HER_PHONE) == []


async def test_report_escalation_metrics_and_the_supervisor_view(app_client, settings, clock, db):
    await seed_responders(db)
    sup = supervisor(settings, clock)
    started = await _start(app_client, sup, lat=offset(0.5)[0], lon=offset(0.5)[1])
    alert_id, drill_id = started["alert_id"], started["drill_id"]
    assert started["region"] == "north"
    t0 = clock.now()
    clock.advance(20)
    await _ack(app_client, settings, clock, db, alert_id, "cc-1")  # 20 s of 120
    clock.advance(40)  # t0 + 60: police's deadline
    done = await app_client.app[ENGINE].run_once()
    assert done["deadlines"] == 1
    police = await db.fetch("SELECT responder_id, status, attempt FROM dispatches WHERE alert_id = $1 "
                            "AND kind = 'police_post' ORDER BY attempt", uuid.UUID(alert_id))
    assert [tuple(r) for r in police] == [("pol-1", "expired", 1), ("pol-2", "pending", 2)]
    notice = await db.fetchval("SELECT payload FROM outbox WHERE recipient = 'supervisor:north' AND channel = "
                               "'console' AND template = 'missed_deadline'")
    assert notice["drill"] is True
    clock.advance(15)
    await _ack(app_client, settings, clock, db, alert_id, "mu-1")  # 75 s of 90
    clock.advance(25)
    await _ack(app_client, settings, clock, db, alert_id, "pol-2")  # 40 s after its dispatch at t0 + 60

    resp = await app_client.get(f"/v1/drills/{drill_id}", headers=sup)
    assert resp.status == 200
    report = await resp.json()
    lines = {(x["responder_id"], x["attempt"]): x for x in report["responders"]}
    assert {k: (x["seconds_to_acknowledge"], x["deadline_seconds"], x["within_deadline"], x["escalated"],
                x["outcome"]) for k, x in lines.items()} == {
        ("pol-1", 1): (None, 60, False, True, "missed"),
        ("pol-2", 2): (40, 60, True, False, "within_deadline"),
        ("cc-1", 1): (20, 120, True, False, "within_deadline"),
        ("mu-1", 1): (75, 90, True, False, "within_deadline"),
    }
    assert lines[("pol-1", 1)]["sent_at"] == t0.isoformat()
    assert lines[("cc-1", 1)]["sms"] == "sent"  # cc-1 has a phone; the log stands in for Twilio here
    assert lines[("pol-1", 1)]["sms"] is None
    totals = report["totals"]
    assert (totals["counted"], totals["within_deadline"], totals["within_60s"], totals["missed"],
            totals["escalated"], totals["share_within_deadline"], totals["share_within_60s"]) == (
        4, 3, 2, 1, 1, 0.75, 0.5)
    assert totals["targets"]["within_deadline"] == {"target": 0.95, "met": False}
    assert report["running"] is True and report["ended_at"] is None

    # metrics: the drill is no real alert, its miss no real escalation
    text = await (await app_client.get("/metrics")).text()
    assert 'alertd_drill_alerts{status="open"} 1.0' in text
    assert 'alertd_alerts{status="open"}' not in text
    assert 'alertd_drill_escalations_total{kind="police_post"} 1.0' in text
    assert 'alertd_escalations_total{kind="police_post"}' not in text
    assert 'alertd_dispatches{kind="police_post"' not in text
    assert "alertd_deadline_lateness_seconds_count 0.0" in text
    # the supervisor's view lists it, labelled
    view = await (await app_client.get("/console/api/region", headers=sup)).json()
    [listed] = view["open_alerts"]
    assert (listed["id"], listed["drill"], listed["person_id"]) == (alert_id, True, None)
    assert {e["drill"] for e in view["escalations"]} == {True}

    # the responders resolve it: the drill has ended with its alert
    for responder_id in ("cc-1", "mu-1", "pol-2"):
        dispatch_id = await db.fetchval("SELECT id FROM dispatches WHERE alert_id = $1 AND responder_id = $2 "
                                        "AND status = 'acknowledged'", uuid.UUID(alert_id), responder_id)
        resp = await app_client.post(f"/v1/dispatches/{dispatch_id}/status", json={"status": "resolved"},
                                     headers=bearer(officer_token(settings, responder_id, clock.now())))
        assert resp.status == 200
    report = await (await app_client.get(f"/v1/drills/{drill_id}", headers=sup)).json()
    assert report["running"] is False and report["ended_at"] == clock.now().isoformat()
    assert report["alert_status"] == "resolved"
    # ending it now changes nothing
    again = await (await app_client.post(f"/v1/drills/{drill_id}/end", headers=sup)).json()
    assert again["ended_by"] is None and again["totals"] == report["totals"]

    # the period: one drill, its figures
    period = await (await app_client.get("/v1/drills", params={"since": t0.isoformat()}, headers=sup)).json()
    assert period["drills"] == 1 and period["totals"]["share_within_deadline"] == 0.75
    assert period["items"][0]["drill_id"] == drill_id


async def test_ending_a_drill_stands_down_open_dispatches(app_client, settings, clock, db):
    await seed_responders(db)
    sup = supervisor(settings, clock)
    started = await _start(app_client, sup, lat=offset(0.5)[0], lon=offset(0.5)[1])
    clock.advance(10)
    await _ack(app_client, settings, clock, db, started["alert_id"], "cc-1")
    clock.advance(5)
    resp = await app_client.post(f"/v1/drills/{started['drill_id']}/end", headers=sup)
    assert resp.status == 200
    report = await resp.json()
    assert report["running"] is False and report["ended_by"].startswith("supervisor:")
    assert {x["status"] for x in report["responders"]} == {"cancelled"}
    outcomes = {x["responder_id"]: x["outcome"] for x in report["responders"]}
    assert outcomes == {"cc-1": "within_deadline", "pol-1": "stood_down", "mu-1": "stood_down"}
    assert report["totals"]["counted"] == 1 and report["totals"]["share_within_deadline"] == 1.0
    ended = await db.fetch("SELECT recipient, channel FROM outbox WHERE template = 'drill_ended' ORDER BY id")
    assert {r["recipient"] for r in ended} == {"pol-1", "cc-1", "mu-1"}
    assert await db.fetchval("SELECT status FROM alerts WHERE id = $1", uuid.UUID(started["alert_id"])) == "resolved"
    # nothing is left for the engine
    clock.advance(600)
    assert (await app_client.app[ENGINE].run_once())["deadlines"] == 0


async def test_who_may_drill_and_what_is_refused(app_client, settings, clock, db):
    await seed_responders(db, [
        responder("pol-1", "police_post", 2),
        responder("pol-s", "police_post", 400, region="south"),
    ])
    here = {"lat": offset(0.5)[0], "lon": offset(0.5)[1]}
    officer = bearer(officer_token(settings, "pol-1", clock.now()))
    for method, path in (("post", "/v1/drills"), ("get", "/v1/drills"),
                         ("get", f"/v1/drills/{uuid.uuid4()}"), ("post", f"/v1/drills/{uuid.uuid4()}/end")):
        resp = await getattr(app_client, method)(path, json=here if method == "post" else None, headers=officer)
        assert resp.status == 403, path
    assert await refusals(db, "wrong_role") == 4
    # a supervisor of the south cannot drill the north; nothing is made, and the refusal is recorded
    south = supervisor(settings, clock, region="south", responder_id="pol-s")
    resp = await app_client.post("/v1/drills", json=here, headers=south)
    assert resp.status == 403 and (await resp.json())["error"]["code"] == "forbidden"
    assert await refusals(db, "drill_out_of_region") == 1
    assert await db.fetchval("SELECT count(*) FROM alerts") == 0
    # nor can a supervisor without a region
    resp = await app_client.post("/v1/drills", json=here, headers=supervisor(settings, clock, region=None))
    assert resp.status == 403
    # the north's supervisor can; the south's does not see it, the admin does
    started = await _start(app_client, supervisor(settings, clock), **here)
    resp = await app_client.get(f"/v1/drills/{started['drill_id']}", headers=south)
    assert resp.status == 404
    resp = await app_client.post(f"/v1/drills/{started['drill_id']}/end", headers=south)
    assert resp.status == 404
    assert (await (await app_client.get("/v1/drills", headers=south)).json())["drills"] == 0
    resp = await app_client.get(f"/v1/drills/{started['drill_id']}", headers=admin(settings, clock))
    assert resp.status == 200
    # malformed: both targets, neither, an unknown person, a bad id
    sup = supervisor(settings, clock)
    for body, status in (({**here, "person_id": "P-X"}, 400), ({}, 400), ({"lat": 50.0}, 400),
                         ({"person_id": "P-NOBODY"}, 404), ({"lat": 91, "lon": 0}, 400)):
        resp = await app_client.post("/v1/drills", json=body, headers=sup)
        assert resp.status == status, body
    assert (await app_client.get("/v1/drills/not-a-uuid", headers=sup)).status == 404
    # a person with no fix and no home: nowhere to hold it
    nowhere = await enrol(db, clock.now())
    resp = await app_client.post("/v1/drills", json={"person_id": nowhere.person_id}, headers=sup)
    assert resp.status == 409
    assert await db.fetchval("SELECT count(*) FROM alerts") == 1


async def test_cli_start_show_end_and_report_json(cli_env, capsys, app_client, settings, clock, db):
    await seed_responders(db)
    # one drill through the API at the fake clock's time, acknowledged by two of three within their deadline
    started = await _start(app_client, admin(settings, clock), lat=offset(0.5)[0], lon=offset(0.5)[1])
    clock.advance(30)
    await _ack(app_client, settings, clock, db, started["alert_id"], "pol-1")
    clock.advance(100)
    await _ack(app_client, settings, clock, db, started["alert_id"], "mu-1")  # 130 s of 90: late
    await _ack(app_client, settings, clock, db, started["alert_id"], "cc-1")  # 130 s of 120: late
    await app_client.post(f"/v1/drills/{started['drill_id']}/end", headers=admin(settings, clock))

    code, out = await run(capsys, "drills", "start", "--lat", str(offset(1)[0]), "--lon", str(offset(1)[1]))
    assert code == 0 and out["region"] == "north"
    assert (await db.fetchval("SELECT started_by FROM drills WHERE id = $1", uuid.UUID(out["drill_id"]))
            ).startswith("cli")
    code, shown = await run(capsys, "drills", "show", out["drill_id"])
    assert code == 0 and shown["running"] is True and len(shown["responders"]) == 3
    code, ended = await run(capsys, "drills", "end", out["drill_id"])
    assert code == 0 and ended["running"] is False

    code, report = await run(capsys, "drills", "report", "--since", "2026-11-26", "--until",
                              clock.now().replace(hour=23).isoformat(), "--region", "north")
    assert code == 0
    assert report["drills"] == 1 and report["region"] == "north"  # the CLI's own drill started later, today
    totals = report["totals"]
    assert (totals["counted"], totals["within_deadline"], totals["late"], totals["within_60s"]) == (3, 1, 2, 1)
    assert totals["share_within_deadline"] == pytest.approx(0.3333)
    assert report["items"][0]["drill_id"] == started["drill_id"]
    code, everything = await run(capsys, "drills", "report", "--since", "2026-11-01")
    assert code == 0 and everything["drills"] == 2
    code, bad = await run(capsys, "drills", "start", "--lat", "50")
    assert code == 2 and "lat and lon" in bad["error"]["message"]


async def test_the_migration_extends_the_channel_list_and_keeps_every_earlier_channel(db):
    definition = await db.fetchval("SELECT pg_get_constraintdef(oid) FROM pg_constraint "
                                   "WHERE conrelid = 'alerts'::regclass AND conname = 'alerts_channel_check'")
    for channel in ("app", "sms", "button", "traccar", "drill"):
        assert f"'{channel}'::text" in definition, definition  # one quoted name each: later migrations read it
    assert "{" not in definition


async def test_the_channel_list_is_read_back_even_from_a_list_an_earlier_migration_mangled(db):
    # what a migration that read '{app,sms,button,traccar}' as one name would have written
    migration = (Path(__file__).resolve().parents[2] / "alertd" / "store" / "migrations" / "0019_drills.sql").read_text()
    extend = migration[migration.index("DO $$"):migration.index("$$;") + 3]
    await db.execute("ALTER TABLE alerts DROP CONSTRAINT alerts_channel_check; ALTER TABLE alerts ADD CONSTRAINT "
                     "alerts_channel_check CHECK (channel = ANY ('{\"{app,sms,button,traccar}\",timer}'::text[]))")
    await db.execute(extend)
    definition = await db.fetchval("SELECT pg_get_constraintdef(oid) FROM pg_constraint "
                                   "WHERE conrelid = 'alerts'::regclass AND conname = 'alerts_channel_check'")
    for channel in ("app", "sms", "button", "traccar", "timer", "drill"):
        assert f"'{channel}'::text" in definition, definition


async def test_migration_0021_gives_back_a_channel_list_that_0017_rewrote_without_drill(db):
    """A database that applied 0018-0020 before 0017 existed ran 0017 last, and its whole channel list lost 'drill'."""
    from alertd.store.migrate import MIGRATIONS_DIR

    await db.execute("ALTER TABLE alerts DROP CONSTRAINT alerts_channel_check, ADD CONSTRAINT alerts_channel_check "
                     "CHECK (channel IN ('app', 'sms', 'button', 'traccar', 'timer'))")  # what 0017 writes
    await db.execute((MIGRATIONS_DIR / "0021_engine_statistics.sql").read_text())
    definition = await db.fetchval("SELECT pg_get_constraintdef(oid) FROM pg_constraint "
                                   "WHERE conname = 'alerts_channel_check'")
    for channel in ("app", "sms", "button", "traccar", "timer", "drill"):
        assert f"'{channel}'" in definition
    await db.execute((MIGRATIONS_DIR / "0021_engine_statistics.sql").read_text())  # and again: nothing changes
    assert await db.fetchval("SELECT pg_get_constraintdef(oid) FROM pg_constraint "
                             "WHERE conname = 'alerts_channel_check'") == definition
