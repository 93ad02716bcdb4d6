"""Load generator for POST /v1/alerts (its own process): closed loop (max throughput) or open loop (fixed rate).

Prints one JSON document: requests, requests/s, latency percentiles in ms, statuses, errors.
Open-loop latency runs from each request's *scheduled* send time, so a stalled server cannot hide its queue
(no coordinated omission).

    python bench/loadgen.py URL TOKENS.json closed --concurrency 32 --duration 15 --warmup 3
    python bench/loadgen.py URL TOKENS.json open --rate 200 --duration 20 --warmup 3
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import random
import sys
import time
import uuid
from collections import Counter
from datetime import UTC, datetime

import aiohttp

# The sample region of alertd.local.region (kept literal so the load generator imports nothing of alertd).
CENTRE_LAT, CENTRE_LON, HALF_LAT, HALF_LON = 50.3, 72.9, 1.5, 2.9


class Load:
    def __init__(self, url: str, tokens: list[str], seed: int, no_location_share: float) -> None:
        self.url = url
        self.tokens = itertools.cycle(tokens)
        self.rng = random.Random(seed)
        self.no_location_share = no_location_share
        self.latencies: list[float] = []
        self.statuses: Counter[str] = Counter()
        self.alert_ids: list[str] = []
        self.sent = 0  # warmup included
        self.trace: list[tuple[float, float, str]] | None = None  # (wall-clock start, ms, status) with --trace

    def request(self) -> tuple[dict, dict]:
        now = datetime.now(UTC).isoformat()
        body: dict = {"client_alert_id": uuid.uuid4().hex, "triggered_at": now}
        if self.rng.random() >= self.no_location_share:  # the rest fall back to the registered home
            body["location"] = {
                "lat": round(CENTRE_LAT + self.rng.uniform(-HALF_LAT, HALF_LAT), 6),
                "lon": round(CENTRE_LON + self.rng.uniform(-HALF_LON, HALF_LON), 6),
                "accuracy_m": round(self.rng.uniform(5, 60), 1), "source": "gps", "fix_time": now}
        return {"Authorization": f"Bearer {next(self.tokens)}"}, body

    async def one(self, session: aiohttp.ClientSession, started: float, record: bool) -> None:
        headers, body = self.request()
        self.sent += 1
        try:
            async with session.post(self.url, json=body, headers=headers) as resp:
                doc = await resp.json(content_type=None)
                status = str(resp.status)
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            doc, status = {}, type(exc).__name__
        if record:
            self.latencies.append((time.perf_counter() - started) * 1000)
            if self.trace is not None:
                self.trace.append((time.time() - self.latencies[-1] / 1000, self.latencies[-1], status))
            self.statuses[status] += 1
            if status == "201":
                self.alert_ids.append(doc.get("alert_id"))


async def closed(load: Load, session, concurrency: int, duration: float, warmup: float) -> float:
    """`concurrency` workers each send the next request as soon as the last one is answered."""
    t0 = time.perf_counter()
    measure_from, stop_at = t0 + warmup, t0 + warmup + duration

    async def worker() -> None:
        while (now := time.perf_counter()) < stop_at:
            await load.one(session, now, record=now >= measure_from)

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return duration


async def open_loop(load: Load, session, rate: float, duration: float, warmup: float, seed: int) -> float:
    """Poisson arrivals at `rate` per second, whatever the server's pace."""
    rng = random.Random(seed + 1)
    t0 = time.perf_counter()
    measure_from, stop_at = t0 + warmup, t0 + warmup + duration
    tasks = []
    at = t0
    while at < stop_at:
        delay = at - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(load.one(session, at, record=at >= measure_from)))
        at += rng.expovariate(rate)
    await asyncio.gather(*tasks)
    return duration


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("url")
    parser.add_argument("tokens", help="a JSON file with a list of device tokens")
    parser.add_argument("mode", choices=["closed", "open"])
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--rate", type=float, default=200.0)
    parser.add_argument("--duration", type=float, default=15.0)
    parser.add_argument("--warmup", type=float, default=3.0)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--no-location-share", type=float, default=0.1)
    parser.add_argument("--trace", action="store_true",
                        help="also print every request as [wall-clock start, ms, status] (figures per time slice)")
    args = parser.parse_args()
    with open(args.tokens) as f:
        tokens = json.load(f)
    load = Load(args.url, tokens, args.seed, args.no_location_share)
    if args.trace:
        load.trace = []
    connector = aiohttp.TCPConnector(limit=0)
    timeout = aiohttp.ClientTimeout(total=30)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        if args.mode == "closed":
            seconds = await closed(load, session, args.concurrency, args.duration, args.warmup)
        else:
            seconds = await open_loop(load, session, args.rate, args.duration, args.warmup, args.seed)
    n = len(load.latencies)
    ordered = sorted(load.latencies)

    def pct(p: float) -> float:
        return ordered[max(0, min(n - 1, round(p / 100 * n + 0.5) - 1))] if n else float("nan")

    json.dump({
        "mode": args.mode, "requests": n, "sent": load.sent, "rps": n / seconds, "ok": load.statuses.get("201", 0),
        "p50_ms": pct(50), "p90_ms": pct(90), "p99_ms": pct(99), "max_ms": ordered[-1] if n else float("nan"),
        "statuses": dict(load.statuses), "alert_ids": load.alert_ids,
        **({"trace": load.trace} if load.trace is not None else {}),
    }, sys.stdout)


if __name__ == "__main__":
    asyncio.run(main())
