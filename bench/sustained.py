"""Benchmark: does an alert's cost climb under sustained load with many responders? (issue 12)

The same load twice, each on a fresh PostgreSQL cluster (default autovacuum settings, pg_stat_statements loaded):
first with --few responders (the baseline), then with --responders. Responders are half police posts, a fifth
crisis centres, the rest mobile units, none with a jurisdiction, each with a phone, spread uniformly over
--spread-lat x --spread-lon degrees around the demo region, and imported with `alertd responders import` (the
real import path, ANALYZE included). Every alert comes from a person of her own (one enrolled phone per
request), so every alert is a new one with its three dispatches, never a repeat of an open one.

Each run drives POST /v1/alerts closed loop (--concurrency connections, each sends the next request when the
last is answered) for --duration s, then at once paced (Poisson, --rate/s) for --paced s on the grown tables.
Figures per --slice s: alerts/s, CPU per committed alert (alertd + every PostgreSQL process), p50/p99 (by the
request's start), the outbox's backlog, and the statements that took PostgreSQL's time. Deadlines are an hour,
so no escalation runs (bench/deadlines.py's subject).

    .venv/bin/python bench/sustained.py [--responders 3000] [--few 60] [--duration 75] [--slice 15]
                                        [--concurrency 32] [--rate 200] [--paced 15]
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import json
import os
import random
import sys
import time
from pathlib import Path

import benchlib

from alertd.local.region import CENTRE_LAT, CENTRE_LON
from alertd.store import queries
from alertd.store.db import connect

LOADGEN = str(benchlib.BENCH_DIR / "loadgen.py")
PG_OPTIONS = ("-c shared_preload_libraries=pg_stat_statements -c pg_stat_statements.track=top "
              "-c pg_stat_statements.max=1000")
RATIO_TARGET = 1.3  # many responders' CPU per alert, at most this times the few's
CLIMB_TARGET = 1.5  # no slice's CPU per alert over this times the first's
TABLES = ("alerts", "dispatches", "alert_events", "outbox_pending", "outbox_done", "location_fixes", "responders")


def responders_csv(path: Path, n: int, spread_lat: float, spread_lon: float, seed: int) -> None:
    """n responders as a CSV for `alertd responders import`: half police posts, none with a jurisdiction."""
    rng = random.Random(seed)
    police, centres = n // 2, n // 5
    with path.open("w", newline="") as f:
        out = csv.writer(f)
        out.writerow(["id", "kind", "name", "lat", "lon", "phone", "region"])
        for i in range(n):
            kind = "police_post" if i < police else "crisis_centre" if i < police + centres else "mobile_unit"
            lat = CENTRE_LAT + rng.uniform(-spread_lat / 2, spread_lat / 2)
            lon = CENTRE_LON + rng.uniform(-spread_lon / 2, spread_lon / 2)
            out.writerow([f"r-{i:05d}", kind, f"Responder {i}", f"{lat:.6f}", f"{lon:.6f}", f"+7701{i:07d}",
                          f"district-{int(lat)}-{int(lon)}"])


async def import_responders(services: benchlib.Services, settings, path: Path) -> dict:
    proc = await asyncio.create_subprocess_exec(
        benchlib.PYTHON, "-m", "alertd", "--json", "responders", "import", str(path),
        env={**os.environ, **settings.as_env()},
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, cwd=benchlib.BENCH_DIR.parent)
    out, err = await proc.communicate()
    if proc.returncode != 0:
        raise RuntimeError(f"alertd responders import failed: {err.decode()[-2000:]}")
    return json.loads(out)


async def nearest_plan(conn) -> str:
    """The scans the nearest query's plan makes for one point right after the import."""
    plan = await conn.fetch("EXPLAIN " + queries.find_nearest_responders.replace("$1::text[]", "ARRAY['police_post']")
                            .replace("$2::float8[]", f"ARRAY[{CENTRE_LON}]::float8[]")
                            .replace("$3::float8[]", f"ARRAY[{CENTRE_LAT}]::float8[]")
                            .replace("$4::text[]", "ARRAY[]::text[]").replace("$5::timestamptz", "now()")
                            .replace("$5", "now()")
                            .replace("$6::boolean", "false"))
    lines = [r[0].strip().lstrip("-> ").strip() for r in plan]
    scans = [line.split("  (")[0] for line in lines if "Scan" in line and "responders" in line]
    return "; ".join(dict.fromkeys(scans))


def statement_names() -> dict[str, str]:
    """The first line of every named query (its comment) -> its name, to label pg_stat_statements' rows."""
    return {queries._sql[name].splitlines()[0]: name for name in queries.names()}


NAMES = statement_names()


def label(query: str) -> str:
    first = query.splitlines()[0] if query else ""
    return NAMES.get(first) or " ".join(query.split())[:60]


