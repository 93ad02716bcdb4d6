"""Named places on the real services: `alertd places import` into PostGIS, then an alert's SMS (fake Twilio), unit
terminal dispatch (real Mosquitto) and console JSON all say "14 km NE of Karaozek"; a better fix later is described
anew; the purge drops the distance and direction."""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import timedelta
from pathlib import Path

import pytest

from alertd.engine.retention import purge
from alertd.mqtt.dynsec import broker_accounts
from alertd.service import places, provisioning
from alertd.web.keys import ENGINE
from tests.buttons_support import (  # noqa: F401  (fixtures)
    connected_unit,
    eventually,
    running_service,
    secured_broker,
    secured_broker_process,
    secured_settings,
)
from tests.fake_twilio import (
    FROM_NUMBER,
    fake_twilio,  # noqa: F401  (fixture)
)
from tests.helpers import bearer, device_token, enrol, fix, officer_token, offset, responder, seed_responders
from tests.integration.test_cli import cli_env, run  # noqa: F401  (cli_env is a fixture)

SAMPLE = next(p for p in Path(__file__).resolve().parents if p.name == "tests") / "data" / "geonames_sample.txt"




async def test_import_counts_then_reimport_updates_by_geonameid(cli_env, capsys, db, tmp_path):
    code, out = await run(capsys, "places", "import", str(SAMPLE))
    assert code == 0, out
    assert (out["lines"], out["imported"], out["inserted"], out["updated"], out["left_out"], out["places"]) == (
        7, 4, 4, 0, 3, 4)
    row = await db.fetchrow("SELECT name, asciiname, name_ru, name_kk, feature_code, population, "
                            "ST_Y(geog::geometry) AS lat FROM places WHERE geonameid = 9100001")
    assert tuple(row)[:6] == ("Qaraözek", "Karaozek", "Караозек", "Караөзек", "PPL", 1240)
    # a newer dump: one place renamed, one grown, one more class; the rest stays as it was
    newer = tmp_path / "KZ.txt"
    lines = SAMPLE.read_text(encoding="utf-8").splitlines()
    lines[0] = lines[0].replace("Qaraözek\t", "Qaraözek Auyly\t")
    newer.write_text("\n".join(lines[:1] + lines[5:]) + "\n", encoding="utf-8")
    code, out = await run(capsys, "places", "import", "--classes", "PS", str(newer))
    assert code == 0, out
    assert (out["imported"], out["inserted"], out["updated"], out["places"]) == (3, 1, 2, 5)
    assert await db.fetchval("SELECT name FROM places WHERE geonameid = 9100001") == "Qaraözek Auyly"
    assert await db.fetchval("SELECT feature_code FROM places WHERE geonameid = 9100006") == "FRM"
    assert await db.fetchval("SELECT count(*) FROM places WHERE geonameid = 9100004") == 1  # kept


async def test_a_bad_line_imports_nothing_and_says_which(cli_env, capsys, db, tmp_path):
    lines = SAMPLE.read_text(encoding="utf-8").splitlines()
    bad = tmp_path / "cities1000.txt"
    cols = lines[3].split("\t")
    cols[4] = "north"
    bad.write_text("\n".join([lines[0], "\t".join(cols), lines[4], "not a dump line"]) + "\n", encoding="utf-8")
    code, out = await run(capsys, "places", "import", str(bad))
    assert code == 2
    assert out["error"]["message"].startswith("2 bad lines in the file, nothing imported")
    assert out["error"]["problems"] == ["line 2: latitude must be a number in decimal degrees, got 'north'",
                                        "line 4: expected 19 tab-separated columns, found 1 (is this a GeoNames "
                                        "dump? alternateNames and admin-code files have other columns)"]
    assert await db.fetchval("SELECT count(*) FROM places") == 0
    code, out = await run(capsys, "places", "import", "--skip-bad", str(bad))
    assert code == 0 and out["imported"] == 2 and out["skipped_bad"] == 2 and len(out["problems"]) == 2
    code, out = await run(capsys, "places", "import", str(tmp_path / "missing.txt"))
    assert code == 2 and "no such file" in out["error"]["message"]


