"""Benchmark 1: alert intake throughput and latency of `alertd serve` against a minimal single-INSERT server.

Starts a throwaway PostgreSQL+PostGIS and Mosquitto, seeds the demo region and many enrolled phones (one person per
request, so every alert is a new one with its three dispatches, never a repeat of her open alert), then drives
POST /v1/alerts from a separate load-generator process: open loop first (a fixed rate, Poisson arrivals, from a
quiet start), then, once alertd's outbox has worked off that load's messages (at most --drain s), closed loop
(max requests/s). A 201 from alertd means the alert, its three dispatches with their deadlines, its outbox
rows and its timeline are committed, so request latency is "request to committed dispatches".

    .venv/bin/python bench/intake.py [--people 45000] [--runs 5] [--concurrency 32] [--duration 15] [--rate 200]
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import sys
import time
from pathlib import Path

import aiohttp
import benchlib

from alertd.local.region import responders
from alertd.local.services import free_port
from alertd.service.responders import upsert_responders
from alertd.store.db import connect

LOADGEN = str(benchlib.BENCH_DIR / "loadgen.py")
BASELINE = str(benchlib.BENCH_DIR / "baseline_server.py")
CPU_TARGET_MS = 2.2  # per committed alert, alertd + PostgreSQL, the outbox's sending included (issue 12)
CPU_RATIO_TARGET = 2.7  # of the baseline's CPU per request (issue 12)
P99_TARGET_MS = 50.0  # open loop, in every run


async def seed(dsn: str, settings, people: int) -> list[str]:
    """The demo region's responders and `people` enrolled phones (home in the region); their device tokens."""
    conn = await connect(dsn)
    try:
        await upsert_responders(conn, responders())
    finally:
        await conn.close()
    return await benchlib.enrol_people(dsn, settings, people, seed=3, phone_prefix="+7705")


async def drive(url: str, tokens_files: tuple[list[str], str], args, settle, run_done=None) -> dict:
    """Open loop first (from a quiet start; one run per file of tokens, back to back, each with its own people,
    `run_done()` after each), then `settle()`, then closed loop (max throughput), with its own people."""
    common = ["--duration", str(args.duration), "--warmup", str(args.warmup)]
    runs = []
    for i, tokens in enumerate(tokens_files[0]):
        runs.append(await benchlib.run_json([benchlib.PYTHON, LOADGEN, url, tokens, "open", "--rate", str(args.rate),
                                             "--seed", str(i + 1), *common]))
        if run_done is not None:
            await run_done()
    opened = {"runs": runs, "requests": sum(r["requests"] for r in runs), "sent": sum(r["sent"] for r in runs),
              "ok": sum(r["ok"] for r in runs), "rps": min(r["rps"] for r in runs),
              "p50_ms": max(r["p50_ms"] for r in runs), "p99_ms": max(r["p99_ms"] for r in runs),
              "max_ms": max(r["max_ms"] for r in runs), "alert_ids": [a for r in runs for a in r["alert_ids"]],
              "statuses": {s: sum(r["statuses"].get(s, 0) for r in runs) for r in runs for s in r["statuses"]}}
    await settle()
    closed = await benchlib.run_json([benchlib.PYTHON, LOADGEN, url, tokens_files[1], "closed",
                                      "--concurrency", str(args.concurrency), *common])
    return {"closed": closed, "open": opened}


async def outbox_drained(dsn: str, within_s: float) -> tuple[int, float]:
    """Wait until no outbox message is pending, at most within_s; the messages left and the seconds waited."""
    conn = await connect(dsn)
    try:
        t0 = time.monotonic()
        while (waiting := await conn.fetchval("SELECT count(*) FROM outbox WHERE status = 'pending'")) and \
                time.monotonic() - t0 < within_s:
            await asyncio.sleep(0.5)
        return waiting, time.monotonic() - t0
    finally:
        await conn.close()


async def committed(dsn: str, alert_ids: list[str], drain_s: float) -> dict:
    """Of the alerts answered 201: how many have their three dispatches committed. Then, load stopped, how long
    the engine takes to hand every queued message to its notifier (at most drain_s), and the lag of the
    responders' dispatch messages (outbox created_at -> sent_at)."""
    conn = await connect(dsn)
    try:
        complete = await conn.fetchval(
            """SELECT count(*) FROM unnest($1::uuid[]) AS a(id)
                WHERE (SELECT count(DISTINCT kind) FROM dispatches d WHERE d.alert_id = a.id) = 3""",
            alert_ids)
        at_stop = await conn.fetchval("SELECT count(*) FROM outbox WHERE status = 'pending'")
        waiting, drained = await outbox_drained(dsn, drain_s)
        lag = await conn.fetch(
            """SELECT extract(epoch FROM sent_at - created_at) AS lag FROM outbox
                WHERE template = 'dispatch' AND status = 'sent'""")
        total = await conn.fetchval("SELECT count(*) FROM outbox WHERE template = 'dispatch'")
    finally:
        await conn.close()
    return {"answered_201": len(alert_ids), "with_3_dispatches": complete, "outbox_at_stop": at_stop,
            "outbox_left": waiting, "drain_s": drained, "dispatch_messages": total,
            "dispatch_lag": benchlib.summary([float(r["lag"]) for r in lag])}


