"""drills: start a drill for responders, end it, read its report, and the figures over a period (docs/drills.md)."""

from __future__ import annotations

import argparse
import getpass
from datetime import UTC, datetime

from alertd.clock import SystemClock
from alertd.context import Context
from alertd.service import drills
from alertd.settings import Settings
from alertd.store.db import create_pool

REPORT_HELP = """\
Over every drill started in [--since, --until): the share of dispatches acknowledged within their deadline and
within 60 s, against the targets docs/drills.md explains (80% within 60 s, 95% within the deadline), with each
drill's own figures. A dispatch stood down before its deadline, or whose deadline has not come yet, is not
counted."""


def register(sub) -> None:
    p = sub.add_parser("drills", help="drills for responders: start, end, report")
    dsub = p.add_subparsers(dest="action", required=True)
    start = dsub.add_parser("start", help="start a drill at a point or at a person (she is never contacted)")
    start.add_argument("--lat", type=float)
    start.add_argument("--lon", type=float)
    start.add_argument("--person", help="a person id: the drill is held at her last known fix, else her home")
    start.set_defaults(handler=cmd_start)
    end = dsub.add_parser("end", help="end a drill: stand down every dispatch still open")
    end.add_argument("drill_id")
    end.set_defaults(handler=cmd_end)
    show = dsub.add_parser("show", help="one drill's report")
    show.add_argument("drill_id")
    show.set_defaults(handler=cmd_show)
    report = dsub.add_parser("report", help="the figures over every drill of a period",
                             description="The figures over every drill of a period.", epilog=REPORT_HELP,
                             formatter_class=argparse.RawDescriptionHelpFormatter)
    report.add_argument("--since", required=True, type=when, help="DATE (2026-11-01) or an ISO date-time, UTC "
                        "unless it says otherwise")
    report.add_argument("--until", type=when, help="DATE or date-time (default: now)")
    report.add_argument("--region")
    report.set_defaults(handler=cmd_report)


def when(text: str) -> datetime:
    """A date (midnight UTC) or an ISO 8601 date-time (UTC unless it has an offset)."""
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a date or ISO date-time: {text!r}") from None
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def _actor() -> str:
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):
        return "cli"


async def _run(settings: Settings, action, *args, **kwargs) -> dict:
    pool = await create_pool(settings.database_url, min_size=1, max_size=2)
    try:
        return await action(pool, Context(settings, SystemClock()), drills.Scope(_actor(), None, "cli"), *args,
                            **kwargs)
    finally:
        await pool.close()


async def cmd_start(args, settings: Settings) -> dict:
    return await _run(settings, drills.start, lat=args.lat, lon=args.lon, person_id=args.person)


async def cmd_end(args, settings: Settings) -> dict:
    return await _run(settings, drills.end, args.drill_id)


async def cmd_show(args, settings: Settings) -> dict:
    return await _run(settings, drills.report, args.drill_id)


async def cmd_report(args, settings: Settings) -> dict:
    return await _run(settings, drills.period, since=args.since, until=args.until, region=args.region)
