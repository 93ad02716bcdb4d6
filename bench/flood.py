"""Benchmark: one device floods `POST /v1/alerts` while other people raise alerts; does the flood bury anyone?

Starts a throwaway PostgreSQL+PostGIS and Mosquitto and `alertd serve`, seeds the demo region, warms up, then
runs three phases of the same length, each with its own 50 people (so each phase starts with no open alert):

1. **quiet**: 50 other devices raise alerts at 20/s in all (Poisson arrivals, open loop);
2. **flood**: the same load from 50 more devices, while one device sends 300 alerts/s (distinct
   client_alert_ids, open loop: it never waits for an answer before sending the next);
3. **quiet again**, from 50 more devices: the two quiet phases together are the "without the flood" figure, so
   that other work on the machine drifting during the run moves both sides.

It prints the dispatches made for the flooding person (target: at most 3 per kind of escalation, that is one
alert's dispatches), how the flood was answered, the other devices' p50/p99 in each phase (target: the flood
phase's p99 within 1.5x of the quiet phase's), and the CPU (alertd and PostgreSQL) per alert answered.
Latency runs from each request's scheduled send time (no coordinated omission).

    .venv/bin/python bench/flood.py [--duration 10] [--flood-rate 300] [--others 50] [--rate 20]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sys
import time
import uuid
from collections import Counter
from datetime import UTC, datetime

import aiohttp
import benchlib

from alertd import auth
from alertd.clock import SystemClock
from alertd.local.region import CENTRE_LAT, CENTRE_LON, HALF_LAT, HALF_LON, responders
from alertd.store.db import connect

DISPATCH_TARGET = 3  # per kind of escalation: the flooding person's alert is dispatched once
P99_RATIO_TARGET = 1.5


class Load:
    """Open-loop POST /v1/alerts from a set of device tokens: latencies (ms from the scheduled send), statuses."""

    def __init__(self, url: str, tokens: list[str], seed: int, where: tuple[float, float] | None = None) -> None:
        self.url, self.tokens, self.rng, self.where = url, tokens, random.Random(seed), where
        self.latencies: list[float] = []
        self.statuses: Counter[str] = Counter()
        self.alert_ids: Counter[str] = Counter()

    def body(self) -> dict:
        now = datetime.now(UTC).isoformat()
        lat, lon = self.where or (CENTRE_LAT + self.rng.uniform(-HALF_LAT, HALF_LAT),
                                  CENTRE_LON + self.rng.uniform(-HALF_LON, HALF_LON))
        return {"client_alert_id": uuid.uuid4().hex, "triggered_at": now,
                "location": {"lat": round(lat + self.rng.uniform(-1e-4, 1e-4), 6),
                             "lon": round(lon + self.rng.uniform(-1e-4, 1e-4), 6),
                             "accuracy_m": round(self.rng.uniform(5, 60), 1), "source": "gps", "fix_time": now}}

    async def one(self, session: aiohttp.ClientSession, token: str, scheduled: float) -> None:
        try:
            async with session.post(self.url, json=self.body(), headers={"Authorization": f"Bearer {token}"}) as resp:
                doc = await resp.json(content_type=None)
                status = str(resp.status)
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            doc, status = {}, type(exc).__name__
        self.latencies.append((time.perf_counter() - scheduled) * 1000)
        self.statuses[status] += 1
        if isinstance(doc, dict) and doc.get("alert_id"):
            self.alert_ids[doc["alert_id"]] += 1

    async def run(self, session: aiohttp.ClientSession, rate: float, duration: float, *, poisson: bool) -> None:
        """Requests at `rate` a second for `duration` s (Poisson or evenly spaced), tokens round robin."""
        tasks, at, i = [], time.perf_counter(), 0
        stop_at = at + duration
        while at < stop_at:
            delay = at - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(self.one(session, self.tokens[i % len(self.tokens)], at)))
            i += 1
            at += self.rng.expovariate(rate) if poisson else 1.0 / rate
        await asyncio.gather(*tasks)


async def seed(dsn: str, settings, people: int) -> list[str]:
    """The demo region's responders and `people` enrolled phones; their device tokens."""
    return await benchlib.seed_phones(dsn, settings, people, rng_seed=5, phone_prefix="+7706")


