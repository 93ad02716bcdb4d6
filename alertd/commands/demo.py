"""`alertd demo`: PostgreSQL+PostGIS and Mosquitto under a data folder, seeded, and the service, on one machine."""

from __future__ import annotations

import asyncio
import json
import secrets
import shlex
import sys
from pathlib import Path

import alertd
from alertd import auth
from alertd.clock import SystemClock
from alertd.commands import CommandError
from alertd.commands.server import serve
from alertd.context import Context
from alertd.core.model import Location
from alertd.local import devices as demo_devices
from alertd.local.folder import AlreadyRunning, DemoFolder
from alertd.local.region import CENTRE_LAT, CENTRE_LON, gazetteer_lines, responders
from alertd.local.services import LocalMosquitto, LocalPostgres, free_port
from alertd.mqtt.dynsec import broker_accounts
from alertd.service import dispatching, enrol_codes, officer_accounts, places, provisioning
from alertd.service.people import enrol_person
from alertd.service.responders import upsert_responders
from alertd.settings import Settings
from alertd.store import queries
from alertd.store.db import connect
from alertd.store.migrate import migrate


def register(sub) -> None:
    p = sub.add_parser("demo", help="everything on one machine: database, broker, sample region, the service")
    p.add_argument("--data-dir", type=Path, help="default ./.alertd or ALERTD_DATA_DIR")
    p.add_argument("--no-serve", action="store_true",
                   help="set up the data folder, print what a run prints, then stop everything (for scripts)")
    p.set_defaults(handler=cmd_demo, needs=())


def _secret(data_dir: Path) -> str:
    """A JWT secret kept in the data folder so tokens survive a demo restart."""
    path = data_dir / "jwt_secret"
    if not path.exists():
        path.write_text(secrets.token_urlsafe(48))
        path.chmod(0o600)
    return path.read_text().strip()


async def _seed(settings: Settings) -> dict:
    conn = await connect(settings.database_url)
    try:
        await migrate(conn)
        await upsert_responders(conn, responders())
        now = SystemClock().now()
        await places.import_dump(conn, gazetteer_lines(), now)  # invented villages: the dispatches name them
        person = await conn.fetchrow(queries.get_first_phone_person)
        if person is None:
            enrolled = await enrol_person(
                conn, now, phones=["+77000000001"], pin="1234", duress_pin="9999", code_phrase="buy bread",
                home=Location(CENTRE_LAT + 0.21, CENTRE_LON - 0.35, 30.0, "home", now))
            person = {"person_id": enrolled.person_id, "device_id": enrolled.device_id}
    finally:
        await conn.close()
    return dict(person)


async def _enrolment_code(settings: Settings, person: dict) -> enrol_codes.EnrolmentCode:
    """A fresh one-time code that enrols the phone app as the sample person (each run makes a new one)."""
    conn = await connect(settings.database_url)
    try:
        return await enrol_codes.issue_code(conn, settings, SystemClock().now(), person_id=person["person_id"],
                                            device_id=person["device_id"])
    finally:
        await conn.close()


async def _console_accounts(settings: Settings, data_dir: Path, post: str) -> list[dict]:
    """Console sign-ins for the sample post: a duty officer and the region's supervisor (made once, kept)."""
    path = data_dir / "console_logins.json"
    if path.exists():
        return json.loads(path.read_text())
    logins = [{"username": "duty", "password": secrets.token_urlsafe(9), "role": "officer"},
              {"username": "supervisor", "password": secrets.token_urlsafe(9), "role": "supervisor"}]
    conn = await connect(settings.database_url)
    try:
        for login in logins:
            await officer_accounts.add(conn, SystemClock().now(), username=login["username"], password=login["password"],
                               responder_id=post, role=login["role"], language="en")
    finally:
        await conn.close()
    path.write_text(json.dumps(logins))
    path.chmod(0o600)
    return logins


async def _sample_button(settings: Settings, data_dir: Path, person_id: str) -> dict:
    """A button for the sample person (made once, kept) and the simulator command that presses it."""
    path = data_dir / "sample_button.json"
    if not path.exists():
        conn = await connect(settings.database_url)
        try:
            creds = await provisioning.provision_button(conn, broker_accounts(settings),
                                                        SystemClock().now(), person_id=person_id)
        finally:
            await conn.close()
        path.write_text(json.dumps(creds.as_json()))
        path.chmod(0o600)
    creds = json.loads(path.read_text())
    host_port = settings.mqtt_url.split("://", 1)[1].rsplit("@", 1)[-1]
    url = f"mqtt://{creds['username']}:{creds['password']}@{host_port}"
    return {**creds, "press": _simulator_press(url, creds["device_id"], creds["hmac_secret"])}


