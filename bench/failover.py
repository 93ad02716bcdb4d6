"""Benchmark: how long alertd is without a database primary when the primary's machine dies, and what is lost.

Starts a local high-availability database (`alertd.local.cluster`: three etcd members, two Patroni 3.0 nodes of
PostgreSQL 15 + PostGIS in synchronous mode, the test timings ttl 10 / loop_wait 1 / retry_timeout 4 unless
given), a Mosquitto with dynamic security, and one `alertd serve` on the multi-host URL with
target_session_attrs=primary. Then, several times: phones raise alerts at --rate per second (each retried with
its client_alert_id until answered 201/200, as the app does) and buttons press (each retried until acked, as the
firmware does); mid-load the primary's Patroni and postmaster (and its backends) get SIGKILL; the drill measures
the time from the kill to the first commit of a request sent after it, and checks every alert answered and every
press acked is on the new primary with its three dispatches, none twice, and every deadline due fired once. The
killed node is started again (it rejoins as the synchronous standby, pg_rewind) before the next kill.

    .venv/bin/python bench/failover.py [--kills 5] [--rate 10] [--people 80] [--buttons 8] [--ttl 10
                                       --loop-wait 1 --retry-timeout 4]
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import sys
import tempfile
import time
from pathlib import Path

import benchlib

sys.path.insert(0, str(benchlib.BENCH_DIR.parent))  # tests/ and clients/ live at the top of the checkout

from alertd.local.cluster import LocalHACluster, Timings, create_alertd_database
from tests.buttons_support import ADMIN, SERVICE, start_secured_broker
from tests.ha_support import Drill, drill_settings

GOAL_S = 15.0


async def main(args: argparse.Namespace) -> int:
    workdir = Path(tempfile.mkdtemp(prefix="alertd-failover-"))
    workdir.chmod(0o755)
    timings = Timings(args.ttl, args.loop_wait, args.retry_timeout)
    cluster = LocalHACluster(workdir / "cluster", timings=timings)
    broker = drill = None
    results = []
    try:
        started = time.monotonic()
        await asyncio.to_thread(cluster.start)
        url = await create_alertd_database(cluster)
        broker = await start_secured_broker(workdir / "mqtt")
        drill = Drill(workdir, url, drill_settings(url, broker.user_url(*SERVICE), broker.user_url(*ADMIN)))
        await drill.populate(people=args.people, buttons=args.buttons)
        drill.serve()
        await drill.wait_ready()
        print(f"cluster of {len(cluster.nodes)} nodes and 3 etcd members up in {time.monotonic() - started:.0f} s; "
              f"{timings}; {args.people} phones at {args.rate}/s, {args.buttons} buttons; {benchlib.machine()}")
        for i in range(args.kills):
            for node in cluster.nodes:
                if not node.alive:
                    node.start()
            await asyncio.to_thread(cluster.wait_healthy, 300)
            leader = await asyncio.to_thread(cluster.wait_leader)
            result = await drill.run(f"kill {i + 1} ({leader.name})", leader.kill, rate=args.rate,
                                     after_s=args.after)
            results.append(result)
            print(result.line(), flush=True)
    finally:
        if drill is not None:
            await asyncio.to_thread(drill.stop)
        if broker is not None:
            await asyncio.to_thread(broker.stop)
        await asyncio.to_thread(cluster.stop)
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
        else:
            print(f"logs kept in {workdir}")

    recoveries = [r.recovery_s for r in results if r.recovery_s is not None]
    lost = sum(r.app_lost + r.presses_lost for r in results)
    doubled = sum(r.app_doubled + r.presses_doubled for r in results)
    five_hundreds = sum(r.refused.get(500, 0) for r in results)
    print()
    print(f"recovery (kill -> first commit on the new primary) over {len(recoveries)} kills: "
          f"p50 {benchlib.percentile(recoveries, 50):.1f} s, max {max(recoveries, default=float('nan')):.1f} s")
    print(f"alerts and presses lost: {lost}; doubled: {doubled}; answered 500: {five_hundreds}; "
          f"answered 503 (retried): {sum(r.refused.get(503, 0) for r in results)}; "
          f"deadlines fired twice: {sum(r.deadlines_fired_twice for r in results)}, "
          f"not fired: {sum(r.deadlines_not_fired for r in results)}")
    verdicts = benchlib.Verdicts()
    verdicts.check(len(recoveries) == len(results) and max(recoveries, default=1e9) <= GOAL_S,
                   f"first commit within {GOAL_S:.0f} s of every kill",
                   f"max {max(recoveries, default=float('nan')):.1f} s")
    verdicts.check(lost == 0, "no acknowledged alert or press lost", str(lost))
    verdicts.check(doubled == 0, "none doubled", str(doubled))
    verdicts.check(five_hundreds == 0, "no 500 during a failover", str(five_hundreds))
    verdicts.check(all(r.ok for r in results), "every check of every kill", f"{sum(r.ok for r in results)}/"
                   f"{len(results)}")
    verdicts.print()
    return 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kills", type=int, default=5)
    parser.add_argument("--rate", type=float, default=10.0, help="app alerts per second")
    parser.add_argument("--people", type=int, default=80)
    parser.add_argument("--buttons", type=int, default=8)
    parser.add_argument("--after", type=float, default=4.0, help="seconds of load after the recovery")
    parser.add_argument("--ttl", type=int, default=10)
    parser.add_argument("--loop-wait", type=int, default=1)
    parser.add_argument("--retry-timeout", type=int, default=4)
    parser.add_argument("--keep", action="store_true", help="keep the logs and data folders")
    sys.exit(asyncio.run(main(parser.parse_args())))
