"""Benchmark: the retention purge on a database with many closed alerts.

Seeds N alerts closed 31 days ago (each with a trail of fixes, her SMS note on the timeline, a dispatch with an
officer's note and an outbox message carrying a place), plus N open ones that must stay untouched, then times:

- a dry run (`alertd purge --dry-run`'s work: everything, then rolled back);
- the real purge, batch by batch as the engine does it;
- one more pass with nothing left to do (what the engine pays at least hourly).

    .venv/bin/python bench/retention.py [--alerts 10000] [--fixes 5]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from alertd.engine.retention import purge
from alertd.store.db import connect
from bench.benchlib import Services

# (statement, the names of its parameters $1, $2, ...): n closed and n open alerts, each with everything a purge takes
SEED = [
    ("INSERT INTO people (id) SELECT 'P-B' || g FROM generate_series(1, $1) g", ("n",)),
    ("INSERT INTO responders (id, kind, name, region, location) "
     "VALUES ('pol-b', 'police_post', 'bench post', 'north', ST_MakePoint(70, 50)::geography)", ()),
    ("INSERT INTO alerts (id, person_id, channel, status, location, location_accuracy_m, location_source, "
     "triggered_at, created_at, closed_at) "
     "SELECT md5('a' || g)::uuid, 'P-B' || (g % $1 + 1), 'app', CASE WHEN g <= $1 THEN 'resolved' ELSE 'open' END, "
     "ST_MakePoint(70 + random() / 10, 50 + random() / 10)::geography, 15, 'gps', $2::timestamptz, $2, "
     "CASE WHEN g <= $1 THEN $2::timestamptz END FROM generate_series(1, 2 * $1) g", ("n", "closed")),
    ("INSERT INTO location_fixes (alert_id, location, accuracy_m, source, fix_time, received_at) "
     "SELECT a.id, ST_MakePoint(70 + random() / 10, 50 + random() / 10)::geography, 10, 'gps', $1, $1 "
     "FROM alerts a, generate_series(1, $2)", ("closed", "fixes")),
    ("INSERT INTO alert_events (alert_id, at, type, data) SELECT id, $1, 'sms_received', "
     "'{\"note\": \"I am at the school on Abay street\", \"flags\": []}'::jsonb FROM alerts", ("closed",)),
    ("INSERT INTO dispatches (id, alert_id, kind, responder_id, status, code, ack_deadline, created_at, note, "
     "updated_at) SELECT md5('d' || id::text)::uuid, id, 'police_post', 'pol-b', 'resolved', "
     "substr(md5(id::text), 1, 10), $1, $1, 'at her sister''s, blue gate', $1 FROM alerts", ("closed",)),
    ("INSERT INTO outbox (channel, recipient, template, payload, alert_id, status, next_attempt_at, created_at, "
     "sent_at) SELECT 'sms', 'pol-b', 'dispatch', jsonb_build_object('code', 'X', 'lat', 50.123, 'lon', 70.456), "
     "id, 'sent', $1, $1, $1 FROM alerts", ("closed",)),
]


async def main(n: int, fixes: int) -> dict:
    with Services(broker=False) as services:
        dsn = await services.database("alertd")
        settings = services.settings(dsn)
        conn = await connect(dsn)
        now = datetime.now(UTC)
        closed = now - timedelta(days=settings.retention_precise_days + 1)
        values = {"n": n, "closed": closed, "fixes": fixes}
        for statement, names in SEED:
            await conn.execute(statement, *(values[name] for name in names))
        await conn.execute("ANALYZE")
        result = {"closed_alerts": n, "open_alerts": n, "fixes_per_alert": fixes}
        started = time.perf_counter()
        would = await purge(conn, settings, now, actor="bench", dry_run=True)
        result["dry_run_s"] = round(time.perf_counter() - started, 3)
        started = time.perf_counter()
        removed = await purge(conn, settings, now, actor="bench")
        result["purge_s"] = round(time.perf_counter() - started, 3)
        result["closed_alerts_per_s"] = round(n / result["purge_s"])
        assert removed == would, (removed, would)
        started = time.perf_counter()
        again = await purge(conn, settings, now, actor="bench")
        result["idle_pass_ms"] = round((time.perf_counter() - started) * 1000, 1)
        assert not any(again.values())
        open_fixes = await conn.fetchval("SELECT count(*) FROM location_fixes f JOIN alerts a ON a.id = f.alert_id "
                                         "WHERE a.status = 'open'")
        assert open_fixes == n * fixes, "an open alert lost its trail"
        result["removed"] = removed
        await conn.close()
        return result


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--alerts", type=int, default=10000)
    parser.add_argument("--fixes", type=int, default=5)
    args = parser.parse_args()
    print(json.dumps(asyncio.run(main(args.alerts, args.fixes)), indent=2))