def _simulator_press(url: str, device_id: str, secret: str) -> str | None:
    """The simulator's press line, runnable as printed from any folder: this interpreter (it has paho-mqtt) with
    the source tree's clients/ on its path; None when alertd runs without its source tree."""
    return _simulator("press", "--url", url, "--device", device_id, "--secret", secret,
                      "--lat", f"{CENTRE_LAT + 0.2:.5f}", "--lon", f"{CENTRE_LON - 0.3:.5f}")


def _simulator(*args: str) -> str | None:
    root = Path(alertd.__file__).resolve().parents[1]
    if not (root / "clients" / "simulator").is_dir():
        return None
    return f"PYTHONPATH={shlex.quote(str(root))} {shlex.join([sys.executable, '-m', 'clients.simulator', *args])}"


def _http_port(settings: Settings, recorded: int | None) -> int:
    """ALERTD_HTTP_PORT when it is set (and free); else the last run's port when free, 8080, or any free one."""
    if "http_port" in settings.given:
        if free_port(settings.http_port) != settings.http_port:
            raise CommandError(f"ALERTD_HTTP_PORT={settings.http_port} is taken by another program: stop it, or "
                               f"unset ALERTD_HTTP_PORT and the demo picks a free port")
        return settings.http_port
    return free_port(recorded or 8080)


async def cmd_demo(args, settings: Settings) -> None:
    data_dir = (args.data_dir or Path(settings.data_dir)).resolve()
    folder = DemoFolder(data_dir)
    try:
        folder.acquire()
    except AlreadyRunning as other:
        where = f"serving {other.http}" if other.http else "still starting"
        raise CommandError(f"another alertd demo is running on {data_dir} (pid {other.pid}, {where}): use that "
                           f"one, stop it first (Ctrl-C in its terminal, or kill {other.pid}), or give this one "
                           f"another --data-dir") from None
    try:
        await _run_demo(args, settings, data_dir, folder)
    finally:
        folder.release()


async def _run_demo(args, settings: Settings, data_dir: Path, folder: DemoFolder) -> None:
    recorded = folder.ports()
    pg = LocalPostgres(data_dir / "postgres", recorded.get("postgres", 5432))
    # Secured exactly as in production (dynamic security, no anonymous clients, a role per device): what a new
    # user tries here is what a deployer gets.
    admin_login, service_login = demo_devices.broker_logins(data_dir, data_dir / "mosquitto")
    broker = LocalMosquitto(data_dir / "mosquitto", recorded.get("mqtt", 1883), dynsec_admin=admin_login,
                            service=service_login)
    stopped = folder.stop_orphans(pg, broker.directory / "mosquitto.conf")
    if stopped:  # the last run was killed; they held its ports until now
        print(f"alertd demo: stopped the {' and '.join(stopped)} a killed earlier run left behind", file=sys.stderr)
    # the last run's ports when free, so exported settings and an enrolled phone app (tied to its origin) still work
    pg.port, broker.port = free_port(pg.port), free_port(broker.port)
    http_port = _http_port(settings, recorded.get("http"))
    pg.start()
    broker.start()
    assert broker.process is not None  # started just above
    folder.record_mosquitto(broker.process.pid)
    try:
        admin = await connect(pg.dsn())
        if not await admin.fetchval(queries.check_database_exists, "alertd"):
            await admin.execute("CREATE DATABASE alertd")
        await admin.close()
        folder.record_ports(postgres=pg.port, mqtt=broker.port, http=http_port)
        settings = settings.replace(
            database_url=pg.dsn("alertd"), mqtt_url=broker.service_url, mqtt_admin_url=broker.admin_url,
            http_host="127.0.0.1", http_port=http_port,
            public_url=f"http://127.0.0.1:{http_port}", jwt_secret=_secret(data_dir), data_dir=str(data_dir))
        person = await _seed(settings)
        now = SystemClock().now()
        day = 24 * 3600
        device_token = auth.issue(settings, role="device", sub=person["device_id"], ttl_s=365 * day, now=now,
                                  person_id=person["person_id"], device_id=person["device_id"])
        sample_lat, sample_lon = round(CENTRE_LAT + 0.2, 5), round(CENTRE_LON - 0.3, 5)
        conn = await connect(settings.database_url)
        try:  # the officer token belongs to the post the sample alert will go to
            sample = Location(sample_lat, sample_lon, 10.0, "gps", now)
            found = await dispatching.nearest_each(conn, Context(settings), now, ["police_post"], sample)
            post = found["police_post"].id
        finally:
            await conn.close()
        officer = auth.issue(settings, role="officer", sub=f"officer@{post}", ttl_s=day, now=now,
                             responder_id=post)
        console_logins = await _console_accounts(settings, data_dir, post)
        code = await _enrolment_code(settings, person)
        button = await _sample_button(settings, data_dir, person["person_id"])
        units = [{**unit, "listen": _simulator("unit-listen", "--url", unit["url"], "--unit", unit["unit_id"])}
                 for unit in await demo_devices.unit_terminals(settings, data_dir)]
        await demo_devices.sync_broker(settings.mqtt_admin_url, data_dir)
        admin_token = auth.issue(settings, role="admin", sub="admin-demo", ttl_s=day, now=now)
        engineer = auth.issue(settings, role="engineer", sub="engineer-demo", ttl_s=day, now=now)
        http = f"http://127.0.0.1:{http_port}"
        body = json.dumps({"client_alert_id": "demo-1", "location": {
            "lat": sample_lat, "lon": sample_lon, "accuracy_m": 25, "source": "gps"}})
        env = {k: v for k, v in settings.as_env().items()
               if k in ("ALERTD_DATABASE_URL", "ALERTD_MQTT_URL", "ALERTD_MQTT_ADMIN_URL", "ALERTD_HTTP_HOST",
                        "ALERTD_HTTP_PORT", "ALERTD_PUBLIC_URL", "ALERTD_JWT_SECRET", "ALERTD_DATA_DIR")}
        doc = {
            "urls": {"http": http, "database": settings.database_url, "mqtt": broker.url,
                     "console": f"{http}/console/", "app": f"{http}/app/", "openapi": f"{http}/openapi.json"},
            "env": env,
            "person": person,
            "tokens": {"device": device_token, "officer": officer, "admin": admin_token, "engineer": engineer},
            "officer_responder": post,
            "console_logins": console_logins,
            "button": button,
            "units": units,
            "curl": (f"curl -s -X POST {http}/v1/alerts -H 'Authorization: Bearer {device_token}' "
                     f"-H 'Content-Type: application/json' -d '{body}'"),
            "curl_dispatches": f"curl -s -H 'Authorization: Bearer {officer}' {http}/v1/dispatches",
            "enrolment_code": {"code": code.code, "expires_at": code.expires_at.isoformat(), "app": f"{http}/app/"},
            "serving": not args.no_serve,
            "data_dir": str(data_dir),
        }
        stop = asyncio.Event()
        if args.no_serve:
            stop.set()

        def on_ready() -> None:
            folder.announce(http)
            _announce(doc, args.json)

        await serve(settings, stop=stop, on_ready=on_ready)
    finally:
        broker.stop()
        pg.stop()