async def drive_measured(services: benchlib.Services, server, dsn: str, table: str, url: str,
                         tokens_file: tuple[list[str], str],
                         args, settle, drained=None) -> tuple[dict, dict]:
    """drive(), plus the CPU the server process and PostgreSQL spent per row committed (the load generator's
    own CPU excluded): a cost that other work on the machine does not hide the way it hides requests/s. With
    `drained`, the CPU is counted until it returns (alertd: until its outbox has sent what the load queued)."""

    async def rows() -> int:
        conn = await connect(dsn)
        try:
            return await conn.fetchval(f"SELECT count(*) FROM {table}")
        finally:
            await conn.close()

    servers = server if isinstance(server, list) else [server]

    def server_cpu() -> float:
        return sum(benchlib.cpu_seconds(s.pid) for s in servers)

    async def snapshot() -> tuple[float, float, int, float]:
        return server_cpu(), benchlib.postgres_cpu_seconds(services.pg), await rows(), time.time()

    def cost(a, b) -> dict:
        committed_rows = max(1, b[2] - a[2])
        return {"server_s": b[0] - a[0], "postgres_s": b[1] - a[1], "rows": committed_rows, "wall_s": b[3] - a[3],
                "ms_per_row": 1000 * (b[0] - a[0] + b[1] - a[1]) / committed_rows}

    marks = [await snapshot()]

    async def settle_marked() -> None:
        await settle()  # (alertd: its outbox has sent what the open loop queued)
        marks.append(await snapshot())

    runs = [marks[0]]

    async def run_marked() -> None:
        runs.append(await snapshot())

    result = await drive(url, tokens_file, args, settle_marked, run_marked)
    if drained is not None:
        await drained()
    marks.append(await snapshot())
    return result, {**cost(marks[0], marks[-1]), "open": cost(marks[0], marks[1]), "closed": cost(marks[1], marks[2]),
                    "open_runs": [cost(a, b) for a, b in itertools.pairwise(runs)]}


async def group_commits(base_url: str, source: str = "app") -> dict[str, float]:
    """alertd's group-commit histograms (/metrics) for one source ("app" or "buttons"): groups, items, and the
    sums of sizes, waits and commit times."""
    async with aiohttp.ClientSession() as session, session.get(f"{base_url}/metrics") as resp:
        text = await resp.text()
    out = dict.fromkeys((f"{metric}_{part}" for metric in ("intake_group_size", "intake_wait_seconds",
                                                           "intake_commit_seconds") for part in ("sum", "count")), 0.0)
    for line in text.splitlines():
        name, _, value = line.partition(" ")
        for key in out:
            if name == f'alertd_{key}{{source="{source}"}}':
                out[key] = float(value)
    return out


def group_line(name: str, before: dict[str, float], after: dict[str, float], items: str = "alerts") -> str:
    d = {k: after[k] - before.get(k, 0.0) for k in after}
    groups, alerts = max(1.0, d["intake_group_size_count"]), max(1.0, d["intake_wait_seconds_count"])
    return (f"  {name}: {d['intake_group_size_count']:.0f} group commits, "
            f"mean {d['intake_group_size_sum'] / groups:.1f} {items} each; "
            f"mean wait for a committer {1000 * d['intake_wait_seconds_sum'] / alerts:.1f} ms, "
            f"mean commit {1000 * d['intake_commit_seconds_sum'] / groups:.1f} ms")


