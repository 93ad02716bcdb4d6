"""officers add / list / disable: console accounts for duty officers and supervisors."""

from __future__ import annotations

import getpass
import sys

from alertd.clock import SystemClock
from alertd.commands import CommandError
from alertd.service import officer_accounts
from alertd.settings import Settings
from alertd.store.db import connect


def register(sub) -> None:
    p = sub.add_parser("officers", help="duty officer console accounts")
    osub = p.add_subparsers(dest="action", required=True)
    add = osub.add_parser("add", help="create a console account for a responder (password from stdin if not given)")
    add.add_argument("--username", required=True)
    add.add_argument("--password", help="at least 10 characters; omit it (or give -) to read it from standard input")
    add.add_argument("--responder", required=True, help="the responder the account acts for")
    add.add_argument("--role", choices=officer_accounts.ROLES, default="officer",
                     help="a supervisor also sees the whole region of the responder")
    add.add_argument("--language", choices=officer_accounts.LANGUAGES, default="ru")
    add.set_defaults(handler=cmd_officers_add)

    ls = osub.add_parser("list", help="list console accounts")
    ls.set_defaults(handler=cmd_officers_list)

    off = osub.add_parser("disable", help="disable an account and end its sessions")
    off.add_argument("username")
    off.set_defaults(handler=cmd_officers_disable)


def read_password(given: str | None) -> str:
    """The password from the argument, else from standard input (prompted when it is a terminal)."""
    if given not in (None, "-"):
        return given
    if sys.stdin.isatty():
        return getpass.getpass("password: ")
    return sys.stdin.readline().rstrip("\r\n")


async def cmd_officers_add(args, settings: Settings) -> dict:
    password = read_password(args.password)
    if not password:
        raise CommandError("a password is required (--password, or on standard input)")
    conn = await connect(settings.database_url)
    try:
        return await officer_accounts.add(conn, SystemClock().now(), username=args.username, password=password,
                                  responder_id=args.responder, role=args.role, language=args.language)
    finally:
        await conn.close()


async def cmd_officers_list(args, settings: Settings) -> dict:
    conn = await connect(settings.database_url)
    try:
        return {"items": await officer_accounts.list_all(conn)}
    finally:
        await conn.close()


async def cmd_officers_disable(args, settings: Settings) -> dict:
    conn = await connect(settings.database_url)
    try:
        return await officer_accounts.update(conn, SystemClock().now(), args.username, disabled=True)
    finally:
        await conn.close()