def _announce(doc: dict, as_json: bool) -> None:
    if as_json:
        print(json.dumps(doc, indent=2), flush=True)
        return
    if doc["serving"]:
        print("alertd demo is running (Ctrl-C stops it)\n")
    else:
        print(f"alertd demo is set up in {doc['data_dir']} but not running (--no-serve): its database, broker and "
              f"service are stopped again, so the URLs below answer only while `alertd demo` runs.\n")
    for name, url in doc["urls"].items():
        print(f"  {name:9} {url}")
    print("\nPoint other alertd commands at this demo:")
    for k, v in doc["env"].items():
        print(f"  export {k}={shlex.quote(v)}")
    print(f"\nConsole sign-ins at {doc['urls']['console']}:")
    for login in doc["console_logins"]:
        print(f"  {login['role'] + ':':<12} {login['username']} / {login['password']}")
    print(f"\nSample person {doc['person']['person_id']} (PIN 1234, duress PIN 9999)")
    code = doc["enrolment_code"]
    print(f"  phone app: open {code['app']} and enrol it with the code {code['code']} "
          f"(one use, until {code['expires_at'][:16].replace('T', ' ')} UTC; "
          f"`alertd people enrolment-code --person {doc['person']['person_id']}` makes a new one)")
    for role, token in doc["tokens"].items():
        print(f"  {role} token: {token}")
    print("\nRaise an alert as the sample person:\n  " + doc["curl"])
    print(f"\nSee it dispatched, as the sample officer of {doc['officer_responder']}:\n  " + doc["curl_dispatches"])
    print("\nMobile-unit terminals (MQTT username and client id: the unit id; each reads only its own dispatches):")
    for unit in doc["units"]:
        print(f"  {unit['unit_id']} / {unit['password']}")
    if doc["units"] and doc["units"][0]["listen"]:
        print("Listen for a unit's dispatches (simulator):\n  " + doc["units"][0]["listen"])
    if doc["button"]["press"]:
        print(f"\nPress the sample button {doc['button']['device_id']} (simulator):\n  " + doc["button"]["press"])
    else:
        print(f"\nThe sample button {doc['button']['device_id']}: the simulator (clients/simulator) comes with the "
              f"source tree, not with an installed alertd")
    print(flush=True)
