"""The command line: migrate, responders import (CSV, GeoJSON, bad files), people enrol, tokens issue."""

from __future__ import annotations

import asyncio
import json

import pytest

from alertd import auth
from alertd.cli import main
from alertd.clock import SystemClock
from alertd.store import queries


@pytest.fixture
def cli_env(settings, monkeypatch):
    for key, value in settings.as_env().items():
        monkeypatch.setenv(key, value)
    return settings


async def run(capsys, *argv) -> tuple[int, dict]:
    """Run `alertd --json ARGV` in a thread (it runs its own event loop) and parse its output."""
    code = 0
    try:
        await asyncio.to_thread(main, ["--json", *argv])
    except SystemExit as exc:
        code = exc.code
    out = capsys.readouterr().out
    return code, json.loads(out) if out.strip() else {}


CSV = """id,kind,name,lat,lon,phone,region
pp-1,police_post,Aksu post,50.1,70.1,+77010000011,north
cc-1,crisis_centre,Aksu centre,50.2,70.2,,north
mu-1,mobile_unit,Unit one,50.3,70.3,+77010000013,north
"""


async def test_import_csv_then_geojson_updates_by_id(cli_env, tmp_path, capsys, db):
    path = tmp_path / "responders.csv"
    path.write_text(CSV)
    code, out = await run(capsys, "responders", "import", str(path))
    assert code == 0 and out["created"] == 3 and out["updated"] == 0
    area = {"type": "Polygon", "coordinates": [[[70, 50], [70.5, 50], [70.5, 50.5], [70, 50.5], [70, 50]]]}
    geo = {"type": "FeatureCollection", "features": [
        {"type": "Feature", "geometry": {"type": "Point", "coordinates": [70.15, 50.15]},
         "properties": {"id": "pp-1", "kind": "police_post", "name": "Aksu post (moved)", "region": "north",
                        "phone": "+77010000011", "jurisdiction": area}},
        {"type": "Feature", "geometry": {"type": "Point", "coordinates": [71.0, 51.0]},
         "properties": {"id": "pp-2", "kind": "police_post", "name": "Zhar post", "region": "east"}},
    ]}
    gpath = tmp_path / "responders.geojson"
    gpath.write_text(json.dumps(geo))
    code, out = await run(capsys, "responders", "import", str(gpath))
    assert code == 0 and out["created"] == 1 and out["updated"] == 1
    row = await db.fetchrow("SELECT name, ST_Y(location::geometry) AS lat, jurisdiction IS NOT NULL AS has_area "
                            "FROM responders WHERE id = 'pp-1'")
    assert row["name"] == "Aksu post (moved)" and abs(row["lat"] - 50.15) < 1e-9 and row["has_area"]


async def test_nearest_walks_the_gist_index_right_after_an_import(cli_env, tmp_path, capsys, db):
    """Without statistics the planner takes a just-imported directory for an empty table and scans every
    responder of a kind, then sorts them, on every alert: the import analyzes the table (issue 12)."""
    rows = ["id,kind,name,lat,lon,phone,region"]
    for i in range(2000):  # half police posts, none with a jurisdiction, spread wide (bench/sustained.py's shape)
        kind = "police_post" if i % 2 else ("crisis_centre" if i % 4 == 0 else "mobile_unit")
        rows.append(f"r-{i},{kind},R {i},{45 + (i * 7919) % 1000 / 100},{55 + (i * 104729) % 3500 / 100},,d{i % 9}")
    path = tmp_path / "many.csv"
    path.write_text("\n".join(rows) + "\n")
    code, out = await run(capsys, "responders", "import", str(path))
    assert code == 0 and out["created"] == 2000
    plan = await db.fetchval("EXPLAIN (FORMAT JSON) " + queries.find_nearest_responders,
                             ["police_post", "mobile_unit"], [72.9], [50.3], [], None, False)
    plan = json.loads(plan) if isinstance(plan, str) else plan

    def nodes(node):
        yield node
        for child in node.get("Plans", []):
            yield from nodes(child)

    scans = [(n["Node Type"], n.get("Index Name")) for n in nodes(plan[0]["Plan"])
             if n.get("Relation Name") == "responders"]
    # the jurisdiction branch's own index (no post has one here), then the GiST walk: no scan of every post
    assert sorted(set(scans)) == [("Index Scan", "responders_jurisdiction"), ("Index Scan", "responders_location")], \
        scans


