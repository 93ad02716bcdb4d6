"""Benchmark: does a 404 on an alert tell a random id, a malformed id and someone else's alert apart by time?

An officer probing ids must learn nothing: the three answers are identical in body, and should cost the same work.
Against `alertd serve` (real PostgreSQL+PostGIS and Mosquitto), one officer of a responder the alert was *not*
dispatched to reads, in shuffled rounds, a random uuid, a malformed id and the existing alert; one read of her own
dispatched alert per round is the reference. Requests go one at a time (no queueing in the numbers).

    .venv/bin/python bench/not_found_timing.py [--rounds 400] [--path /v1/alerts/{id}]

Prints, per case, the HTTP status, the body's hash, and the median / p90 answer time in ms; then PASS when the
three 404s have one body and their medians lie within 15% of each other (MISS otherwise): on a loaded machine
the medians wander by about a millisecond from run to run, and which of the three is slowest changes with them.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import os
import random
import statistics
import time
import uuid
from datetime import UTC, datetime

import aiohttp
import benchlib

from alertd import auth
from alertd.service.people import enrol_person
from alertd.service.responders import ResponderRecord, upsert_responders
from alertd.store.db import connect

RESPONDERS = [ResponderRecord("pol-a", "police_post", "post A", 50.01, 70.0, "north"),
              ResponderRecord("pol-b", "police_post", "post B", 50.5, 70.0, "south"),
              ResponderRecord("cc-a", "crisis_centre", "centre A", 50.02, 70.0, "north"),
              ResponderRecord("mu-a", "mobile_unit", "unit A", 50.03, 70.0, "north")]


async def run(rounds: int, path: str) -> None:
    with benchlib.Services(durable=False) as services:
        dsn = await services.database("alertd")
        settings = services.settings(dsn)
        now = datetime.now(UTC)
        conn = await connect(dsn)
        try:
            await upsert_responders(conn, RESPONDERS)
            person = await enrol_person(conn, now, phones=["+77010000099"], pin="1234", duress_pin="9999")
        finally:
            await conn.close()
        services.serve(settings)
        base = f"http://127.0.0.1:{settings.http_port}"
        device = auth.issue(settings, role="device", sub=person.device_id, ttl_s=3600, now=now,
                            person_id=person.person_id, device_id=person.device_id)
        stranger = auth.issue(settings, role="officer", sub="o-b", ttl_s=3600, now=now, responder_id="pol-b")
        own = auth.issue(settings, role="officer", sub="o-a", ttl_s=3600, now=now, responder_id="pol-a")
        async with aiohttp.ClientSession() as http:
            async with http.post(f"{base}/v1/alerts", headers={"Authorization": f"Bearer {device}"},
                                 json={"client_alert_id": "x", "location": {"lat": 50.0, "lon": 70.0}}) as resp:
                assert resp.status == 201, await resp.text()
                alert_id = (await resp.json())["alert_id"]
            cases = {"random id": lambda: (str(uuid.uuid4()), stranger),
                     "malformed id": lambda: ("not-an-alert-" + uuid.uuid4().hex[:8], stranger),
                     "someone else's": lambda: (alert_id, stranger),
                     "own (found)": lambda: (alert_id, own)}
            times: dict[str, list[float]] = {name: [] for name in cases}
            answers: dict[str, set] = {name: set() for name in cases}
            for round_ in range(rounds + 20):
                order = list(cases)
                random.shuffle(order)
                for name in order:
                    ident, token = cases[name]()
                    started = time.perf_counter()
                    async with http.get(base + path.format(id=ident),
                                        headers={"Authorization": f"Bearer {token}"}) as resp:
                        body = await resp.read()
                    took = time.perf_counter() - started
                    if round_ >= 20:  # the first rounds warm connections and caches
                        times[name].append(took * 1000)
                        answers[name].add((resp.status, hashlib.sha256(body).hexdigest()[:12]
                                           if resp.status != 200 else "-"))
    print(f"{path}: {rounds} rounds, one request at a time; load average {os.getloadavg()[0]:.1f}")
    medians = {}
    for name, values in times.items():
        values.sort()
        medians[name] = statistics.median(values)
        p90 = values[int(len(values) * 0.9)]
        print(f"  {name:15} {sorted(answers[name])}  median {medians[name]:.2f} ms  p90 {p90:.2f} ms")
    denied = [name for name in cases if name != "own (found)"]
    one_answer = len(set().union(*(answers[name] for name in denied))) == 1
    spread = max(medians[n] for n in denied) - min(medians[n] for n in denied)
    bodies = "one body" if one_answer else "different bodies"
    fastest = min(medians[n] for n in denied)
    print(f"{'PASS' if one_answer and spread <= 0.15 * fastest else 'MISS'}: the 404s have {bodies}, "
          f"medians within {spread:.2f} ms = {spread / fastest:.0%} (target <= 15%)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=400)
    parser.add_argument("--path", default="/v1/alerts/{id}")
    args = parser.parse_args()
    asyncio.run(run(args.rounds, args.path))


if __name__ == "__main__":
    main()
