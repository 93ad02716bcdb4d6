"""Benchmark 2: the nearest-responder query (queries.find_nearest_responders) at 1k, 100k and 1M responders.

Each size is bulk-loaded with generate_series (indexes dropped during the load and rebuilt exactly as the
migrations define them, then ANALYZE). For random points of the region the query is timed as a client round
trip the two ways the service runs it (alertd.service.dispatching): for all three kinds at once, as an alert's
dispatch does, and for one kind, as an escalation does. Baselines in the same run: a bare `SELECT 1` right after
each, on the same connection, and the same queries at the smallest size. The server's own execution time of
the all-kinds query (EXPLAIN ANALYZE, 500 points) shows the query's cost apart from a busy machine's noise.

    .venv/bin/python bench/nearest.py [--sizes 1000,100000,1000000] [--queries 3000]
"""

from __future__ import annotations

import argparse
import asyncio
import math
import random
import sys
import time
from datetime import UTC, datetime

import benchlib

from alertd.context import Context
from alertd.core.model import Location
from alertd.local.region import CENTRE_LAT, CENTRE_LON, HALF_LAT, HALF_LON
from alertd.service import dispatching
from alertd.settings import Settings
from alertd.store import queries
from alertd.store.db import connect

KINDS = ("police_post", "crisis_centre", "mobile_unit")
P99_TARGET_MS, TARGET_SIZE = 2.0, 100_000
POLICE_SHARE, WITH_JURISDICTION = 0.6, 1 / 3  # of responders; of police posts
COVERAGE = 1.5  # jurisdictions covering an average point: posts tile the region whatever their number

# Responders spread uniformly over the demo region (an oblast-sized area): 60% police posts (a third with a square
# jurisdiction), 15% crisis centres, 25% mobile units, 90% on duty, districts by quadrant as in demo_region.
LOAD_RESPONDERS = f"""
INSERT INTO responders (id, kind, name, region, location, jurisdiction, on_duty, language)
SELECT 'r-' || g, kind, 'Responder ' || g,
       CASE WHEN lat >= {CENTRE_LAT} THEN 'North' ELSE 'South' END
         || CASE WHEN lon >= {CENTRE_LON} THEN '-east' ELSE '-west' END,
       point::geography,
       CASE WHEN kind = 'police_post' AND random() < {WITH_JURISDICTION}
            THEN ST_Multi(ST_Expand(point, $2 / (111.2 * cos(radians(lat))), $2 / 111.2))::geography END,
       random() < 0.9, 'ru'
  FROM (SELECT g, lat, lon, ST_SetSRID(ST_MakePoint(lon, lat), 4326) AS point,
               CASE WHEN k < {POLICE_SHARE} THEN 'police_post' WHEN k < 0.75 THEN 'crisis_centre'
                    ELSE 'mobile_unit' END AS kind
          FROM (SELECT g, {CENTRE_LAT} + (random() * 2 - 1) * {HALF_LAT} AS lat,
                       {CENTRE_LON} + (random() * 2 - 1) * {HALF_LON} AS lon, random() AS k
                  FROM generate_series(1, $1) AS g) AS r) AS s
"""
REGION_KM2 = (2 * HALF_LAT * 111.2) * (2 * HALF_LON * 111.2 * math.cos(math.radians(CENTRE_LAT)))


def jurisdiction_half_side_km(size: int) -> float:
    posts = max(1.0, size * POLICE_SHARE * WITH_JURISDICTION)
    return math.sqrt(COVERAGE * REGION_KM2 / posts) / 2