async def phase(services: benchlib.Services, server, url: str, loads: list[tuple[Load, float, bool]],
                duration: float, flood: tuple[Load, float] | None = None) -> dict:
    """Run these loads together (the flood from a process of its own, so that the flood's client does not slow
    the others' client); the CPU alertd and PostgreSQL spent, and the requests answered."""
    cpu_before = benchlib.cpu_seconds(server.pid) + benchlib.postgres_cpu_seconds(services.pg)
    connector = aiohttp.TCPConnector(limit=0)
    flooding = None
    if flood is not None:
        load, rate = flood
        flooding = asyncio.create_task(benchlib.run_json([benchlib.PYTHON, __file__, "--flood-client", url,
                                                          load.tokens[0], str(rate), str(duration)]))
    async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=120)) as session:
        await asyncio.gather(*(load.run(session, rate, duration, poisson=poisson) for load, rate, poisson in loads))
    if flooding is not None:
        result = await flooding
        flood[0].latencies, flood[0].statuses = result["latencies"], Counter(result["statuses"])
        flood[0].alert_ids = Counter(result["alert_ids"])
        loads = [*loads, (flood[0], flood[1], False)]
    cpu = benchlib.cpu_seconds(server.pid) + benchlib.postgres_cpu_seconds(services.pg) - cpu_before
    answered = sum(sum(load.statuses.values()) for load, _, _ in loads)
    return {"cpu_s": cpu, "answered": answered, "ms_per_alert": 1000 * cpu / max(1, answered)}


async def flood_client(url: str, token: str, rate: float, duration: float) -> None:
    """The flooding device, in its own process: prints its latencies, statuses and alert ids as JSON."""
    load = Load(url, [token], seed=3, where=(CENTRE_LAT + 0.2, CENTRE_LON - 0.3))
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=120)) as session:
        await load.run(session, rate, duration, poisson=False)
    json.dump({"latencies": load.latencies, "statuses": dict(load.statuses), "alert_ids": dict(load.alert_ids)},
              sys.stdout)


async def flood_person_counts(dsn: str, person_token: str, settings) -> dict:
    person_id = auth.verify(settings, person_token, SystemClock().now()).person_id
    conn = await connect(dsn)
    try:
        alerts = await conn.fetch("SELECT id, repeats, priority FROM alerts WHERE person_id = $1", person_id)
        by_kind = {r["kind"]: r["n"] for r in await conn.fetch(
            "SELECT d.kind, count(*) AS n FROM dispatches d JOIN alerts a ON a.id = d.alert_id "
            "WHERE a.person_id = $1 GROUP BY d.kind", person_id)}
        by_attempt = {r["attempt"]: r["n"] for r in await conn.fetch(
            "SELECT d.attempt, count(*) AS n FROM dispatches d JOIN alerts a ON a.id = d.alert_id "
            "WHERE a.person_id = $1 GROUP BY d.attempt", person_id)}
        outbox = await conn.fetchval("SELECT count(*) FROM outbox o JOIN alerts a ON a.id = o.alert_id "
                                     "WHERE a.person_id = $1", person_id)
        events = await conn.fetchval("SELECT count(*) FROM alert_events e JOIN alerts a ON a.id = e.alert_id "
                                     "WHERE a.person_id = $1 AND e.type = 'repeated'", person_id)
    finally:
        await conn.close()
    return {"alerts": [dict(r) for r in alerts], "by_kind": by_kind, "by_attempt": by_attempt, "outbox": outbox,
            "repeated_events": events}


