"""Where an alert's CPU goes: one load against `alertd serve`, with PostgreSQL's view of every statement.

Starts a throwaway PostgreSQL (pg_stat_statements loaded, planning tracked) and Mosquitto, seeds the demo region and
--people enrolled phones (one per alert, so every alert is new, with its three dispatches), warms alertd up with
people of their own, then drives POST /v1/alerts once: open loop at --rate (Poisson) or closed loop with
--concurrency connections, for --duration s. Prints the CPU per committed alert (alertd and PostgreSQL's backends,
counted until the outbox has sent what the load queued), then per statement: calls, execution and planning time per
alert. With --py-spy FILE, also records alertd's stacks (py-spy must be installed in the venv: `pip install py-spy`).

    .venv/bin/python bench/statements.py open [--rate 200] [--duration 20] [--people 12000]
    .venv/bin/python bench/statements.py closed [--concurrency 32] [--duration 20] [--people 30000]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import benchlib
import intake
import sustained

from alertd.store.db import connect

PG_OPTIONS = sustained.PG_OPTIONS + " -c pg_stat_statements.track_planning=on"
WARM = 400  # people used by the warm-up only


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("mode", choices=["open", "closed"])
    parser.add_argument("--rate", type=float, default=200.0, help="open loop: alerts/s")
    parser.add_argument("--concurrency", type=int, default=32, help="closed loop: connections")
    parser.add_argument("--duration", type=float, default=20.0)
    parser.add_argument("--people", type=int, default=12000, help="enrolled phones; too few, and alerts repeat")
    parser.add_argument("--top", type=int, default=15, help="statements listed")
    parser.add_argument("--py-spy", dest="py_spy", help="record alertd's stacks into this file (raw format)")
    args = parser.parse_args()

    with benchlib.Services(pg_options=PG_OPTIONS) as services:
        dsn = await services.database("alertd")
        settings = services.settings(dsn, ack_deadline_police_post=3600, ack_deadline_crisis_centre=3600,
                                     ack_deadline_mobile_unit=3600)
        tokens = await intake.seed(dsn, settings, args.people)
        warm_file, load_file = services.workdir / "warm.json", services.workdir / "load.json"
        warm_file.write_text(json.dumps(tokens[:WARM]))
        load_file.write_text(json.dumps(tokens[WARM:]))
        server = services.serve(settings)
        url = f"http://127.0.0.1:{settings.http_port}/v1/alerts"
        conn = await connect(dsn)
        try:
            await conn.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
            await benchlib.run_json([benchlib.PYTHON, intake.LOADGEN, url, str(warm_file), "open", "--rate", "100",
                                     "--duration", "2", "--warmup", "0"])
            await intake.outbox_drained(dsn, 30)
            await conn.execute("SELECT pg_stat_statements_reset()")
            alerts_before = await conn.fetchval("SELECT count(*) FROM alerts")
            cpu_before = benchlib.cpu_seconds(server.pid), benchlib.postgres_cpu_seconds(services.pg)
            spy = None
            if args.py_spy:
                spy = subprocess.Popen([shutil.which("py-spy", path=str(Path(sys.executable).parent)) or "py-spy",
                                        "record", "-r", "200", "-f", "raw", "-o", args.py_spy,
                                        "-d", str(int(args.duration)), "-p", str(server.pid)],
                                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            mode = ["--rate", str(args.rate)] if args.mode == "open" else ["--concurrency", str(args.concurrency)]
            started = time.time()
            result = await benchlib.run_json([benchlib.PYTHON, intake.LOADGEN, url, str(load_file), args.mode, *mode,
                                              "--duration", str(args.duration), "--warmup", "0"])
            await intake.outbox_drained(dsn, 30)
            cpu_after = benchlib.cpu_seconds(server.pid), benchlib.postgres_cpu_seconds(services.pg)
            n = max(1, await conn.fetchval("SELECT count(*) FROM alerts") - alerts_before)
            rows = await conn.fetch("SELECT query, calls, total_exec_time, total_plan_time, plans "
                                    "FROM pg_stat_statements WHERE query NOT LIKE '%pg_stat_statements%'")
            if spy is not None:
                spy.wait()
        finally:
            await conn.close()
            benchlib.stop_child(server)

    alertd_ms, pg_ms = (1000 * (after - before) / n for before, after in zip(cpu_before, cpu_after, strict=True))
    print(f"{args.mode} loop, {benchlib.machine()}: {n} alerts in {time.time() - started:.0f} s, "
          f"{result['rps']:.0f}/s, p50 {result['p50_ms']:.1f} ms, p99 {result['p99_ms']:.1f} ms")
    print(f"CPU per alert: alertd {alertd_ms:.2f} ms + PostgreSQL {pg_ms:.2f} ms = {alertd_ms + pg_ms:.2f} ms")
    by_name: dict[str, list[float]] = {}
    for row in rows:
        totals = by_name.setdefault(sustained.label(row["query"]), [0, 0.0, 0.0, 0])
        totals[0] += row["calls"]
        totals[1] += row["total_exec_time"]
        totals[2] += row["total_plan_time"]
        totals[3] += row["plans"]
    print(f"statements: {sum(t[0] for t in by_name.values()) / n:.1f} an alert, executing "
          f"{sum(t[1] for t in by_name.values()) / n:.3f} ms and planning {sum(t[2] for t in by_name.values()) / n:.3f}"
          f" ms of PostgreSQL's time an alert")
    print(f"{'statement':42} {'calls/alert':>11} {'ms/call':>8} {'exec ms/alert':>13} {'plans/call':>10} "
          f"{'plan ms/alert':>13}")
    ranked = sorted(by_name.items(), key=lambda item: -(item[1][1] + item[1][2]))
    for name, (calls, exec_ms, plan_ms, plans) in ranked[:args.top]:
        print(f"{name[:42]:42} {calls / n:11.2f} {exec_ms / max(1, calls):8.3f} {exec_ms / n:13.3f} "
              f"{plans / max(1, calls):10.2f} {plan_ms / n:13.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