def row(name: str, result: dict) -> str:
    c, o = result["closed"], result["open"]
    errors = sum(n for s, n in {**c["statuses"], **o["statuses"]}.items() if s != "201")
    return (f"{name:22} {c['rps']:8.0f} {c['p50_ms']:7.1f} {c['p99_ms']:7.1f}   "
            f"{o['rps']:7.0f} {o['p50_ms']:7.1f} {o['p99_ms']:7.1f} {o['max_ms']:7.1f}   {errors:6d}")


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--processes", type=int, default=1,
                        help="`alertd serve` processes sharing the port (ALERTD_HTTP_REUSE_PORT)")
    parser.add_argument("--runs", type=int, default=5, help="open-loop runs of alertd, back to back (p99 spread)")
    parser.add_argument("--people", type=int, default=45000,
                        help="enrolled phones, one per request (the open loop takes what its rate needs, the closed "
                             "loop the rest); too few, and some alerts are repeats (a warning says so)")
    parser.add_argument("--concurrency", type=int, default=32, help="closed-loop connections")
    parser.add_argument("--duration", type=float, default=15.0, help="seconds measured per run")
    parser.add_argument("--warmup", type=float, default=3.0, help="seconds before measuring")
    parser.add_argument("--rate", type=float, default=200.0, help="open-loop alerts/s")
    parser.add_argument("--drain", type=float, default=30.0, help="seconds to let the outbox drain after the load")
    parser.add_argument("--committers", type=int, help="ALERTD_INTAKE_COMMITTERS (default: the service's default)")
    parser.add_argument("--max-group", type=int, help="ALERTD_INTAKE_MAX_GROUP (default: the service's default)")
    parser.add_argument("--no-durable", action="store_true", help="fsync off (default: durable, fsync on)")
    args = parser.parse_args()

    with benchlib.Services(durable=not args.no_durable) as services:
        dsn = await services.database("alertd")
        baseline_dsn = await services.database("baseline", migrated=False)
        # Deadlines long enough that none fires during the run: deadline firing is benchmark 3's subject.
        settings = services.settings(dsn, ack_deadline_police_post=3600, ack_deadline_crisis_centre=3600,
                                     ack_deadline_mobile_unit=3600)
        if args.committers is not None:
            settings = settings.replace(intake_committers=args.committers)
        if args.max_group is not None:
            settings = settings.replace(intake_max_group=args.max_group)
        tokens = await seed(dsn, settings, args.people)
        per_run = int(1.2 * args.rate * (args.duration + args.warmup)) + 1
        opening = min(len(tokens) // 2, per_run * args.runs)
        per_run = opening // args.runs
        open_files = [str(services.workdir / f"open-{i}.json") for i in range(args.runs)]
        for i, path in enumerate(open_files):
            Path(path).write_text(json.dumps(tokens[i * per_run:(i + 1) * per_run]))
        tokens_file = (open_files, str(services.workdir / "closed.json"))
        Path(tokens_file[1]).write_text(json.dumps(tokens[opening:]))
        print(f"alert intake: {benchlib.machine()}; PostgreSQL {'fsync off' if args.no_durable else 'durable'}; "
              f"{args.people} enrolled phones, {len(responders())} responders (demo region); "
              f"{args.processes} alertd serve process(es)")

        port = free_port()
        server = services.spawn([benchlib.PYTHON, BASELINE, "--dsn", baseline_dsn, "--port", str(port)],
                                log_name="baseline.log")
        benchlib.wait_ready(f"http://127.0.0.1:{port}/readyz", server)
        async def nothing_to_settle() -> None:
            return None

        base, base_cpu = await drive_measured(services, server, baseline_dsn, "baseline_alerts",
                                              f"http://127.0.0.1:{port}/v1/alerts", (open_files[:1], tokens_file[1]),
                                              args,
                                              nothing_to_settle)
        benchlib.stop_child(server)

        if args.processes > 1:
            settings = settings.replace(http_reuse_port=True)
        service = [services.serve(settings, log_name=f"alertd-{i}.log") for i in range(args.processes)]
        settled = {}
        base_url = f"http://127.0.0.1:{settings.http_port}"
        groups = [await group_commits(base_url)]

        async def outbox_settles() -> None:
            """The open loop leaves a queue of messages: let the engine work it off before the closed loop."""
            groups.append(await group_commits(base_url))
            settled["left"], settled["waited_s"] = await outbox_drained(dsn, args.drain)
            groups.append(await group_commits(base_url))

        alertd, cpu = await drive_measured(services, service, dsn, "alerts",
                                           f"http://127.0.0.1:{settings.http_port}/v1/alerts", tokens_file,
                                           args, outbox_settles, drained=lambda: outbox_drained(dsn, args.drain))
        groups.append(await group_commits(base_url))
        check = await committed(dsn, alertd["closed"]["alert_ids"] + alertd["open"]["alert_ids"], args.drain)
        for child in service:
            benchlib.stop_child(child)

    print(f"\n{'':22} {'closed loop, ' + str(args.concurrency) + ' connections':^24}   "
          f"{'open loop, ' + str(int(args.rate)) + '/s Poisson':^31}")
    print(f"{'server':22} {'req/s':>8} {'p50 ms':>7} {'p99 ms':>7}   {'req/s':>7} {'p50 ms':>7} {'p99 ms':>7} "
          f"{'max ms':>7}   {'errors':>6}")
    print(row("baseline (1 INSERT)", base))
    print(row("alertd serve", alertd))
    ratio = alertd["closed"]["rps"] / base["closed"]["rps"]
    print(f"\nthroughput ratio alertd/baseline: {ratio:.2f}x;  open-loop p99 ratio alertd/baseline: "
          f"{alertd['open']['p99_ms'] / base['open']['p99_ms']:.1f}x")
    print(f"alertd: between the open and the closed loop the outbox had {settled['left']} messages left after "
          f"{settled['waited_s']:.0f} s")
    print(group_line("open loop", groups[0], groups[1]))
    print(group_line("closed loop", groups[2], groups[3]))
    lag = check["dispatch_lag"]
    print(f"  {check['with_3_dispatches']} of {check['answered_201']} alerts answered 201 have 3 committed "
          f"dispatches.\n  outbox: {check['outbox_at_stop']} messages waiting when the load stopped, "
          f"{check['outbox_left']} after {check['drain_s']:.0f} s more; responders' dispatch messages handed to "
          f"their notifier: {lag['n']} of {check['dispatch_messages']}, lag p50 {lag['p50']:.2f} s, "
          f"p99 {lag['p99']:.2f} s, max {lag['max']:.2f} s")
    for name, c in (("baseline", base_cpu), ("alertd", cpu)):
        print(f"  CPU under load, {name}: server {c['server_s']:.1f} s + PostgreSQL {c['postgres_s']:.1f} s in "
              f"{c['wall_s']:.0f} s for {c['rows']} rows = {c['ms_per_row']:.2f} ms per committed request")
        for phase in ("open", "closed"):
            p = c[phase]
            print(f"    {phase} loop: {p['server_s']:.1f} s + {p['postgres_s']:.1f} s for {p['rows']} rows = "
                  f"{p['ms_per_row']:.2f} ms per committed request")
    each = ", ".join(f"{r['ms_per_row']:.2f}" for r in cpu["open_runs"])
    print(f"  alertd's CPU per alert in each open-loop run (the first from a fresh start): {each} ms")
    print(f"  CPU per request ratio alertd/baseline: {cpu['ms_per_row'] / base_cpu['ms_per_row']:.1f}x "
          f"(alertd's outbox work included: counted until it had sent every message the load queued)")
    for mode, people in [*(("open", per_run) for _ in alertd["open"]["runs"]), ("closed", len(tokens) - opening)]:
        sent = alertd[mode]["sent"] if mode == "closed" else max(r["sent"] for r in alertd["open"]["runs"])
        if sent > people:
            print(f"  warning: a {mode} loop sent {sent} alerts for {people} people: some were repeats (raise --people)")
            break
    runs = alertd["open"]["runs"]
    p99s = [r["p99_ms"] for r in runs]
    print(f"  open loop at {args.rate:.0f}/s, {len(runs)} runs of {args.duration:.0f} s: p99 "
          f"{', '.join(f'{p:.1f}' for p in p99s)} ms (spread {min(p99s):.1f}-{max(p99s):.1f}, median "
          f"{sorted(p99s)[len(p99s) // 2]:.1f}); p50 {', '.join(f'{p50:.1f}' for p50 in (r['p50_ms'] for r in runs))} ms")
    for name, result in (("baseline", base), ("alertd", alertd)):
        for mode in ("closed", "open"):
            statuses = {s: n for s, n in result[mode]["statuses"].items() if s != "201"}
            if statuses:
                print(f"  {name} {mode}: non-201 answers {statuses}")

    verdicts = benchlib.Verdicts()
    for phase, what in (("closed", "under full load (closed loop)"), ("open", f"at {args.rate:.0f}/s (open loop)")):
        verdicts.check(cpu[phase]["ms_per_row"] <= CPU_TARGET_MS,
                       f"CPU per committed alert {what} <= {CPU_TARGET_MS} ms", f"{cpu[phase]['ms_per_row']:.2f} ms")
    cpu_ratio = cpu["closed"]["ms_per_row"] / base_cpu["closed"]["ms_per_row"]
    verdicts.check(cpu_ratio <= CPU_RATIO_TARGET,
                   f"CPU per alert under full load <= {CPU_RATIO_TARGET}x the baseline's per request",
                   f"{cpu_ratio:.1f}x ({cpu['closed']['ms_per_row']:.2f} vs {base_cpu['closed']['ms_per_row']:.2f} ms)")
    achieved = all(r["ok"] == r["requests"] and r["rps"] >= 0.95 * args.rate for r in runs)
    verdicts.check(max(p99s) < P99_TARGET_MS and achieved,
                   f"p99 < {P99_TARGET_MS:.0f} ms at {args.rate:.0f} alerts/s in {len(runs)} of {len(runs)} runs",
                   f"worst {max(p99s):.1f} ms ({sum(r['ok'] for r in runs)} of {sum(r['requests'] for r in runs)} "
                   f"answered 201)")
    verdicts.check(check["with_3_dispatches"] == check["answered_201"], "every 201 has its 3 dispatches committed",
                   f"{check['with_3_dispatches']} of {check['answered_201']}")
    verdicts.print()
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
