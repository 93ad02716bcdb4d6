"""A newcomer's mistakes with the command line, each run as she runs it (the installed `alertd` in a subprocess,
nothing but her own environment): one clear line naming the setting and what to do, exit status 2, no traceback
(`--debug` shows it); PINs the phone app can type; responder files as spreadsheet programs write them."""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ALERTD = Path(sys.executable).parent / "alertd"


def bare_env(**settings: str) -> dict[str, str]:
    """Her environment: no ALERTD_* or TWILIO_* settings but the ones given."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ALERTD_", "TWILIO_"))}
    return {**env, **settings}


def alertd(*argv: str, env: dict[str, str], cwd: Path | None = None,
           stdin: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([str(ALERTD), *argv], env=env, cwd=cwd, input=stdin, capture_output=True, text=True,
                          timeout=60)


def one_line_error(result: subprocess.CompletedProcess) -> str:
    """The single line a refused command prints on stderr (asserting it is one line, exit 2, no traceback)."""
    assert result.returncode == 2, (result.returncode, result.stderr)
    assert "Traceback" not in result.stderr, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("alertd: "), result.stderr
    return lines[0]


@pytest.fixture
def db_env(settings) -> dict[str, str]:
    """The environment `alertd demo` tells her to export, pointing at this test's database."""
    return bare_env(ALERTD_DATABASE_URL=settings.database_url, ALERTD_JWT_SECRET=settings.jwt_secret)


@pytest.mark.parametrize("argv, names", [
    (["people", "enrol", "--phone", "+77015550001"], ["ALERTD_DATABASE_URL", "ALERTD_JWT_SECRET"]),
    (["migrate"], ["ALERTD_DATABASE_URL"]),
    (["serve"], ["ALERTD_DATABASE_URL", "ALERTD_JWT_SECRET"]),
    (["tokens", "issue", "--role", "admin"], ["ALERTD_JWT_SECRET"]),
])
def test_no_settings_names_each_missing_setting_and_what_to_do(argv, names, tmp_path):
    line = one_line_error(alertd(*argv, env=bare_env(), cwd=tmp_path))
    for name in names:
        assert name in line
    assert "not set" in line and "alertd demo" in line and "export" in line
    assert "5432" not in line  # no default database on the machine's own PostgreSQL


def test_a_short_secret_says_how_long_it_is_and_how_to_make_one(tmp_path):
    line = one_line_error(alertd("tokens", "issue", "--role", "admin", env=bare_env(ALERTD_JWT_SECRET="short"),
                                 cwd=tmp_path))
    assert "ALERTD_JWT_SECRET is 5 bytes" in line and "at least 32" in line and "openssl rand" in line


@pytest.mark.parametrize("argv", [["migrate"], ["serve"]])
def test_an_unreachable_database_is_one_line_and_debug_shows_the_traceback(argv, tmp_path):
    from alertd.local.services import free_port

    closed = free_port()  # nothing listens there
    env = bare_env(ALERTD_DATABASE_URL=f"postgresql://alertd:s3cret@127.0.0.1:{closed}/alertd",
                   ALERTD_JWT_SECRET="k" * 40, ALERTD_HTTP_PORT=str(free_port()), ALERTD_MQTT_URL="mqtt://127.0.0.1:1")
    line = one_line_error(alertd(*argv, env=env, cwd=tmp_path))
    assert f"ALERTD_DATABASE_URL=postgresql://alertd:***@127.0.0.1:{closed}/alertd" in line
    assert "s3cret" not in line and "is PostgreSQL running there?" in line

    debug = alertd("--debug", *argv, env=env, cwd=tmp_path)
    assert debug.returncode == 2 and "Traceback" in debug.stderr and "ConnectionRefusedError" in debug.stderr


