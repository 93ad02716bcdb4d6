"""`alertd demo`: PostgreSQL+PostGIS and Mosquitto under a data folder, seeded, and the service, on one machine."""

from __future__ import annotations

import asyncio
import json
import secrets
from pathlib import Path

from alertd import auth
from alertd.clock import SystemClock
from alertd.commands.core import serve
from alertd.core.model import Location
from alertd.demo_region import CENTRE_LAT, CENTRE_LON, responders
from alertd.localservices import LocalMosquitto, LocalPostgres, free_port
from alertd.service import dispatching, officers, provisioning
from alertd.service.context import Context
from alertd.service.enrolment import enrol_person, upsert_responders
from alertd.settings import Settings
from alertd.store import queries
from alertd.store.db import connect
from alertd.store.migrate import migrate


def register(sub) -> None:
    p = sub.add_parser("demo", help="everything on one machine: database, broker, sample region, the service")
    p.add_argument("--data-dir", type=Path, help="default ./.alertd or ALERTD_DATA_DIR")
    p.add_argument("--no-serve", action="store_true", help="set up and print, then stop (for scripts)")
    p.set_defaults(handler=cmd_demo)


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
        person = await conn.fetchrow(queries.first_phone_person)
        if person is None:
            enrolled = await enrol_person(
                conn, now, phones=["+77000000001"], pin="1234", duress_pin="9999", code_phrase="buy bread",
                home=Location(CENTRE_LAT + 0.21, CENTRE_LON - 0.35, 30.0, "home", now))
            person = {"person_id": enrolled.person_id, "device_id": enrolled.device_id}
    finally:
        await conn.close()
    return dict(person)


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
            await officers.add(conn, SystemClock().now(), username=login["username"], password=login["password"],
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
            creds = await provisioning.provision_button(conn, provisioning.broker_accounts(settings),
                                                        SystemClock().now(), person_id=person_id)
        finally:
            await conn.close()
        path.write_text(json.dumps(creds.as_json()))
        path.chmod(0o600)
    creds = json.loads(path.read_text())
    host_port = settings.mqtt_url.split("://", 1)[1].rsplit("@", 1)[-1]
    url = f"mqtt://{creds['username']}:{creds['password']}@{host_port}"
    return {**creds, "press": (f"python -m clients.simulator press --url {url} --device {creds['device_id']} "
                               f"--secret {creds['hmac_secret']} --lat {CENTRE_LAT + 0.2:.5f} "
                               f"--lon {CENTRE_LON - 0.3:.5f}")}


async def cmd_demo(args, settings: Settings) -> None:
    data_dir = (args.data_dir or Path(settings.data_dir)).resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    pg = LocalPostgres(data_dir / "postgres", free_port(5432)).start()
    broker = LocalMosquitto(data_dir / "mosquitto", free_port(1883)).start()
    try:
        admin = await connect(pg.dsn())
        if not await admin.fetchval(queries.database_exists, "alertd"):
            await admin.execute("CREATE DATABASE alertd")
        await admin.close()
        http_port = free_port(8080)
        settings = settings.replace(
            database_url=pg.dsn("alertd"), mqtt_url=broker.url, http_host="127.0.0.1", http_port=http_port,
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
        button = await _sample_button(settings, data_dir, person["person_id"])
        admin_token = auth.issue(settings, role="admin", sub="admin-demo", ttl_s=day, now=now)
        engineer = auth.issue(settings, role="engineer", sub="engineer-demo", ttl_s=day, now=now)
        http = f"http://127.0.0.1:{http_port}"
        body = json.dumps({"client_alert_id": "demo-1", "location": {
            "lat": sample_lat, "lon": sample_lon, "accuracy_m": 25, "source": "gps"}})
        env = {k: v for k, v in settings.as_env().items()
               if k in ("ALERTD_DATABASE_URL", "ALERTD_MQTT_URL", "ALERTD_HTTP_HOST", "ALERTD_HTTP_PORT",
                        "ALERTD_PUBLIC_URL", "ALERTD_JWT_SECRET", "ALERTD_DATA_DIR")}
        doc = {
            "urls": {"http": http, "database": settings.database_url, "mqtt": settings.mqtt_url,
                     "console": f"{http}/console/", "app": f"{http}/app/", "openapi": f"{http}/openapi.json"},
            "env": env,
            "person": person,
            "tokens": {"device": device_token, "officer": officer, "admin": admin_token, "engineer": engineer},
            "officer_responder": post,
            "console_logins": console_logins,
            "button": button,
            "curl": (f"curl -s -X POST {http}/v1/alerts -H 'Authorization: Bearer {device_token}' "
                     f"-H 'Content-Type: application/json' -d '{body}'"),
        }
        stop = asyncio.Event()
        if args.no_serve:
            stop.set()

        def on_ready() -> None:
            _announce(doc, args.json)

        await serve(settings, stop=stop, on_ready=on_ready)
    finally:
        broker.stop()
        pg.stop()


def _announce(doc: dict, as_json: bool) -> None:
    if as_json:
        print(json.dumps(doc, indent=2), flush=True)
        return
    print("alertd demo is running (Ctrl-C stops it)\n")
    for name, url in doc["urls"].items():
        print(f"  {name:9} {url}")
    print("\nPoint other alertd commands at this demo:")
    for k, v in doc["env"].items():
        print(f"  export {k}='{v}'")
    print(f"\nConsole sign-ins at {doc['urls']['console']}:")
    for login in doc["console_logins"]:
        print(f"  {login['role'] + ':':<12} {login['username']} / {login['password']}")
    print(f"\nSample person {doc['person']['person_id']} (PIN 1234, duress PIN 9999)")
    for role, token in doc["tokens"].items():
        print(f"  {role} token: {token}")
    print("\nRaise an alert:\n  " + doc["curl"])
    print(f"\nPress the sample button {doc['button']['device_id']} (simulator):\n  " + doc["button"]["press"] + "\n",
          flush=True)
