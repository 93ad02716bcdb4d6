"""The `alertd` command line. Every command takes --json; commands live in alertd/commands/*."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import traceback

import asyncpg

from alertd.commands import CommandError, buttons, demo, drills, keys, officers, places, retention, server, traccar
from alertd.core.model import DomainError
from alertd.service.responders_file import FileError
from alertd.settings import Settings, SettingsError, redact_url
from alertd.store.db import DatabaseUnavailable

# Each module adds its subcommands with register(subparsers); a command is an async fn(args, settings) -> dict.
COMMAND_MODULES = [server, demo, officers, buttons, traccar, retention, keys, places, drills]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="alertd", description="Silent emergency alerts: intake, dispatch, escalation",
        epilog="Settings come from ALERTD_* environment variables (docs/configuration.md); `alertd demo` prints "
               "the ones that point these commands at it.")
    parser.add_argument("--json", action="store_true", help="machine-readable output (also after the command)")
    parser.add_argument("--debug", action="store_true", help="show the traceback of an error (also after the command)")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in COMMAND_MODULES:
        module.register(sub)
    return parser


def _print(result: dict, as_json: bool) -> None:
    if as_json:
        print(json.dumps(result, indent=2, default=str, ensure_ascii=False))
        return
    for key, value in result.items():
        if isinstance(value, dict | list):
            value = json.dumps(value, default=str, ensure_ascii=False)
        print(f"{key}: {value}")


def _database_advice(exc: DatabaseUnavailable) -> str:
    """One line: which database, why it failed, and what to do."""
    reason = exc.reason
    if isinstance(reason, asyncpg.InvalidCatalogNameError):
        todo = "create that database, or correct ALERTD_DATABASE_URL"
    elif isinstance(reason, asyncpg.InvalidAuthorizationSpecificationError | asyncpg.InvalidPasswordError):
        todo = "the server refused that user or password: correct ALERTD_DATABASE_URL"
    elif isinstance(reason, ValueError):
        todo = "it is not a PostgreSQL URL: write it as postgresql://user:password@host:5432/alertd"
    else:
        todo = "is PostgreSQL running there? Start it, or correct ALERTD_DATABASE_URL"
    why = str(reason).strip().splitlines()[0] if str(reason).strip() else type(reason).__name__
    return f"cannot connect to the database ALERTD_DATABASE_URL={redact_url(exc.dsn)} ({why}): {todo}"


def _explain(exc: BaseException) -> tuple[str, list[str] | None] | None:
    """What to print for an error the user can fix (message and any problems), or None for a bug."""
    if isinstance(exc, DatabaseUnavailable):
        return _database_advice(exc), None
    if isinstance(exc, asyncpg.UndefinedTableError):
        return f"the database has no alertd tables yet ({exc}): run `alertd migrate` first", None
    if isinstance(exc, CommandError | SettingsError | DomainError | FileError):
        return getattr(exc, "message", None) or str(exc), getattr(exc, "problems", None)
    return None


def event_loop_factory():
    """uvloop's event loop where it is installed (every platform but Windows), else asyncio's own."""
    try:
        import uvloop
    except ImportError:
        return None
    return uvloop.new_event_loop


def main(argv: list[str] | None = None) -> None:
    parser = build_parser()
    # --json and --debug may come before or after the subcommand
    argv = list(sys.argv[1:] if argv is None else argv)
    as_json, debug = "--json" in argv, "--debug" in argv
    argv = [a for a in argv if a not in ("--json", "--debug")]
    args = parser.parse_args(argv)
    args.json = as_json
    try:
        settings = Settings.from_env()
        settings.require(*getattr(args, "needs", ("database_url",)))
        with asyncio.Runner(loop_factory=event_loop_factory()) as runner:
            result = runner.run(args.handler(args, settings))
    except KeyboardInterrupt:
        sys.exit(130)
    except Exception as exc:
        explained = _explain(exc)
        if explained is None:
            raise
        if debug:
            traceback.print_exc()
        message, problems = explained
        if as_json:
            print(json.dumps({"error": {"message": message, "problems": problems}}, ensure_ascii=False))
        else:
            print(f"alertd: {message}", file=sys.stderr)
            for p in problems or []:
                print(f"  {p}", file=sys.stderr)
        sys.exit(2)
    if result is not None:
        _print(result, as_json)