def latency_line(name: str, load: Load) -> str:
    s = benchlib.summary(load.latencies)
    statuses = ", ".join(f"{k}: {v}" for k, v in sorted(load.statuses.items()))
    return (f"  {name:34} {s['n']:6d} requests  p50 {s['p50']:7.1f} ms  p99 {s['p99']:7.1f} ms  "
            f"max {s['max']:7.1f} ms  ({statuses})")


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per phase")
    parser.add_argument("--flood-rate", type=float, default=300.0, help="the flooding device's alerts/s")
    parser.add_argument("--others", type=int, default=50, help="other devices per phase")
    parser.add_argument("--rate", type=float, default=20.0, help="the other devices' alerts/s, in all")
    parser.add_argument("--warmup", type=float, default=3.0, help="seconds of the quiet load before measuring")
    parser.add_argument("--alerts-at-once", type=int, help="ALERTD_DEVICE_ALERTS_AT_ONCE (default: the service's)")
    parser.add_argument("--no-durable", action="store_true", help="fsync off (default: durable, fsync on)")
    args = parser.parse_args()

    with benchlib.Services(durable=not args.no_durable) as services:
        dsn = await services.database("alertd")
        # Deadlines long enough that none fires during the run: the flood's dispatches are the first ones.
        settings = services.settings(dsn, ack_deadline_police_post=3600, ack_deadline_crisis_centre=3600,
                                     ack_deadline_mobile_unit=3600)
        if args.alerts_at_once is not None:
            settings = settings.replace(device_alerts_at_once=args.alerts_at_once)
        tokens = await seed(dsn, settings, 4 * args.others + 1)
        flooder, people = tokens[0], [tokens[1 + i * args.others:1 + (i + 1) * args.others] for i in range(4)]
        print(f"flood: {benchlib.machine()}; PostgreSQL {'fsync off' if args.no_durable else 'durable'}; "
              f"{len(responders())} responders (demo region); {args.duration:g} s per phase")
        server = services.serve(settings)
        url = f"http://127.0.0.1:{settings.http_port}/v1/alerts"

        await phase(services, server, url, [(Load(url, people[3], seed=9), args.rate, True)], args.warmup)
        quiet = Load(url, people[0], seed=1)
        quiet_cost = await phase(services, server, url, [(quiet, args.rate, True)], args.duration)
        others = Load(url, people[1], seed=2)
        flood = Load(url, [flooder], seed=3)
        flood_cost = await phase(services, server, url, [(others, args.rate, True)], args.duration,
                                 flood=(flood, args.flood_rate))
        after = Load(url, people[2], seed=4)
        after_cost = await phase(services, server, url, [(after, args.rate, True)], args.duration)
        counts = await flood_person_counts(dsn, flooder, settings)

    print()
    print("the flooding device")
    print(latency_line(f"{args.flood_rate:g} alerts/s for {args.duration:g} s", flood))
    print(f"  answered with {len(flood.alert_ids)} alert id(s); alerts of that person: {len(counts['alerts'])}, "
          f"repeats {sum(a['repeats'] for a in counts['alerts'])}, "
          f"priority {', '.join(a['priority'] for a in counts['alerts'])}")
    print(f"  dispatches for that person: {counts['by_kind']} by kind, {counts['by_attempt']} by attempt "
          f"(1 = first dispatch, 2+ = escalations); outbox rows {counts['outbox']}; "
          f"repeated events {counts['repeated_events']}")
    print(f"the other devices (alerts at {args.rate:g}/s in all)")
    print(latency_line(f"quiet phase, {args.others} devices", quiet))
    print(latency_line(f"flood phase, {args.others} other devices", others))
    print(latency_line(f"quiet again, {args.others} devices", after))
    quiet_both = Load(url, [], seed=0)
    quiet_both.latencies, quiet_both.statuses = quiet.latencies + after.latencies, quiet.statuses + after.statuses
    print(latency_line("both quiet phases", quiet_both))
    print(f"CPU (alertd + PostgreSQL) per alert answered: quiet {quiet_cost['ms_per_alert']:.2f} and "
          f"{after_cost['ms_per_alert']:.2f} ms ({quiet_cost['answered']} and {after_cost['answered']} alerts), "
          f"flood phase {flood_cost['ms_per_alert']:.2f} ms ({flood_cost['answered']} alerts, "
          f"{flood_cost['cpu_s']:.1f} CPU s from its start to its last answer)")

    verdicts = benchlib.Verdicts()
    worst = max([n for n in counts["by_attempt"].values()] or [0])
    per_kind = max(counts["by_kind"].values() or [0])
    verdicts.check(worst <= DISPATCH_TARGET and per_kind * len(counts["by_kind"]) <= DISPATCH_TARGET * 3,
                   f"dispatches for the flooding device <= {DISPATCH_TARGET} per kind of escalation",
                   f"{counts['by_attempt']} by attempt, {counts['by_kind']} by kind, from "
                   f"{sum(flood.statuses.values())} alerts sent")
    quiet_p99 = benchlib.percentile(quiet_both.latencies, 99)
    flood_p99 = benchlib.percentile(others.latencies, 99)
    verdicts.check(flood_p99 <= P99_RATIO_TARGET * quiet_p99,
                   f"other devices' p99 with the flood within {P99_RATIO_TARGET}x of without",
                   f"{flood_p99:.1f} ms vs {quiet_p99:.1f} ms = {flood_p99 / quiet_p99:.2f}x")
    every = flood.statuses + others.statuses + quiet_both.statuses
    refused = sum(n for status, n in every.items() if status not in ("201", "200"))
    verdicts.check(refused == 0, "no alert refused", f"{refused} answered other than 201/200")
    verdicts.print()
    return 0


if __name__ == "__main__":
    if sys.argv[1:2] == ["--flood-client"]:
        asyncio.run(flood_client(sys.argv[2], sys.argv[3], float(sys.argv[4]), float(sys.argv[5])))
        raise SystemExit(0)
    raise SystemExit(asyncio.run(main()))