async def load(conn, size: int) -> float:
    """Replace every responder with `size` generated ones; return the seconds the load, index build and ANALYZE took."""
    started = time.perf_counter()
    indexes = await conn.fetch(
        """SELECT indexname, indexdef FROM pg_indexes
            WHERE tablename = 'responders' AND indexname <> 'responders_pkey'""")
    await conn.execute("TRUNCATE responders CASCADE")
    for index in indexes:
        await conn.execute(f'DROP INDEX "{index["indexname"]}"')
    await conn.execute("SELECT setseed(0.42)")
    await conn.execute("SET maintenance_work_mem = '256MB'")
    await conn.execute(LOAD_RESPONDERS, size, jurisdiction_half_side_km(size))
    for index in indexes:
        await conn.execute(index["indexdef"])
    await conn.execute("ANALYZE responders")
    return time.perf_counter() - started


async def time_queries(conn, n: int, seed: int, budget_s: float) -> dict[str, list[float]]:
    """Milliseconds per round trip for random points of the region (at most budget_s): the query for all three
    kinds at once (an alert's dispatch), then for one kind in turn (an escalation), then a bare `SELECT 1`, the
    baseline, so that it sees the same moments of machine load."""
    rng = random.Random(seed)
    now = datetime.now(UTC)
    ctx = Context(settings=Settings())
    out: dict[str, list[float]] = {name: [] for name in ("all", *KINDS, "select1")}
    stop_at = time.perf_counter() + budget_s
    for i in range(n):
        if time.perf_counter() > stop_at:
            break
        kind = KINDS[i % 3]
        where = Location(CENTRE_LAT + rng.uniform(-HALF_LAT, HALF_LAT), CENTRE_LON + rng.uniform(-HALF_LON, HALF_LON),
                         20.0, "gps", now)
        t0 = time.perf_counter()
        found = await dispatching.nearest_each(conn, ctx, now, KINDS, where)
        t1 = time.perf_counter()
        one = await dispatching.nearest(conn, ctx, now, kind, where, [])
        t2 = time.perf_counter()
        await conn.fetchval("SELECT 1")
        t3 = time.perf_counter()
        if len(found) != 3 or one is None:
            raise RuntimeError(f"a kind has no responder near {where.lat:.3f},{where.lon:.3f}")
        out["all"].append((t1 - t0) * 1000)
        out[kind].append((t2 - t1) * 1000)
        out["select1"].append((t3 - t2) * 1000)
    return out


async def server_ms(conn, n: int, seed: int) -> list[float]:
    """The server's own execution time (EXPLAIN ANALYZE) of the all-kinds query for n random points: the query's
    cost without the client, the socket and the scheduling that a busy machine adds to a round trip."""
    rng = random.Random(seed)
    sql = f"EXPLAIN (ANALYZE, TIMING OFF, COSTS OFF) {queries.find_nearest_responders}"
    extra = len((await conn.prepare(queries.find_nearest_responders)).get_parameters()) - 4
    out = []
    for _ in range(n):
        lines = await conn.fetch(sql, list(KINDS), [CENTRE_LON + rng.uniform(-HALF_LON, HALF_LON)],
                                 [CENTRE_LAT + rng.uniform(-HALF_LAT, HALF_LAT)], [], *[None] * extra)
        out.append(float(next(r[0] for r in lines if r[0].startswith("Execution Time")).split()[2]))
    return out


