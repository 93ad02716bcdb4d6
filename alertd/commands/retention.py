"""purge: one retention pass by hand (the engine runs the same purge every hour)."""

from __future__ import annotations

from alertd.clock import SystemClock
from alertd.engine.retention import purge
from alertd.settings import Settings
from alertd.store.db import connect


def register(sub) -> None:
    p = sub.add_parser("purge", help="remove what the retention periods say must go (ALERTD_RETENTION_*_DAYS)")
    p.add_argument("--dry-run", action="store_true", help="count what would go and change nothing")
    p.set_defaults(handler=cmd_purge)


async def cmd_purge(args, settings: Settings) -> dict:
    settings.check_retention()
    now = SystemClock().now()
    conn = await connect(settings.database_url)
    try:
        counts = await purge(conn, settings, now, actor="cli", dry_run=args.dry_run)
    finally:
        await conn.close()
    return {"dry_run": args.dry_run, "at": now.isoformat(), "precise_days": settings.retention_precise_days,
            "audit_days": settings.retention_audit_days, "would_remove" if args.dry_run else "removed": counts}
