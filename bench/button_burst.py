"""Benchmark: a burst of presses from 1,000 simulated buttons through Mosquitto into `alertd serve`.

Starts a throwaway PostgreSQL+PostGIS and Mosquitto, seeds the demo region, enrols people and provisions 1,000
buttons, runs `alertd serve` in a child process, then from this process (paho, a few connections):

1. raw:   the broker's own QoS 1 publish -> subscriber rate (the yardstick, measured in the same run);
2. paced: presses at a fixed rate (default 500/s); press-to-committed p50/p99;
3. burst: once the service is idle again, every button presses at once; sustained presses/s until the last
   is committed, and its p50/p99.

"Committed" is when the button's app-level ack arrives: alertd publishes it only after the alert, its three
dispatches, outbox rows and timeline committed, so press-to-ack is an upper bound on press-to-committed-dispatch.

    .venv/bin/python bench/button_burst.py [--buttons 1000] [--rate 500] [--duration 4] [--raw 20000]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import sys
import threading
import time

import benchlib

sys.path.insert(0, str(benchlib.BENCH_DIR.parent))  # clients/ lives at the top of the checkout

import paho.mqtt.client as mqtt
from intake import group_commits, group_line

from alertd.clock import SystemClock
from alertd.core.model import Location
from alertd.local.region import CENTRE_LAT, CENTRE_LON, HALF_LAT, HALF_LON, responders
from alertd.local.services import LocalMosquitto
from alertd.mqtt.dynsec import NoBroker
from alertd.service.people import enrol_person
from alertd.service.provisioning import provision_button
from alertd.service.responders import upsert_responders
from alertd.store.db import connect
from clients.simulator.sim import Swarm

P99_TARGET_MS = 100.0
RATIO_TARGET = 0.3
# The service may have this many unacknowledged messages in flight (Mosquitto's default is 20).
BROKER_CONFIG = "max_inflight_messages 1000\nmax_queued_messages 100000\n"


async def seed(dsn: str, buttons: int, people: int = 100) -> list[tuple[str, str]]:
    rng = random.Random(5)
    now = SystemClock().now()
    conn = await connect(dsn)
    out = []
    try:
        await upsert_responders(conn, responders())
        persons = []
        for i in range(people):
            home = Location(CENTRE_LAT + rng.uniform(-HALF_LAT, HALF_LAT),
                            CENTRE_LON + rng.uniform(-HALF_LON, HALF_LON), 30.0, "home", now)
            persons.append((await enrol_person(conn, now, phones=[f"+7706{i:07d}"], home=home)).person_id)
        for i in range(buttons):
            creds = await provision_button(conn, NoBroker(), now, person_id=persons[i % people])
            out.append((creds.device_id, creds.hmac_secret))
    finally:
        await conn.close()
    return out


def raw_rate(url: str, n: int) -> float:
    """Messages/s from one QoS 1 publisher to one QoS 1 subscriber through the broker."""
    host, port = url.removeprefix("mqtt://").split(":")
    got = threading.Event()
    received = [0]
    first_sent = [0.0]
    last = [0.0]

    def on_message(_c, _u, _m):
        received[0] += 1
        if received[0] == n:
            last[0] = time.monotonic()
            got.set()

    sub = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="raw-sub", protocol=mqtt.MQTTv5)
    sub.on_message = on_message
    sub.connect(host, int(port))
    sub.subscribe("bench/raw", qos=1)
    sub.loop_start()
    pub = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="raw-pub", protocol=mqtt.MQTTv5)
    pub.max_inflight_messages_set(1000)
    pub.max_queued_messages_set(0)
    pub.connect(host, int(port))
    pub.loop_start()
    time.sleep(0.5)
    payload = b'{"seq": 1, "ts": 1795000000, "mac": "' + b"0" * 64 + b'"}'
    first_sent[0] = time.monotonic()
    for _ in range(n):
        pub.publish("bench/raw", payload, qos=1)
    got.wait(120)
    for c in (pub, sub):
        c.disconnect()
        c.loop_stop()
    return received[0] / (last[0] - first_sent[0]) if last[0] else float("nan")


def wait_acked(swarm: Swarm, expected: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while len(swarm.acked) < expected and time.monotonic() < deadline:
        time.sleep(0.01)


async def drained(dsn: str, timeout: float = 120.0) -> None:
    """Wait until the outbox has nothing pending (the service is idle again)."""
    conn = await connect(dsn)
    try:
        deadline = time.monotonic() + timeout
        while await conn.fetchval("SELECT count(*) FROM outbox WHERE status = 'pending'") and \
                time.monotonic() < deadline:
            await asyncio.sleep(0.2)
    finally:
        await conn.close()


def burst(swarm: Swarm, n: int) -> dict:
    before = len(swarm.acked)
    start = time.monotonic()
    keys = [swarm.press(i) for i in range(n)]
    wait_acked(swarm, before + n, 120)
    done = [swarm.acked[k] for k in keys if k in swarm.acked]
    end = max(done) if done else time.monotonic()
    return {"acked": len(done), "per_s": len(done) / (end - start), **benchlib.summary(swarm.latencies())}


def paced(swarm: Swarm, rate: float, duration: float) -> dict:
    before = len(swarm.acked)
    total = int(rate * duration)
    skipped = 0
    start = time.monotonic()
    for i in range(total):
        target = start + i / rate
        delay = target - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        if swarm.press_next() is None:
            skipped += 1  # every button still waits for its ack: the service is that far behind
    sent_s = time.monotonic() - start
    sent = total - skipped
    wait_acked(swarm, before + sent, 60)
    lat = swarm.latencies()
    return {"sent": sent, "offered_per_s": sent / sent_s, "acked": len(lat), **benchlib.summary(lat)}


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--buttons", type=int, default=1000)
    parser.add_argument("--rate", type=float, default=500.0)
    parser.add_argument("--duration", type=float, default=4.0)
    parser.add_argument("--raw", type=int, default=20000, help="messages for the raw broker rate")
    parser.add_argument("--services", type=int, default=1, help="`alertd serve` processes sharing the subscription")
    args = parser.parse_args()
    with benchlib.Services(broker=False) as services:
        services.broker = LocalMosquitto(services.workdir / "mqtt", extra_config=BROKER_CONFIG).start()
        dsn = await services.database("bench")
        buttons = await seed(dsn, args.buttons)
        configs = [services.settings(dsn, mqtt_client_id=f"alertd-bench-{i}", db_pool_max=20)
                   for i in range(args.services)]
        servers = [services.serve(config, log_name=f"alertd-{i}.log") for i, config in enumerate(configs)]
        urls = [f"http://127.0.0.1:{config.http_port}" for config in configs]

        async def groups() -> list[dict[str, float]]:
            return [await group_commits(u, "buttons") for u in urls]
        url = services.broker.url
        raw = raw_rate(url, args.raw)
        swarm = Swarm(url, buttons, connections=8)
        for conn in swarm.conns:
            conn.client.max_inflight_messages_set(1000)
        swarm.connect()
        time.sleep(0.5)
        def cpu() -> dict[str, float]:
            return {"alertd": sum(benchlib.cpu_seconds(s.pid) for s in servers),
                    "PostgreSQL": benchlib.postgres_cpu_seconds(services.pg),
                    "Mosquitto": benchlib.cpu_seconds(services.broker.process.pid),
                    "simulator": benchlib.cpu_seconds(os.getpid())}

        try:
            before, grouped = cpu(), [await groups()]
            p = paced(swarm, args.rate, args.duration)
            await drained(dsn)  # the engine's outbox work from the paced phase must not weigh on the burst
            grouped.append(await groups())
            swarm.sent.clear()
            b = burst(swarm, len(buttons))
            await drained(dsn)
            grouped.append(await groups())
            spent = {name: seconds - before[name] for name, seconds in cpu().items()}
        finally:
            swarm.close()
    print(f"machine: {benchlib.machine()}; {args.services} alertd serve process(es)")
    print(f"raw broker QoS 1 publish->subscriber: {raw:,.0f} msg/s ({args.raw} messages)")
    print(f"burst of {len(buttons)} presses: {b['acked']} committed, {b['per_s']:,.0f} presses/s sustained, "
          f"press-to-committed p50 {b['p50'] * 1000:.1f} ms, p99 {b['p99'] * 1000:.1f} ms, max {b['max'] * 1000:.1f} ms")
    print(f"paced at {p['offered_per_s']:,.0f} presses/s for {args.duration:g} s: {p['acked']}/{p['sent']} committed, "
          f"p50 {p['p50'] * 1000:.1f} ms, p99 {p['p99'] * 1000:.1f} ms, max {p['max'] * 1000:.1f} ms")
    for name, (start, end) in (("paced", (0, 1)), ("burst", (1, 2))):
        for i in range(args.services):
            print(group_line(f"{name}, alertd {i + 1}", grouped[start][i], grouped[end][i], items="presses"))
    presses = p["acked"] + b["acked"]
    print(f"CPU for the {presses} presses (paced and burst, each until its outbox was sent): " + ", ".join(
        f"{name} {seconds:.1f} s" for name, seconds in spent.items()) +
        f"; alertd + PostgreSQL = {1000 * (spent['alertd'] + spent['PostgreSQL']) / max(1, presses):.2f} ms per press")
    ratio = b["per_s"] / raw
    print(f"ratio sustained presses/s : raw broker rate = {ratio:.2f}")
    verdicts = benchlib.Verdicts()
    verdicts.check(p["p99"] * 1000 < P99_TARGET_MS and p["acked"] == p["sent"],
                   f"p99 < {P99_TARGET_MS:.0f} ms at {args.rate:.0f} presses/s", f"{p['p99'] * 1000:.1f} ms")
    verdicts.check(ratio >= RATIO_TARGET, f"sustained >= {RATIO_TARGET}x raw broker rate", f"{ratio:.2f}x")
    verdicts.print()


if __name__ == "__main__":
    asyncio.run(main())
