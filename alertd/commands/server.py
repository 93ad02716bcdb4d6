"""migrate, serve, responders import, people enrol, tokens issue."""

from __future__ import annotations

import argparse
import asyncio
import gc
import getpass
import signal
import textwrap
from pathlib import Path

import asyncpg
from aiohttp import web

from alertd import auth, log
from alertd.app import create_app
from alertd.clock import SystemClock
from alertd.commands import CommandError
from alertd.core.model import Location, NotFound
from alertd.service.enrol_codes import DEFAULT_TTL_S as CODE_TTL_S
from alertd.service.enrol_codes import issue_code
from alertd.service.people import enrol_person
from alertd.service.responders import upsert_responders
from alertd.service.responders_file import read as read_responders
from alertd.settings import Settings
from alertd.store import queries
from alertd.store.db import connect
from alertd.store.migrate import migrate

ENVIRONMENT = ("Settings come from the environment: ALERTD_DATABASE_URL (required){more}; "
               "see docs/configuration.md. `alertd demo` prints export lines that point this command at it.")

RESPONDER_COLUMNS = """\
CSV columns (a header line; comma, semicolon or tab separated, UTF-8):
  id, kind, name, lat, lon, region   required; kind is police_post, crisis_centre or mobile_unit;
                                     lat/lon in decimal degrees (WGS 84)
  phone                              E.164 number for SMS dispatches (optional)
  jurisdiction                       the area a police post covers, as a GeoJSON Polygon or MultiPolygon
                                     (optional; a post whose area covers the alert wins over a nearer one)
  on_duty                            true/false, yes/no or 1/0 (optional, default true)
  language                           kk, ru or en for its SMS (optional, default ru)
GeoJSON: a FeatureCollection of Point features with the same properties. Spreadsheets (.xlsx, .ods):
save as CSV first. All rows are imported or none."""


def _paragraphs(*texts: str) -> str:
    return "\n\n".join(textwrap.fill(t, 100) for t in texts)


def register(sub) -> None:
    raw = argparse.RawDescriptionHelpFormatter
    p = sub.add_parser("migrate", help="apply migrations/*.sql in order (safe to run twice)", formatter_class=raw,
                       description=_paragraphs("Apply the database migrations in order under an advisory lock; "
                                               "safe to run twice.", ENVIRONMENT.format(more="")))
    p.set_defaults(handler=cmd_migrate)

    p = sub.add_parser(
        "serve", help="run the service: HTTP, MQTT ingest, engine", formatter_class=raw,
        description=_paragraphs(
            "Run the service: HTTP API and console, MQTT ingest, deadline engine, outbox.",
            ENVIRONMENT.format(more=", ALERTD_JWT_SECRET (required, 32+ bytes), ALERTD_MQTT_URL, "
                                    "ALERTD_HTTP_HOST/ALERTD_HTTP_PORT (127.0.0.1/8080), ALERTD_PUBLIC_URL, "
                                    "TWILIO_* (without them SMS goes to the log)")))
    p.set_defaults(handler=cmd_serve, needs=("database_url", "jwt_secret"))

    p = sub.add_parser("responders", help="the responder directory")
    rsub = p.add_subparsers(dest="action", required=True)
    imp = rsub.add_parser("import", help="import CSV (id,kind,name,lat,lon,phone,region) or GeoJSON; updates by id",
                          description="Import a responder directory; re-import updates by id.",
                          epilog=RESPONDER_COLUMNS, formatter_class=raw)
    imp.add_argument("file", type=Path, help="a .csv or .geojson file")
    imp.set_defaults(handler=cmd_responders_import)
    duty = rsub.add_parser("duty", help="put a responder on or off duty")
    duty.add_argument("responder_id")
    duty.add_argument("state", choices=["on", "off"])
    duty.set_defaults(handler=cmd_responders_duty)

    p = sub.add_parser("people", help="people who may raise alerts")
    psub = p.add_subparsers(dest="action", required=True)
    enrol = psub.add_parser("enrol", help="enrol a person; prints her pseudonymous id and a phone app token")
    enrol.add_argument("--phone", action="append", required=True, help="E.164 number (repeatable)")
    enrol.add_argument("--home-lat", type=float, help="her home, used when an SMS carries no location (with --home-lon)")
    enrol.add_argument("--home-lon", type=float, help="longitude of her home (with --home-lat)")
    enrol.add_argument("--home-accuracy", type=float, default=50.0, help="metres (default 50)")
    enrol.add_argument("--pin", help="4 or more digits she types to cancel an alert")
    enrol.add_argument("--duress-pin",
                       help="4 or more digits, not her PIN: looks like a cancel but keeps the alert live, marked duress")
    enrol.add_argument("--code-phrase", help="only an SMS containing this text raises an alert (any case or accents)")
    enrol.add_argument("--opt-in-sms", action="store_true", help="she agreed to receive SMS from alertd")
    enrol.add_argument("--token-ttl", type=int, default=365 * 86400,
                       help="seconds the printed phone app token lives (default 1 year)")
    enrol.add_argument("--code-ttl", type=int, default=CODE_TTL_S,
                       help="seconds the printed one-time enrolment code for the phone app lives (default 15 min)")
    enrol.set_defaults(handler=cmd_people_enrol, needs=("database_url", "jwt_secret"))
    code = psub.add_parser("enrolment-code", help="a new one-time code for her phone app (older ones stop working)")
    code.add_argument("--person", required=True)
    code.add_argument("--code-ttl", type=int, default=CODE_TTL_S, help="seconds (default 15 min)")
    code.set_defaults(handler=cmd_people_enrolment_code, needs=("database_url", "jwt_secret"))

    p = sub.add_parser("tokens", help="JWTs")
    tsub = p.add_subparsers(dest="action", required=True)
    issue = tsub.add_parser("issue", help="issue a token for an officer, supervisor, engineer or admin")
    issue.add_argument("--role", required=True, choices=["officer", "supervisor", "engineer", "admin"])
    issue.add_argument("--responder", help="the responder an officer or supervisor acts for")
    issue.add_argument("--sub", help="who the token is for (default: derived from role and responder)")
    issue.add_argument("--ttl", type=int, default=8 * 3600, help="seconds (default 8 h)")
    issue.set_defaults(handler=cmd_tokens_issue, needs=("jwt_secret",))


