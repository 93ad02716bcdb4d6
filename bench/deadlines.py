"""Benchmark 3: deadline precision of the real engine, two `alertd serve` processes on one database.

Starts two `alertd serve` (each runs the engine with its Deadlines and Outbox modules) on the system clock, then
seeds 10k pending dispatches (one per open alert, the three kinds in turn, nearest responders of the demo region)
whose deadlines are spread uniformly over a minute, and waits until every deadline has fired. Measured:

- lateness as recorded: dispatches.expired_at - ack_deadline (the `now` the claiming engine used);
- lateness as committed: when the NOTIFY naming the 'expired' timeline event reached a listener here (sent at
  commit), minus the deadline: what anyone else can see;
- the supervisor's missed-deadline notice: outbox sent_at - deadline;
- exactly once: one 'expired' event per dispatch, none still pending (missed), none fired early.

Baseline in the same run, in its own process: a bare asyncio loop that sleeps until each deadline.
Escalation dispatches get a 600 s deadline so that only the seeded 10k fire during the run.

    .venv/bin/python bench/deadlines.py [--dispatches 10000] [--spread 60] [--instances 2]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from collections import Counter
from datetime import UTC, datetime, timedelta

import asyncpg
import benchlib

from alertd.clock import SystemClock
from alertd.local.region import CENTRE_LAT, CENTRE_LON, HALF_LAT, HALF_LON, responders
from alertd.service.people import enrol_person
from alertd.service.responders import upsert_responders
from alertd.store.db import connect

P99_TARGET_S = 1.0
CODE_PREFIX = "Z0"  # seeded dispatch codes: Z0 + 4 digits; alertd's own codes never contain a 0

# One open, located alert per dispatch; the dispatch goes to the nearest responder of its kind.
SEED_ALERTS = f"""
INSERT INTO alerts (id, person_id, channel, client_alert_id, status, location, location_accuracy_m,
                    location_source, location_fix_time, triggered_at, created_at)
SELECT gen_random_uuid(), $1, 'app', 'bench-' || g, 'open',
       ST_SetSRID(ST_MakePoint({CENTRE_LON} + (random() * 2 - 1) * {HALF_LON},
                               {CENTRE_LAT} + (random() * 2 - 1) * {HALF_LAT}), 4326)::geography,
       20, 'gps', $2, $2, $2
  FROM generate_series(0, $3 - 1) AS g
"""
SEED_REGIONS = """
UPDATE alerts a SET region = (SELECT r.region FROM responders r WHERE r.kind = 'police_post'
                               ORDER BY r.location <-> a.location LIMIT 1)
 WHERE a.client_alert_id LIKE 'bench-%'
"""
SEED_DISPATCHES = f"""
INSERT INTO dispatches (id, alert_id, kind, responder_id, code, attempt, distance_m, ack_deadline, created_at,
                        updated_at)
SELECT gen_random_uuid(), a.id, k.kind, n.id, '{CODE_PREFIX}' || lpad(g::text, 4, '0'), 1, n.distance_m,
       $1::timestamptz + make_interval(secs => random() * $2), $3, $3
  FROM alerts a
 CROSS JOIN LATERAL (SELECT substr(a.client_alert_id, 7)::int AS g) AS i
 CROSS JOIN LATERAL (SELECT (ARRAY['police_post', 'crisis_centre', 'mobile_unit'])[i.g % 3 + 1] AS kind) AS k
 CROSS JOIN LATERAL (SELECT r.id, ST_Distance(r.location, a.location) AS distance_m FROM responders r
                      WHERE r.kind = k.kind ORDER BY r.location <-> a.location LIMIT 1) AS n
 WHERE a.client_alert_id LIKE 'bench-%'