async def test_bad_file_imports_nothing_and_names_every_problem(cli_env, tmp_path, capsys, db):
    path = tmp_path / "bad.csv"
    path.write_text(CSV + "x-1,fire_station,Nope,50,70,,north\nx-2,police_post,Bad,95,70,,north\n")
    code, out = await run(capsys, "responders", "import", str(path))
    assert code == 2
    problems = out["error"]["problems"]
    assert any("line 5" in p and "kind" in p for p in problems)
    assert any("line 6" in p for p in problems)
    assert await db.fetchval("SELECT count(*) FROM responders") == 0
    code, _ = await run(capsys, "responders", "import", str(tmp_path / "missing.csv"))
    assert code == 2


async def test_enrol_and_tokens(cli_env, capsys, db, tmp_path):
    code, out = await run(capsys, "people", "enrol", "--phone", "+77015550001", "--home-lat", "50.1",
                          "--home-lon", "70.1", "--pin", "1111", "--duress-pin", "2222", "--code-phrase",
                          "Купить ХЛЕБ")
    assert code == 0
    who = auth.verify(cli_env, out["token"], SystemClock().now())
    assert who.role == "device" and who.person_id == out["person_id"] and who.device_id == out["device_id"]
    person = await db.fetchrow("SELECT code_phrase, cancel_pin_hash FROM people WHERE id = $1", out["person_id"])
    assert person["code_phrase"] == "купить хлеб" and person["cancel_pin_hash"].startswith("$argon2id$")
    assert "+77015550001" not in json.dumps(out)

    code, out = await run(capsys, "people", "enrol", "--phone", "+77015550001")
    assert code == 2  # the number is already enrolled
    code, out = await run(capsys, "people", "enrol", "--phone", "12345")
    assert code == 2 and "E.164" in out["error"]["message"]

    code, out = await run(capsys, "tokens", "issue", "--role", "officer")
    assert code == 2 and "--responder" in out["error"]["message"]
    path = tmp_path / "r.csv"
    path.write_text(CSV)
    await run(capsys, "responders", "import", str(path))
    code, out = await run(capsys, "tokens", "issue", "--role", "officer", "--responder", "pp-1", "--ttl", "60")
    assert code == 0
    who = auth.verify(cli_env, out["token"], SystemClock().now())
    assert who.role == "officer" and who.responder_id == "pp-1"


async def test_migrate_is_idempotent(cli_env, capsys):
    code, out = await run(capsys, "migrate")
    assert code == 0 and out == {"applied": []}  # the template database is already migrated


async def test_gateways_and_trackers(cli_env, capsys, db):
    person = (await run(capsys, "people", "enrol", "--phone", "+77015550123"))[1]["person_id"]
    code, added = await run(capsys, "gateways", "add", "traccar-north")
    assert code == 0 and added["token"].startswith("gw_") and added["header"] == f"Authorization: Bearer {added['token']}"
    assert (await run(capsys, "gateways", "add", "traccar-north"))[0] == 2  # the name is taken
    assert (await run(capsys, "gateways", "add", "Bad Name"))[0] == 2
    code, tracker = await run(capsys, "trackers", "add", "--person", person, "--unique-id", "359339077003123",
                              "--gateway", "traccar-north")
    assert code == 0 and tracker["new"] is True
    assert (await run(capsys, "trackers", "add", "--person", "P-NOBODY", "--unique-id", "1"))[0] == 2
    listed = (await run(capsys, "gateways", "list"))[1]["items"]
    assert [(g["name"], g["trackers"]) for g in listed] == [("traccar-north", 1)] and "token" not in listed[0]
    assert [t["unique_id"] for t in (await run(capsys, "trackers", "list"))[1]["items"]] == ["359339077003123"]
    assert (await run(capsys, "trackers", "remove", "359339077003123"))[1]["removed"] is True
    assert (await run(capsys, "trackers", "list"))[1]["items"] == []
    assert (await run(capsys, "gateways", "revoke", "traccar-north"))[1]["revoked_at"] is not None
    assert (await run(capsys, "gateways", "revoke", "traccar-north"))[0] == 2
    assert await db.fetchval("SELECT revoked_at IS NOT NULL FROM gateways") is True