async def test_a_zip_as_downloaded_and_the_near_command(cli_env, capsys, db, tmp_path):
    import zipfile

    archive = tmp_path / "KZ.zip"
    with zipfile.ZipFile(archive, "w") as z:
        z.write(SAMPLE, "KZ.txt")
        z.writestr("readme.txt", "GeoNames readme")
    code, out = await run(capsys, "places", "import", str(archive))
    assert code == 0 and out["imported"] == 4
    code, out = await run(capsys, "places", "near", *map(str, offset(0.5)))
    assert code == 0
    assert (out["en"], out["ru"], out["kk"]) == ("14 km NE of Karaozek", "14 км к СВ от н.п. Караозек",
                                                  "Караөзек е.м. СШ 14 км")
    code, out = await run(capsys, "places", "near", "10", "10")
    assert code == 0 and out["place"] is None


async def test_nearest_is_one_indexed_knn_probe(db, clock):
    with SAMPLE.open("rb") as lines:
        await places.import_dump(db, lines, clock.now())
    plan = await db.fetchval("EXPLAIN (FORMAT JSON) " + places.queries.find_nearest_places, [70.0], [50.0])
    assert "places_geog" in json.dumps(plan)


@pytest.fixture
def place_settings(settings, secured_broker, fake_twilio):
    return secured_settings(settings, secured_broker).replace(
        twilio_account_sid=fake_twilio.account_sid, twilio_auth_token=fake_twilio.auth_token,
        twilio_from_number=FROM_NUMBER, twilio_api_url=fake_twilio.url, sms_send_timeout_s=1.5)