def test_a_database_that_does_not_exist_and_one_not_migrated(postgres, tmp_path):
    env = bare_env(ALERTD_DATABASE_URL=postgres.dsn("no_such_db"))
    line = one_line_error(alertd("migrate", env=env, cwd=tmp_path))
    assert "no_such_db" in line and "create that database" in line
    env = bare_env(ALERTD_DATABASE_URL=postgres.dsn("postgres"))  # exists, never migrated
    line = one_line_error(alertd("responders", "duty", "pp-1", "on", env=env, cwd=tmp_path))
    assert "run `alertd migrate` first" in line


@pytest.mark.parametrize("pins, said", [
    (["--pin", "12ab"], "PIN must be 4 or more digits"),
    (["--pin", "12"], "PIN must be 4 or more digits"),
    (["--pin", "1234", "--duress-pin", "9"], "duress PIN must be 4 or more digits"),
    (["--pin", "1234", "--duress-pin", "1234"], "duress PIN must differ from the PIN"),
])
async def test_pins_the_phone_app_cannot_type_are_refused(pins, said, db_env, db, tmp_path):
    result = alertd("people", "enrol", "--phone", "+77015550001", *pins, env=db_env, cwd=tmp_path)
    assert said in one_line_error(result)
    assert "12ab" not in result.stderr  # a PIN is never echoed
    assert await db.fetchval("SELECT count(*) FROM people") == 0