async def cmd_migrate(args, settings: Settings) -> dict:
    conn = await connect(settings.database_url)
    try:
        applied = await migrate(conn)
    finally:
        await conn.close()
    return {"applied": [f"{m.version:04d}_{m.name}" for m in applied]}


async def cmd_responders_import(args, settings: Settings) -> dict:
    if not args.file.exists():
        raise CommandError(f"no such file: {args.file}")
    records = read_responders(args.file)
    conn = await connect(settings.database_url)
    try:
        counts = await upsert_responders(conn, records)
    except asyncpg.PostgresError as exc:
        raise CommandError(f"import refused, nothing changed: {exc}") from None
    finally:
        await conn.close()
    return {"file": str(args.file), **counts}


async def cmd_responders_duty(args, settings: Settings) -> dict:
    conn = await connect(settings.database_url)
    try:
        found = await conn.fetchval(queries.set_on_duty, args.responder_id, args.state == "on")
    finally:
        await conn.close()
    if not found:
        raise CommandError(f"no responder {args.responder_id}")
    return {"responder_id": args.responder_id, "on_duty": args.state == "on"}


async def cmd_people_enrol(args, settings: Settings) -> dict:
    settings.validate()
    if (args.home_lat is None) != (args.home_lon is None):
        raise CommandError("give both --home-lat and --home-lon, or neither")
    now = SystemClock().now()
    home = (Location(args.home_lat, args.home_lon, args.home_accuracy, "home", now)
            if args.home_lat is not None else None)
    conn = await connect(settings.database_url)
    try:
        enrolled = await enrol_person(conn, now, phones=args.phone, home=home, pin=args.pin,
                                      duress_pin=args.duress_pin, code_phrase=args.code_phrase,
                                      opt_in_sms=args.opt_in_sms)
        code = await issue_code(conn, settings, now, person_id=enrolled.person_id, device_id=enrolled.device_id,
                                ttl_s=args.code_ttl)
    finally:
        await conn.close()
    token = auth.issue(settings, role="device", sub=enrolled.device_id, ttl_s=args.token_ttl, now=now,
                       person_id=enrolled.person_id, device_id=enrolled.device_id)
    return {"person_id": enrolled.person_id, "device_id": enrolled.device_id, "token": token,
            "enrolment_code": code.code, "enrolment_code_expires_at": code.expires_at.isoformat()}


async def cmd_people_enrolment_code(args, settings: Settings) -> dict:
    settings.validate()
    conn = await connect(settings.database_url)
    try:
        code = await issue_code(conn, settings, SystemClock().now(), person_id=args.person, ttl_s=args.code_ttl)
    except NotFound:
        raise CommandError(f"no enrolled phone app device for {args.person}") from None
    finally:
        await conn.close()
    return {"person_id": args.person, "device_id": code.device_id, "enrolment_code": code.code,
            "enrolment_code_expires_at": code.expires_at.isoformat()}


async def cmd_tokens_issue(args, settings: Settings) -> dict:
    settings.validate()
    region = None
    if args.role in ("officer", "supervisor"):
        if not args.responder:
            raise CommandError(f"--responder is required for role {args.role}")
        settings.require("database_url")
        conn = await connect(settings.database_url)
        try:
            row = await conn.fetchrow(queries.check_responder, args.responder)
        finally:
            await conn.close()
        if row is None:
            raise CommandError(f"no responder {args.responder}")
        region = row["region"]
    sub = args.sub or (f"{args.role}@{args.responder}" if args.responder else f"{args.role}-{getpass.getuser()}")
    token = auth.issue(settings, role=args.role, sub=sub, ttl_s=args.ttl, now=SystemClock().now(),
                       responder_id=args.responder, region=region)
    return {"role": args.role, "sub": sub, "responder_id": args.responder, "token": token}


async def serve(settings: Settings, stop: asyncio.Event | None = None, on_ready=None) -> None:
    """Run the service until `stop` is set or SIGINT/SIGTERM."""
    settings.validate()
    log.setup(settings.log_level)
    app = create_app(settings)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, settings.http_host, settings.http_port, reuse_port=settings.http_reuse_port or None)
    await site.start()
    # What start-up made (modules, the app, the pools) lives as long as the process: out of the collector's sight,
    # so a full collection under load walks only what requests made, not the whole program every time.
    gc.collect()
    gc.freeze()
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    import logging

    logging.getLogger("alertd").info("serving", extra={"fields": {
        "http": f"http://{settings.http_host}:{settings.http_port}"}})
    if on_ready:
        on_ready()
    try:
        await stop.wait()
    finally:
        await runner.cleanup()


async def cmd_serve(args, settings: Settings) -> None:
    await serve(settings)
