"""The `alertd` command line. Every command takes --json; commands live in alertd/commands/*."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys

from alertd.commands import CommandError, buttons, core, demo, keys, officers, retention
from alertd.core.model import DomainError
from alertd.responders_file import FileError
from alertd.settings import Settings, SettingsError

# Each module adds its subcommands with register(subparsers); a command is an async fn(args, settings) -> dict.
COMMAND_MODULES = [core, demo, officers, buttons, retention, keys]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="alertd", description="Silent emergency alerts: intake, dispatch, escalation")
    parser.add_argument("--json", action="store_true", help="machine-readable output")
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


def main(argv: list[str] | None = None) -> None:
    parser = build_parser()
    # --json may come before or after the subcommand
    argv = list(sys.argv[1:] if argv is None else argv)
    as_json = "--json" in argv
    argv = [a for a in argv if a != "--json"]
    args = parser.parse_args(argv)
    args.json = as_json
    try:
        settings = Settings.from_env()
        result = asyncio.run(args.handler(args, settings))
    except (CommandError, SettingsError, DomainError, FileError) as exc:
        message = getattr(exc, "message", None) or str(exc)
        problems = getattr(exc, "problems", None)
        if as_json:
            print(json.dumps({"error": {"message": message, "problems": problems}}, ensure_ascii=False))
        else:
            print(f"alertd: {message}", file=sys.stderr)
            for p in problems or []:
                print(f"  {p}", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:
        sys.exit(130)
    if result is not None:
        _print(result, as_json)