async def test_a_good_pin_pair_enrols(db_env, db, tmp_path):
    result = alertd("--json", "people", "enrol", "--phone", "+77015550001", "--pin", "0412", "--duress-pin",
                    "04120", env=db_env, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert await db.fetchval("SELECT count(*) FROM people WHERE id = $1", json.loads(result.stdout)["person_id"]) == 1


SEMICOLON_CSV = (  # what a spreadsheet program writes in a Russian or Kazakh locale: semicolons, decimal commas
    "id;kind;name;lat;lon;phone;region;jurisdiction;on_duty\n"
    "pp-1;police_post;Аксу пост;50,1;70,1;+77010000011;север;"
    '"{""type"": ""Polygon"", ""coordinates"": [[[70, 50], [70.5, 50], [70.5, 50.5], [70, 50.5], [70, 50]]]}";да\n'
    "cc-1;crisis_centre;Аксу центр;50,2;70,2;;север;;no\n"
)


async def test_semicolon_csv_with_decimal_commas_imports(db_env, db, tmp_path):
    path = tmp_path / "responders.csv"
    path.write_text(SEMICOLON_CSV.replace(";да\n", ";yes\n"), encoding="utf-8-sig")  # Excel's BOM too
    result = alertd("--json", "responders", "import", str(path), env=db_env, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["created"] == 2
    rows = {r["id"]: r for r in await db.fetch(
        "SELECT id, ST_Y(location::geometry) AS lat, on_duty, jurisdiction IS NOT NULL AS has_area FROM responders")}
    assert abs(rows["pp-1"]["lat"] - 50.1) < 1e-9 and rows["pp-1"]["has_area"] and rows["pp-1"]["on_duty"]
    assert not rows["cc-1"]["on_duty"]


async def test_each_problem_is_printed_once_with_its_bad_value(db_env, db, tmp_path):
    path = tmp_path / "responders.csv"
    path.write_text(SEMICOLON_CSV + "pp-2;police_post;Far;95.5;70;;север;;\npp-3;police_post;Odd;50;70;;север;;maybe\n")
    result = alertd("responders", "import", str(path), env=db_env, cwd=tmp_path)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert lines[0] == "alertd: 3 problems, nothing imported:"
    assert sorted(lines[1:]) == sorted([
        "  line 2: on_duty must be true/false, yes/no or 1/0, got 'да'",
        "  line 4: lat must be between -90 and 90 degrees, got 95.5",
        "  line 5: on_duty must be true/false, yes/no or 1/0, got 'maybe'"])
    assert await db.fetchval("SELECT count(*) FROM responders") == 0


def _xlsx(path: Path) -> None:
    """A minimal workbook as a spreadsheet program saves it (an .xlsx is a zip of XML parts)."""
    with zipfile.ZipFile(path, "w") as book:
        book.writestr("[Content_Types].xml", "<Types/>")
        book.writestr("xl/workbook.xml", "<workbook/>")


@pytest.mark.parametrize("name", ["responders.xlsx", "responders.csv"])  # a workbook renamed .csv is one too
def test_a_workbook_is_named_as_such_with_what_to_do(name, db_env, tmp_path):
    path = tmp_path / name
    _xlsx(path)
    line = one_line_error(alertd("responders", "import", str(path), env=db_env, cwd=tmp_path))
    assert f"{name} is a spreadsheet workbook (.xlsx or .ods), not CSV" in line and "save it as CSV (UTF-8)" in line


def test_a_windows_1251_csv_is_named_as_not_utf8(db_env, tmp_path):
    path = tmp_path / "responders.csv"
    path.write_bytes(SEMICOLON_CSV.encode("cp1251"))
    line = one_line_error(alertd("responders", "import", str(path), env=db_env, cwd=tmp_path))
    assert "is not UTF-8 text" in line and "save it as CSV (UTF-8)" in line


def test_missing_columns_say_which_separator_and_columns_are_expected(db_env, tmp_path):
    path = tmp_path / "responders.csv"
    path.write_text("name|lat|lon\nx|50|70\n")
    line = one_line_error(alertd("responders", "import", str(path), env=db_env, cwd=tmp_path))
    assert "missing columns: id, kind, name, lat, lon, region" in line and "semicolons" in line and "--help" in line


def test_help_texts_name_the_environment_and_every_option(tmp_path):
    env = bare_env()
    for command in (["serve"], ["migrate"]):
        text = alertd(*command, "--help", env=env, cwd=tmp_path).stdout
        assert "ALERTD_DATABASE_URL" in text and "docs/configuration.md" in text
    assert "ALERTD_JWT_SECRET" in alertd("serve", "--help", env=env, cwd=tmp_path).stdout
    enrol = " ".join(alertd("people", "enrol", "--help", env=env, cwd=tmp_path).stdout.split())
    for option, said in (("--pin PIN", "4 or more digits she types to cancel"),
                         ("--duress-pin DURESS_PIN", "4 or more digits, not her PIN"),
                         ("--code-phrase CODE_PHRASE", "only an SMS containing this text"),
                         ("--home-lat HOME_LAT", "her home"), ("--home-lon HOME_LON", "longitude of her home"),
                         ("--token-ttl TOKEN_TTL", "seconds the printed phone app token lives")):
        assert f"{option} {said}" in enrol, option
    text = alertd("responders", "import", "--help", env=env, cwd=tmp_path).stdout
    assert "jurisdiction" in text and "on_duty" in text and "semicolon" in text


def _commands(parser: argparse.ArgumentParser, prefix: str = "alertd") -> dict[str, argparse.ArgumentParser]:
    """Every command the parser runs ("alertd buttons provision" -> its parser), walking its subcommands."""
    subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    if not subs:
        return {prefix: parser}
    found = {}
    for name, sub in subs[0].choices.items():
        found.update(_commands(sub, f"{prefix} {name}"))
    return found


def test_the_readme_command_table_lists_every_command_as_it_is_called():
    """In process (the parser `alertd` runs), as thirty `--help` subprocesses would take a minute."""
    from alertd.cli import build_parser

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    table = readme.split("## Command line", 1)[1].split("\n## ", 1)[0]
    listed = [cmd for line in table.splitlines() if line.startswith("| `alertd")
              for cmd in re.findall(r"`(alertd [^`]+)`", line.split(" | ")[0])]
    commands = _commands(build_parser())
    for name in commands:
        assert any(c == name or c.startswith(name + " ") for c in listed), f"README's table lacks {name}"
    for cmd in listed:  # and each form the table shows is one the command takes, options included
        name = max((n for n in commands if cmd == n or cmd.startswith(n + " ")), key=len, default=None)
        assert name, f"README shows {cmd}, which alertd does not have"
        for option in re.findall(r"--[a-z-]+", cmd):
            assert option in commands[name].format_help(), f"{cmd}: {option}"