async def test_sms_unit_terminal_and_console_name_the_nearest_place(place_settings, secured_broker, fake_twilio,
                                                                    clock, db):
    with SAMPLE.open("rb") as lines:
        await places.import_dump(db, lines, clock.now())
    await seed_responders(db, [
        responder("pol-1", "police_post", 2, phone="+77010000031", language="en"),
        responder("pol-3", "police_post", 9, phone="+77010000033", language="en"),
        responder("cc-1", "crisis_centre", 3, phone="+77010000032", language="kk"),
        responder("mu-1", "mobile_unit", 4, phone="+77010000034", language="ru"),
    ])
    person = await enrol(db, clock.now(), phone="+77015550777")
    creds = await provisioning.provision_unit(db, broker_accounts(place_settings), clock.now(), "mu-1")
    unit = await connected_unit(secured_broker, creds, clock)
    async with running_service(place_settings, clock) as client:
        try:
            assert await asyncio.to_thread(unit.move, *offset(4)) == "Success"
            assert await eventually(lambda: db.fetchval("SELECT last_seen_at FROM responders WHERE id = 'mu-1'"))
            resp = await client.post("/v1/alerts", json={"client_alert_id": "c-1", "location": fix(*offset(0.5))},
                                     headers=bearer(device_token(place_settings, person, clock.now())))
            assert resp.status == 201
            alert_id = (await resp.json())["alert_id"]
            await client.app[ENGINE].run_once()

            by_to = {m.to: m.body for m in fake_twilio.messages}
            assert "police: 14 km NE of Karaozek, maps.google.com/?q=" in by_to["+77010000031"]
            assert "дағдарыс орталығы: Караөзек е.м. СШ 14 км, maps.google.com/?q=" in by_to["+77010000032"]
            assert "моб. группа: 14 км к СВ от н.п. Караозек, maps.google.com/?q=" in by_to["+77010000034"]
            assert fake_twilio.unexpected == []

            assert await eventually(lambda: _async(unit.dispatches), timeout=20)
            sent = unit.dispatches[0]
            assert sent["place"] == {"name": "Караозек", "distance_m": 14_000, "bearing": "NE",
                                     "text": "14 км к СВ от н.п. Караозек"}
            assert sent["maps_url"] == f"https://maps.google.com/?q={sent['lat']:.3f},{sent['lon']:.3f}"
            assert person.person_id not in json.dumps(sent, ensure_ascii=False)

            officer = bearer(officer_token(place_settings, "pol-1", clock.now()))
            [item] = (await (await client.get("/v1/dispatches", headers=officer)).json())["items"]
            assert item["place"]["text"] == "14 km NE of Karaozek"
            assert item["place"]["texts"] == {"kk": "Караөзек е.м. СШ 14 км", "ru": "14 км к СВ от н.п. Караозек",
                                              "en": "14 km NE of Karaozek"}
            admin = bearer(officer_token(place_settings, "pol-1", clock.now(), role="admin"))
            view = await (await client.get(f"/console/api/alerts/{alert_id}", headers=admin)).json()
            assert (view["place"]["distance_m"], view["place"]["bearing"]) == (14_000, "NE")

            # she moves 10 km north: a better fix; pol-3 is nearer now and is told the new place; the console too
            clock.advance(30)
            resp = await client.post(f"/v1/alerts/{alert_id}/locations", json=fix(*offset(10.5)),
                                     headers=bearer(device_token(place_settings, person, clock.now())))
            assert resp.status == 200, await resp.text()
            moved = await db.fetchval("SELECT payload FROM outbox WHERE recipient = 'pol-3' AND channel = 'sms' "
                                      "AND template = 'dispatch'")
            assert (moved["place"]["asciiname"], moved["place"]["distance_m"], moved["place"]["bearing"]) == (
                "Karaozek", 22_000, "NE")
            view = await (await client.get(f"/console/api/alerts/{alert_id}", headers=admin)).json()
            assert view["place"]["text"] == "22 km NE of Karaozek"
            first = await db.fetchval("SELECT payload FROM outbox WHERE recipient = 'pol-1' AND channel = 'sms' "
                                      "AND template = 'dispatch'")
            assert first["place"]["distance_m"] == 14_000  # what was sent stays what was sent
            # a closed alert's dispatches are listed without a place (no lookup for the list's history)
            await db.execute("UPDATE alerts SET status = 'resolved', closed_at = now() WHERE id = $1",
                             uuid.UUID(alert_id))
            [item] = (await (await client.get("/v1/dispatches", headers=officer)).json())["items"]
            assert item["place"] is None and item["location"] is not None
        finally:
            await asyncio.to_thread(unit.close)


async def _async(value):
    return value


async def test_the_purge_drops_distance_and_direction_of_a_closed_alerts_place(settings, clock, db):
    with SAMPLE.open("rb") as lines:
        await places.import_dump(db, lines, clock.now())
    await seed_responders(db)
    from tests.helpers import running_app

    person = await enrol(db, clock.now())
    async with running_app(settings, clock) as client:
        resp = await client.post("/v1/alerts", json={"client_alert_id": "c-1", "location": fix(*offset(0.5))},
                                 headers=bearer(device_token(settings, person, clock.now())))
        alert_id = uuid.UUID((await resp.json())["alert_id"])
    await db.execute("UPDATE alerts SET status = 'resolved', closed_at = $2 WHERE id = $1", alert_id, clock.now())
    before = await db.fetch("SELECT payload FROM outbox WHERE alert_id = $1 AND template = 'dispatch'", alert_id)
    assert before and all(r["payload"]["place"]["distance_m"] == 14_000 for r in before)
    await purge(db, settings, clock.now() + timedelta(days=settings.retention_precise_days, seconds=1), actor="test")
    after = await db.fetch("SELECT payload FROM outbox WHERE alert_id = $1 AND template = 'dispatch'", alert_id)
    assert {json.dumps(r["payload"]["place"], sort_keys=True, ensure_ascii=False) for r in after} == {json.dumps(
        {"geonameid": 9100001, "name": "Qaraözek", "asciiname": "Karaozek", "name_ru": "Караозек",
         "name_kk": "Караөзек"}, sort_keys=True, ensure_ascii=False)}