"""
SEEDED = f"d.code LIKE '{CODE_PREFIX}%'"


async def seed(dsn: str, count: int, first_deadline: datetime, spread_s: float) -> list[float]:
    """The demo region, one person, `count` open alerts each with one pending dispatch; the deadlines (epoch s)."""
    now = SystemClock().now()
    conn = await connect(dsn)
    try:
        await upsert_responders(conn, responders())
        person = await enrol_person(conn, now, phones=["+77050000001"])
        await conn.execute("SELECT setseed(0.17)")
        await conn.execute(SEED_ALERTS, person.person_id, now, count)
        await conn.execute(SEED_REGIONS)
        await conn.execute(SEED_DISPATCHES, first_deadline, spread_s, now)
        await conn.execute("ANALYZE")
        rows = await conn.fetch(f"SELECT ack_deadline FROM dispatches d WHERE {SEEDED}")
    finally:
        await conn.close()
    return [r["ack_deadline"].timestamp() for r in rows]


class CommitWatch:
    """Hears timeline events as they commit: the alert_events trigger NOTIFYs the range of new event ids of each
    statement, delivered at commit. An event counts as heard at the first NOTIFY whose range covers its id
    (ranges of concurrent statements may interleave, so an event is never judged later than it was)."""

    def __init__(self) -> None:
        self.first_heard: dict[int, float] = {}

    def __call__(self, _conn, _pid, _channel, payload: str) -> None:
        at = time.time()
        note = json.loads(payload)
        first, last = note.get("first_id", note.get("id")), note.get("last_id", note.get("id"))
        if first is None or last is None:
            return
        for event_id in range(int(first), int(last) + 1):
            self.first_heard.setdefault(event_id, at)


async def wait_all_fired(dsn: str, last_deadline: float, timeout_s: float) -> int:
    """Until no seeded dispatch is pending (or the last deadline + timeout passed); the number still pending."""
    conn = await asyncpg.connect(dsn)
    try:
        while True:
            pending = await conn.fetchval(f"SELECT count(*) FROM dispatches d WHERE {SEEDED} AND status = 'pending'")
            if (pending == 0 and time.time() > last_deadline) or time.time() > last_deadline + timeout_s:
                return pending
            await asyncio.sleep(0.5)
    finally:
        await conn.close()


async def outcome(dsn: str) -> dict:
    conn = await asyncpg.connect(dsn)
    try:
        recorded = await conn.fetch(
            f"""SELECT d.id::text AS id, extract(epoch FROM d.ack_deadline) AS deadline,
                       extract(epoch FROM d.expired_at - d.ack_deadline) AS late
                  FROM dispatches d WHERE {SEEDED} AND d.expired_at IS NOT NULL""")
        events = await conn.fetch(
            f"""SELECT e.id, e.dispatch_id::text AS dispatch_id FROM alert_events e
                  JOIN dispatches d ON d.id = e.dispatch_id WHERE e.type = 'expired' AND {SEEDED}""")
        notices = await conn.fetch(
            f"""SELECT extract(epoch FROM o.sent_at - d.ack_deadline) AS late FROM outbox o
                  JOIN dispatches d ON d.id = o.dispatch_id
                 WHERE o.template = 'missed_deadline' AND o.channel = 'log' AND {SEEDED}
                   AND o.status = 'sent'""")
        escalated = await conn.fetchval(
            "SELECT count(*) FROM dispatches WHERE attempt = 2 AND code NOT LIKE $1", CODE_PREFIX + "%")
        statuses = dict(await conn.fetch(f"SELECT status, count(*) FROM dispatches d WHERE {SEEDED} GROUP BY 1"))
    finally:
        await conn.close()
    return {
        "deadline": {r["id"]: float(r["deadline"]) for r in recorded},
        "recorded_late": [float(r["late"]) for r in recorded],
        "expired_events": [(r["id"], r["dispatch_id"]) for r in events],
        "notice_late": [float(r["late"]) for r in notices],
        "escalation_dispatches": escalated,
        "statuses": statuses,
    }


async def sleeper_baseline(deadlines_file: str) -> None:
    """The yardstick, run as its own process: one asyncio task per deadline sleeping until it; prints lateness."""
    with open(deadlines_file) as f:
        deadlines = json.load(f)
    late: list[float] = []

    async def one(deadline: float) -> None:
        await asyncio.sleep(max(0.0, deadline - time.time()))
        late.append(time.time() - deadline)

    await asyncio.gather(*(one(d) for d in deadlines))
    json.dump({"late": late}, sys.stdout)


def fmt(s: dict, unit: float = 1000.0) -> str:
    return f"{s['n']:6d} {s['p50'] * unit:9.1f} {s['p99'] * unit:9.1f} {s['max'] * unit:9.1f}"


def fired_by(children) -> list[int]:
    """How many 'deadline missed' lines each instance logged."""
    return [child.log_path.read_text(errors="replace").count('"deadline missed"') for child in children]


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dispatches", type=int, default=10_000)
    parser.add_argument("--spread", type=float, default=60.0, help="deadlines spread over this many seconds")
    parser.add_argument("--lead", type=float, default=8.0,
                        help="seconds from the start of seeding (engines running) to the first deadline")
    parser.add_argument("--grace", type=float, default=60.0,
                        help="seconds after the last deadline to wait for stragglers before counting them missed")
    parser.add_argument("--instances", type=int, default=2, help="`alertd serve` processes on the database")
    parser.add_argument("--no-durable", action="store_true", help="fsync off (default: durable, fsync on)")
    parser.add_argument("--sleeper-baseline", metavar="DEADLINES_JSON", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.sleeper_baseline:
        await sleeper_baseline(args.sleeper_baseline)
        return 0
    if args.dispatches > 10_000:
        parser.error("at most 10000 dispatches (seeded codes are Z0 + 4 digits)")

    with benchlib.Services(durable=not args.no_durable) as services:
        dsn = await services.database("alertd")
        settings = services.settings(dsn, ack_deadline_police_post=600, ack_deadline_crisis_centre=600,
                                     ack_deadline_mobile_unit=600)
        instances = []
        for i in range(args.instances):
            s = settings if i == 0 else settings.replace(http_port=benchlib.free_port())
            instances.append((s, services.spawn([benchlib.PYTHON, "-m", "alertd", "serve"], env=s.as_env(),
                                                log_name=f"alertd-{i + 1}.log")))
        for s, child in instances:
            benchlib.wait_ready(f"http://127.0.0.1:{s.http_port}/readyz", child)
        # Seeded once the engines run, so that every deadline is one a running engine has to meet.
        first = datetime.now(UTC) + timedelta(seconds=args.lead)
        deadlines = await seed(dsn, args.dispatches, first, args.spread)
        print(f"deadline precision: {benchlib.machine()}; PostgreSQL {'fsync off' if args.no_durable else 'durable'}; "
              f"{len(deadlines)} dispatches due over {args.spread:.0f} s from {first.timestamp() - time.time():.1f} s "
              f"after seeding; {args.instances} x alertd serve (engine poll {settings.engine_poll_s} s)", flush=True)
        deadlines_file = services.workdir / "deadlines.json"
        deadlines_file.write_text(json.dumps(deadlines))
        sleeper = asyncio.create_task(benchlib.run_json(
            [benchlib.PYTHON, __file__, "--sleeper-baseline", str(deadlines_file)]))
        watch = CommitWatch()
        listener = await asyncpg.connect(dsn)
        await listener.add_listener("alertd_events", watch)
        pg_cpu, wall = benchlib.postgres_cpu_seconds(services.pg), time.time()
        startup_cpu = sum(benchlib.cpu_seconds(child.pid) for _s, child in instances)
        await wait_all_fired(dsn, max(deadlines), timeout_s=args.grace)
        await asyncio.sleep(2)  # a second firing, if any, would come now
        await listener.close()
        children = [child for _s, child in instances]
        cpu = {"alertd": sum(benchlib.cpu_seconds(c.pid) for c in children) - startup_cpu,
               "postgres": benchlib.postgres_cpu_seconds(services.pg) - pg_cpu, "wall": time.time() - wall}
        for child in children:
            benchlib.stop_child(child)
        per_instance = fired_by(children)
        result = await outcome(dsn)
        base = await sleeper

    committed_late = [watch.first_heard[event_id] - result["deadline"][dispatch_id]
                      for event_id, dispatch_id in result["expired_events"]
                      if event_id in watch.first_heard and dispatch_id in result["deadline"]]
    per_dispatch = Counter(dispatch_id for _id, dispatch_id in result["expired_events"])
    twice = sum(1 for n in per_dispatch.values() if n > 1)
    fired = len(result["recorded_late"])
    rec = benchlib.summary(result["recorded_late"])
    com = benchlib.summary(committed_late)
    note = benchlib.summary(result["notice_late"])
    bare = benchlib.summary(base["late"])

    print(f"\n{'lateness (ms)':44} {'n':>6} {'p50':>9} {'p99':>9} {'max':>9}")
    print(f"{'alertd, recorded (expired_at - ack_deadline)':44} {fmt(rec)}")
    print(f"{'alertd, committed (NOTIFY heard - deadline)':44} {fmt(com)}")
    print(f"{'alertd, supervisor notice sent (outbox)':44} {fmt(note)}")
    print(f"{'baseline: bare asyncio.sleep until deadline':44} {fmt(bare)}")
    print(f"\np99 ratio alertd recorded/baseline: {rec['p99'] / bare['p99']:.0f}x "
          f"({rec['p99'] * 1000:.1f} vs {bare['p99'] * 1000:.1f} ms); committed/baseline: "
          f"{com['p99'] / bare['p99']:.0f}x")
    print(f"fired by instance: {per_instance}; escalation dispatches created: {result['escalation_dispatches']}; "
          f"seeded dispatches by status: {result['statuses']}")
    print(f"CPU used over {cpu['wall']:.0f} s: alertd instances {cpu['alertd']:.1f} s, "
          f"PostgreSQL {cpu['postgres']:.1f} s: {1000 * (cpu['alertd'] + cpu['postgres']) / max(1, fired):.1f} ms "
          f"per escalation, with its outbox messages")
    print(f"earliest firing: {min(result['recorded_late'], default=float('nan')) * 1000:.1f} ms after its deadline")

    verdicts = benchlib.Verdicts()
    verdicts.check(rec["p99"] < P99_TARGET_S, f"p99 lateness < {P99_TARGET_S:.0f} s (recorded)",
                   f"{rec['p99'] * 1000:.1f} ms (max {rec['max'] * 1000:.1f} ms)")
    verdicts.check(com["p99"] < P99_TARGET_S, f"p99 lateness < {P99_TARGET_S:.0f} s (committed, seen by others)",
                   f"{com['p99'] * 1000:.1f} ms (max {com['max'] * 1000:.1f} ms)")
    verdicts.check(twice == 0 and len(per_dispatch) == fired, "no deadline fired twice",
                   f"{twice} dispatches with 2+ 'expired' events")
    left = result["statuses"].get("pending", 0)
    verdicts.check(left == 0 and fired == len(deadlines), "no deadline missed",
                   f"{fired} of {len(deadlines)} fired, {left} still pending {args.grace:.0f} s after the last deadline")
    verdicts.check(min(result["recorded_late"], default=0) >= 0, "none fired early",
                   f"earliest {min(result['recorded_late'], default=0) * 1000:.1f} ms after its deadline")
    verdicts.print()
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
