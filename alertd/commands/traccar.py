"""gateways add / list / revoke, trackers add / list / remove: Traccar servers and the trackers they forward."""

from __future__ import annotations

from alertd.clock import SystemClock
from alertd.service import gateways
from alertd.settings import Settings
from alertd.store.db import connect


def register(sub) -> None:
    p = sub.add_parser("gateways", help="Traccar servers forwarding GPS trackers' events (docs/traccar.md)")
    gsub = p.add_subparsers(dest="action", required=True)
    add = gsub.add_parser("add", help="a new gateway; prints its bearer token once (only its hash is kept)")
    add.add_argument("name", help="lowercase letters, digits, '.', '_' or '-' (e.g. traccar-north)")
    add.set_defaults(handler=cmd_gateways_add)
    ls = gsub.add_parser("list", help="gateways, with the trackers bound to each")
    ls.set_defaults(handler=cmd_gateways_list)
    rev = gsub.add_parser("revoke", help="its token stops working at once")
    rev.add_argument("name")
    rev.set_defaults(handler=cmd_gateways_revoke)

    p = sub.add_parser("trackers", help="GPS SOS trackers (by Traccar's uniqueId) mapped to people")
    tsub = p.add_subparsers(dest="action", required=True)
    add = tsub.add_parser("add", help="map a tracker to a person (again: to this person now)")
    add.add_argument("--person", required=True, help="the person's id (P-...)")
    add.add_argument("--unique-id", required=True, help="the tracker's identifier in Traccar (usually its IMEI)")
    add.add_argument("--gateway", help="only this gateway may speak for the tracker (default: any)")
    add.set_defaults(handler=cmd_trackers_add)
    ls = tsub.add_parser("list", help="trackers in use")
    ls.add_argument("--all", action="store_true", help="removed ones too")
    ls.set_defaults(handler=cmd_trackers_list)
    rm = tsub.add_parser("remove", help="stop mapping a tracker to its person")
    rm.add_argument("unique_id")
    rm.set_defaults(handler=cmd_trackers_remove)


async def _run(settings: Settings, action, *args, **kwargs):
    conn = await connect(settings.database_url)
    try:
        return await action(conn, *args, **kwargs)
    finally:
        await conn.close()


async def cmd_gateways_add(args, settings: Settings) -> dict:
    out = await _run(settings, gateways.add, SystemClock().now(), args.name)
    if not args.json:
        out["note"] = "the token is shown only now: put the header line into Traccar's event.forward.header"
    return out


async def cmd_gateways_list(args, settings: Settings) -> dict:
    return {"items": await _run(settings, gateways.list_all)}


async def cmd_gateways_revoke(args, settings: Settings) -> dict:
    return await _run(settings, gateways.revoke, SystemClock().now(), args.name)


async def cmd_trackers_add(args, settings: Settings) -> dict:
    return await _run(settings, gateways.add_tracker, SystemClock().now(), person_id=args.person,
                      unique_id=args.unique_id, gateway=args.gateway)


async def cmd_trackers_list(args, settings: Settings) -> dict:
    return {"items": await _run(settings, gateways.list_trackers, removed=args.all)}


async def cmd_trackers_remove(args, settings: Settings) -> dict:
    return await _run(settings, gateways.remove_tracker, SystemClock().now(), args.unique_id)