async def snapshot(conn, server_pid: int, services: benchlib.Services) -> dict:
    stmts = await conn.fetch(
        """SELECT queryid, query, calls, total_exec_time, shared_blks_hit + shared_blks_read AS blks
             FROM pg_stat_statements
            WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())
              AND query NOT LIKE '%pg_stat%'""")
    return {
        "t": time.time(), "server_cpu": benchlib.cpu_seconds(server_pid),
        "pg_cpu": benchlib.postgres_cpu_seconds(services.pg),
        "alerts": await conn.fetchval("SELECT count(*) FROM alerts"),
        "pending": await conn.fetchval("SELECT count(*) FROM outbox_pending"),
        "stmts": _by_label(stmts),
    }


def _by_label(rows) -> dict[str, tuple[str, int, float, int]]:
    """pg_stat_statements' rows summed by statement name (one statement can have several rows)."""
    out: dict[str, tuple[str, int, float, int]] = {}
    for r in rows:
        name = label(r["query"])
        _, calls, total, blks = out.get(name, (name, 0, 0.0, 0))
        out[name] = (name, calls + r["calls"], total + r["total_exec_time"], blks + r["blks"])
    return out


def statement_delta(a: dict, b: dict) -> list[tuple[str, int, float, float]]:
    """(name, calls, total ms, buffers per call) of each statement between two snapshots, most time first."""
    out = []
    for qid, (name, calls, total, blks) in b["stmts"].items():
        _, calls0, total0, blks0 = a["stmts"].get(qid, (name, 0, 0.0, 0))
        if calls > calls0:
            out.append((name, calls - calls0, total - total0, (blks - blks0) / (calls - calls0)))
    return sorted(out, key=lambda s: -s[2])


async def sample_while(proc_task: asyncio.Task, conn, server_pid: int, services, slice_s: float) -> list[dict]:
    """Snapshots every slice_s seconds until the load generator ends (and one at its end)."""
    snaps = [await snapshot(conn, server_pid, services)]
    next_at = snaps[0]["t"] + slice_s
    while not proc_task.done():
        await asyncio.wait({proc_task}, timeout=max(0.0, next_at - time.time()))
        if not proc_task.done():
            snaps.append(await snapshot(conn, server_pid, services))
            next_at += slice_s
    snaps.append(await snapshot(conn, server_pid, services))
    return snaps


def slices(snaps: list[dict], trace: list) -> list[dict]:
    out = []
    for a, b in zip(snaps, snaps[1:], strict=False):
        alerts = b["alerts"] - a["alerts"]
        cpu = b["server_cpu"] - a["server_cpu"] + b["pg_cpu"] - a["pg_cpu"]
        lat = [ms for start, ms, status in trace if a["t"] <= start < b["t"] and status == "201"]
        wall = b["t"] - a["t"]
        if wall < 1.0:
            continue
        out.append({"from": a["t"], "wall": wall, "alerts": alerts, "rps": alerts / wall,
                    "cpu_ms": 1000 * cpu / max(1, alerts), "alertd_ms": 1000 * (b["server_cpu"] - a["server_cpu"]) /
                    max(1, alerts), "p50": benchlib.percentile(lat, 50), "p99": benchlib.percentile(lat, 99),
                    "pending": b["pending"], "top": statement_delta(a, b)})
    return out