async def plan(conn, kind: str) -> str:
    """The scans the server ran for one query of this kind, and its server-side execution time."""
    sql = f"EXPLAIN (ANALYZE, COSTS OFF) {queries.find_nearest_responders}"
    extra = len((await conn.prepare(queries.find_nearest_responders)).get_parameters()) - 4  # optional filters: unset
    lines = await conn.fetch(sql, [kind], [CENTRE_LON + 0.1], [CENTRE_LAT - 0.1], [], *[None] * extra)
    text = [r[0] for r in lines]
    scans = [t.strip().removeprefix("->  ").split("  (")[0] for t in text
             if "Scan" in t and "never executed" not in t and "CTE Scan" not in t and "Subquery Scan" not in t
             and "Function Scan" not in t]
    execution = next((t for t in text if t.startswith("Execution Time")), "")
    return f"{'; '.join(scans)}; {execution.lower()}"


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000,100000,1000000", help="responder counts, comma-separated")
    parser.add_argument("--queries", type=int, default=3000, help="timed points per size")
    parser.add_argument("--warmup", type=int, default=300)
    parser.add_argument("--budget", type=float, default=20.0, help="at most this many seconds of queries per size")
    parser.add_argument("--no-durable", action="store_true", help="fsync off (default: durable, fsync on)")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]

    results = []
    with benchlib.Services(durable=not args.no_durable, broker=False) as services:
        dsn = await services.database("alertd")
        conn = await connect(dsn)
        try:
            print(f"nearest responder: {benchlib.machine()}; PostgreSQL "
                  f"{'fsync off' if args.no_durable else 'durable'}; {args.queries} points per size")
            await conn.fetchval(queries.warm_postgis)
            for size in sizes:
                seconds = await load(conn, size)
                await time_queries(conn, args.warmup, seed=size + 1, budget_s=args.budget / 5)
                times = await time_queries(conn, args.queries, seed=size, budget_s=args.budget)
                results.append({"size": size, "times": times, "server": await server_ms(conn, 500, seed=size),
                                "plans": {kind: await plan(conn, kind) for kind in ("police_post", "mobile_unit")}})
                print(f"  loaded {size:>9,} responders in {seconds:5.1f} s "
                      f"(jurisdiction squares {2 * jurisdiction_half_side_km(size):.1f} km)", flush=True)
        finally:
            await conn.close()

    print(f"\n{'':18} {'all three kinds, one query':^27}   {'one kind (p99)':^29}   {'SELECT 1':^15}   "
          f"{'server-side':^15}")
    print(f"{'responders':>10} {'points':>7} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8}   {'police':>9} {'centre':>9} "
          f"{'unit':>9}   {'p50':>7} {'p99':>7}   {'p50':>7} {'p99':>7}")
    for r in results:
        t = r["times"]
        r["all"] = benchlib.summary(t["all"])
        r["one"] = benchlib.summary([x for kind in KINDS for x in t[kind]])
        one = benchlib.summary(t["select1"])
        k = {kind: benchlib.percentile(t[kind], 99) for kind in KINDS}
        print(f"{r['size']:>10,} {r['all']['n']:7d} {r['all']['p50']:8.3f} {r['all']['p99']:8.3f} "
              f"{r['all']['max']:8.2f}   {k['police_post']:9.3f} {k['crisis_centre']:9.3f} {k['mobile_unit']:9.3f}   "
              f"{one['p50']:7.3f} {one['p99']:7.3f}   {benchlib.percentile(r['server'], 50):7.3f} "
              f"{benchlib.percentile(r['server'], 99):7.3f}")
    if len(results) > 1:
        first, last = results[0], results[-1]
        print(f"\ngrowth over x{last['size'] / first['size']:,.0f} the responders: all kinds p50 "
              f"x{last['all']['p50'] / first['all']['p50']:.2f}, p99 x{last['all']['p99'] / first['all']['p99']:.2f}; "
              f"one kind p50 x{last['one']['p50'] / first['one']['p50']:.2f}, "
              f"p99 x{last['one']['p99'] / first['one']['p99']:.2f}")
    print()
    for r in results:
        for kind, text in r["plans"].items():
            print(f"  plan at {r['size']:>9,}, {kind:11}: {text}")

    verdicts = benchlib.Verdicts()
    for r in results:
        if r["size"] == TARGET_SIZE:
            verdicts.check(r["one"]["p99"] < P99_TARGET_MS,
                           f"p99 < {P99_TARGET_MS} ms at {TARGET_SIZE:,} responders, one kind (escalation)",
                           f"{r['one']['p99']:.3f} ms")
            verdicts.check(r["all"]["p99"] < P99_TARGET_MS,
                           f"p99 < {P99_TARGET_MS} ms at {TARGET_SIZE:,} responders, all kinds (alert)",
                           f"{r['all']['p99']:.3f} ms")
    verdicts.print()
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