async def one_run(name: str, n_responders: int, args) -> dict:
    """A fresh cluster: enrol, import, serve, closed loop (sampled per slice), paced; the figures."""
    with benchlib.Services(durable=not args.no_durable, pg_options=PG_OPTIONS) as services:
        dsn = await services.database("alertd")
        settings = services.settings(dsn, ack_deadline_police_post=3600, ack_deadline_crisis_centre=3600,
                                     ack_deadline_mobile_unit=3600)
        conn = await connect(dsn)
        await conn.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
        t0 = time.monotonic()
        tokens = await benchlib.enrol_people(dsn, settings, args.people, seed=5, phone_prefix="+7706")
        paced_n = max(100, args.people // 6)  # the paced phase's own people (its rate may be set by the closed loop)
        closed_file, paced_file = services.workdir / "closed.json", services.workdir / "paced.json"
        closed_file.write_text(json.dumps(tokens[:-paced_n]))
        paced_file.write_text(json.dumps(tokens[-paced_n:]))
        path = services.workdir / "responders.csv"
        responders_csv(path, n_responders, args.spread_lat, args.spread_lon, seed=9)
        imported = await import_responders(services, settings, path)
        if args.analyze_all:
            await conn.execute("ANALYZE")
        plan = await nearest_plan(conn)
        print(f"[{name}] {args.people} people enrolled, {n_responders} responders imported in "
              f"{time.monotonic() - t0:.0f} s ({imported['created']} created); nearest police post's plan right after the "
              f"import: {plan}", flush=True)

        server = services.serve(settings)
        url = f"http://127.0.0.1:{settings.http_port}/v1/alerts"
        await conn.fetchval("SELECT pg_stat_statements_reset()")
        load_start = os.getloadavg()[0]
        loadgen = asyncio.create_task(benchlib.run_json(
            [benchlib.PYTHON, LOADGEN, url, str(closed_file), "closed", "--concurrency", str(args.concurrency),
             "--duration", str(args.duration), "--warmup", "0", "--trace"]))
        snaps = await sample_while(loadgen, conn, server.pid, services, args.slice)
        closed = loadgen.result()
        if len(closed["trace"]) > len(tokens) - paced_n:
            print(f"[{name}] warning: {len(closed['trace'])} requests for {len(tokens) - paced_n} people: "
                  f"some alerts were repeats (raise --people)")
        load_mid = os.getloadavg()[0]
        if not args.rate:  # half what the baseline run's closed loop reached; the many-responders run keeps it
            args.rate = max(10, round(slices([snaps[0], snaps[-1]], closed["trace"])[0]["rps"] / 2))
        paced = await benchlib.run_json(
            [benchlib.PYTHON, LOADGEN, url, str(paced_file), "open", "--rate", str(args.rate), "--duration",
             str(args.paced), "--warmup", "0"])
        end = await snapshot(conn, server.pid, services)
        ids = closed["alert_ids"] + paced["alert_ids"]
        complete = await conn.fetchval(
            """SELECT count(*) FROM unnest($1::uuid[]) AS a(id)
                WHERE (SELECT count(DISTINCT kind) FROM dispatches d WHERE d.alert_id = a.id) = 3""", ids)
        repeats = await conn.fetchval("SELECT count(*) FROM alert_repeats")
        tables = await conn.fetch(
            """SELECT relname, n_live_tup, n_dead_tup, autovacuum_count, autoanalyze_count,
                      pg_total_relation_size(relid) AS bytes
                 FROM pg_stat_user_tables WHERE relname = ANY($1::text[]) ORDER BY relname""", list(TABLES))
        benchlib.stop_child(server)
        await conn.close()
    per_slice = slices(snaps, closed["trace"])
    whole = slices([snaps[0], snaps[-1]], closed["trace"])[0]
    return {"name": name, "responders": n_responders, "slices": per_slice, "whole": whole, "closed": closed,
            "paced": paced, "complete": complete, "answered": len(ids), "repeats": repeats,
            "rate": args.rate, "tables": [dict(r) for r in tables], "load": (load_start, load_mid, os.getloadavg()[0]),
            "statements": statement_delta(snaps[0], end)}


def report(run: dict, top: int) -> None:
    w = run["whole"]
    print(f"\n== {run['name']}: {run['responders']} responders (load average {run['load'][0]:.2f} at the start, "
          f"{run['load'][1]:.2f} after the closed loop, {run['load'][2]:.2f} at the end)")
    print(f"{'slice':>9} {'alerts/s':>8} {'CPU ms/alert':>12} {'of it alertd':>12} {'p50 ms':>7} {'p99 ms':>7} "
          f"{'outbox pending':>14}   top statement (calls, mean ms)")
    t0 = run["slices"][0]["from"] if run["slices"] else 0
    for s in [*run["slices"], {**w, "from": None}]:
        span = "whole" if s["from"] is None else f"{s['from'] - t0:3.0f}-{s['from'] - t0 + s['wall']:3.0f}s"
        first = s["top"][0] if s["top"] else ("-", 1, 0.0, 0.0)
        print(f"{span:>9} {s['rps']:8.0f} {s['cpu_ms']:12.2f} {s['alertd_ms']:12.2f} {s['p50']:7.1f} {s['p99']:7.1f} "
              f"{s['pending']:14d}   {first[0]} ({first[1]}, {first[2] / first[1]:.2f})")
    p = run["paced"]
    print(f"  then paced at {run['rate']:.0f}/s ({p['rps']:.0f}/s answered) on the grown tables: p50 {p['p50_ms']:.1f} ms, p99 {p['p99_ms']:.1f} ms, "
          f"max {p['max_ms']:.1f} ms; statuses {p['statuses']}")
    print(f"  {run['complete']} of {run['answered']} alerts answered 201 have 3 dispatches; {run['repeats']} repeats")
    for at, s in (("first slice", run["slices"][0]), ("last slice", run["slices"][-1])):
        print(f"  pg_stat_statements, {at}: " + "; ".join(
            f"{n} {c} calls {t / c:.2f} ms {b:.0f} buf" for n, c, t, b in s["top"][:top]))
    print(f"  pg_stat_statements, whole run (closed + paced), top {top} by total time:")
    for n, c, t, b in run["statements"][:top]:
        print(f"    {n:34} {c:8d} calls {t / 1000:8.2f} s {t / c:8.3f} ms/call {b:8.1f} buffers/call")
    print("  tables at the end: " + "; ".join(
        f"{t['relname']} {t['n_live_tup']} live {t['n_dead_tup']} dead {t['autovacuum_count']} autovacuums "
        f"{t['autoanalyze_count']} autoanalyzes "
        f"{t['bytes'] / 1e6:.1f} MB" for t in run["tables"]))


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--responders", type=int, default=3000, help="responders in the many-responders run")
    parser.add_argument("--few", type=int, default=60, help="responders in the baseline run")
    parser.add_argument("--spread-lat", type=float, default=10.0, help="degrees of latitude the responders span")
    parser.add_argument("--spread-lon", type=float, default=35.0, help="degrees of longitude the responders span")
    parser.add_argument("--people", type=int, default=130000, help="enrolled people: one per request")
    parser.add_argument("--concurrency", type=int, default=32, help="closed-loop connections")
    parser.add_argument("--duration", type=float, default=75.0, help="seconds of closed loop")
    parser.add_argument("--slice", type=float, default=15.0, help="seconds per reported slice")
    parser.add_argument("--rate", type=float, default=0.0,
                        help="paced alerts/s after the closed loop (default: half the baseline run's closed-loop "
                             "alerts/s, so a busy machine is not paced past what it can take)")
    parser.add_argument("--paced", type=float, default=15.0, help="seconds of paced load after the closed loop")
    parser.add_argument("--top", type=int, default=6, help="statements shown")
    parser.add_argument("--only", choices=["few", "many"], help="one run only (no ratio)")
    parser.add_argument("--analyze-all", action="store_true",
                        help="a database-wide ANALYZE after the import, with alerts, dispatches and the outbox still "
                             "empty (what an operator may run after an import)")
    parser.add_argument("--no-durable", action="store_true", help="fsync off (default: durable, fsync on)")
    args = parser.parse_args()

    print(f"sustained intake: {benchlib.machine()}; PostgreSQL {'fsync off' if args.no_durable else 'durable'}, "
          f"default autovacuum; closed loop {args.concurrency} connections {args.duration:.0f} s, then paced "
          f"{f'{args.rate:.0f}/s' if args.rate else 'at half the first closed loop'} {args.paced:.0f} s; "
          f"responders over {args.spread_lat:g}° x {args.spread_lon:g}°")
    runs = {}
    for name, n in (("few", args.few), ("many", args.responders)):
        if args.only in (None, name):
            runs[name] = await one_run(name, n, args)
            report(runs[name], args.top)

    verdicts = benchlib.Verdicts()
    for run in runs.values():
        verdicts.check(run["complete"] == run["answered"], f"{run['name']}: every 201 has its 3 dispatches",
                       f"{run['complete']} of {run['answered']}")
        full = [s for s in run["slices"] if s["wall"] >= args.slice / 2]  # not the closed loop's last second
        first, worst = full[0]["cpu_ms"], max(s["cpu_ms"] for s in full)
        verdicts.check(worst <= CLIMB_TARGET * first, f"{run['name']}: no slice's CPU per alert over "
                       f"{CLIMB_TARGET}x the first's", f"worst {worst:.2f} vs {first:.2f} ms ({worst / first:.2f}x)")
    if len(runs) == 2:
        few, many = runs["few"], runs["many"]
        ratio = many["whole"]["cpu_ms"] / few["whole"]["cpu_ms"]
        print(f"\nmany/few ({args.responders}/{args.few} responders): CPU per alert {ratio:.2f}x "
              f"({many['whole']['cpu_ms']:.2f} vs {few['whole']['cpu_ms']:.2f} ms), alerts/s "
              f"{many['whole']['rps'] / few['whole']['rps']:.2f}x, closed-loop p99 "
              f"{many['whole']['p99'] / few['whole']['p99']:.2f}x, paced p99 "
              f"{many['paced']['p99_ms'] / few['paced']['p99_ms']:.2f}x "
              f"({many['paced']['p99_ms']:.0f} vs {few['paced']['p99_ms']:.0f} ms)")
        print("  per slice, CPU per alert many/few: " + ", ".join(
            f"{m['cpu_ms'] / f['cpu_ms']:.2f}x" for m, f in zip(many["slices"], few["slices"], strict=False)))
        verdicts.check(ratio <= RATIO_TARGET, f"CPU per alert with {args.responders} responders <= {RATIO_TARGET}x "
                       f"with {args.few}", f"{ratio:.2f}x")
    verdicts.print()
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
