"""Benchmark: signed Twilio SMS webhooks against `alertd serve`, next to a baseline measured in the same run.

A new alert costs the whole intake (signature check, location parse, alert, three dispatches, outbox, timeline)
before the empty <Response/> goes back; notes and Twilio retries are cheaper. The baseline is a minimal aiohttp
handler that reads the same form and answers <Response/>, in its own process, under the same load generator.

    .venv/bin/python bench/sms_webhook.py [--duration 10] [--concurrency 32] [--rate 200] [--low-rate 50]

Prints, for the baseline, for alertd under two SMS mixes (see Requests) and for the phone app's POST /v1/alerts
(the same new alert without the webhook, to show what the SMS layer adds): requests/s at full speed (closed loop),
and p50/p99 answer time at a fixed rate (open loop, measured from each request's scheduled time so a stall counts
against the server), and for the new-alert runs also at --low-rate; then the ratios to the baseline.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import secrets
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import aiohttp
import benchlib
from twilio.request_validator import RequestValidator

from alertd import auth
from alertd.local.services import free_port
from alertd.service.responders import ResponderRecord, upsert_responders
from alertd.settings import Settings
from alertd.store.db import connect
from alertd.store.queries import Queries, queries

BENCH_QUERIES = Queries(Path(__file__).with_name("sql"))  # the benchmarks' own, never alertd's

TOKEN = "bench-auth-token-" + "x" * 16
DEVICES = 100
PATH = "/v1/sms/inbound"
BASE_LAT, BASE_LON = 50.0, 70.0


# --- the baseline server (run as a child: `sms_webhook.py --baseline PORT`) ---------------------------------

def baseline(port: int) -> None:
    from aiohttp import web

    async def hook(request: web.Request) -> web.Response:
        await request.post()
        return web.Response(text='<?xml version="1.0" encoding="UTF-8"?><Response />', content_type="text/xml")

    async def ready(_request: web.Request) -> web.Response:
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_post(PATH, hook)
    app.router.add_get("/readyz", ready)
    web.run_app(app, host="127.0.0.1", port=port, access_log=None, print=None)


# --- setup ----------------------------------------------------------------------------------------------------

async def seed(dsn: str, people: int) -> list[str]:
    """Responders around the base point and `people` enrolled phones (no code phrase: any text raises)."""
    conn = await connect(dsn)
    try:
        records = [ResponderRecord(id=f"{kind[:3]}-{i}", kind=kind, name=f"{kind} {i}", region="bench",
                                   lat=BASE_LAT + 0.02 * i, lon=BASE_LON + 0.01 * i, language="ru")
                   for kind in ("police_post", "crisis_centre", "mobile_unit") for i in range(5)]
        await upsert_responders(conn, records)
        phones = [f"+7702{n:07d}" for n in range(people)]
        ids = [f"P-BENCH{n:07d}" for n in range(people)]
        await conn.executemany(queries.insert_person,
                               [(pid, None, None, None, None, None, None, False, "bench") for pid in ids])
        await conn.executemany(queries.insert_person_phone, list(zip(phones, ids, strict=True)))
        now = datetime.now(UTC)
        await conn.executemany(queries.insert_device, [(f"D-{pid}", pid, "phone", now) for pid in ids[:DEVICES]])
    finally:
        await conn.close()
    return phones


def device_tokens(settings: Settings) -> list[str]:
    """Tokens for the phone app devices seed() made, for the app-intake comparison."""
    now = datetime.now(UTC)
    ids = [f"P-BENCH{n:07d}" for n in range(DEVICES)]
    return [auth.issue(settings, role="device", sub=f"D-{pid}", ttl_s=3600, now=now, person_id=pid,
                       device_id=f"D-{pid}") for pid in ids]


class Requests:
    """Fresh signed webhooks, signed the way Twilio signs (public URL plus sorted form fields).

    `new`: every request is a first SMS from the next enrolled phone, so each raises a full alert.
    `mixed`, per ten requests: one new alert, six notes and one new location for alerts already open, and two
    Twilio retries of a MessageSid already sent.
    """

    def __init__(self, public_url: str, phones: list[str], mode: str = "new") -> None:
        self.url = public_url + PATH
        self.phones = phones
        self.mode = mode
        self.validator = RequestValidator(TOKEN)
        self.n = 0
        self.fresh = 0
        self.raised: list[int] = []
        self.sent: list[tuple[dict, dict]] = []
        self.random = random.Random(7)

    def next(self) -> dict:
        n, self.n = self.n, self.n + 1
        slot = n % 10 if self.mode == "mixed" else 0
        if slot >= 8 and self.sent:
            return self.random.choice(self.sent[-500:])
        if slot == 0 or not self.raised:
            index = self.fresh % len(self.phones)
            self.fresh += 1
            self.raised.append(index)
        else:
            index = self.raised[self.random.randrange(max(0, len(self.raised) - 200), len(self.raised))]
        phone = self.phones[index]
        # Each person stays within ~20 m of her own spot: a new location is a refinement, not a move.
        lat = BASE_LAT + (index % 50) * 0.001 + self.random.uniform(-0.0002, 0.0002)
        body = f"help {lat:.5f}, {BASE_LON:.5f}" if slot in (0, 7) else "he is still here"
        form = {"MessageSid": f"SM{secrets.token_hex(16)}", "AccountSid": "AC" + "0" * 32, "From": phone,
                "To": "+15005550006", "Body": body, "NumMedia": "0"}
        request = {"data": form, "headers": {"X-Twilio-Signature": self.validator.compute_signature(self.url, form)}}
        self.sent.append(request)
        return request


class AppRequests:
    """The phone app's POST /v1/alerts, each a new alert from the next enrolled device: the intake without SMS."""

    def __init__(self, tokens: list[str]) -> None:
        self.tokens = tokens
        self.n = 0

    def next(self) -> dict:
        n, self.n = self.n, self.n + 1
        location = {"lat": BASE_LAT + (n % 50) * 0.001, "lon": BASE_LON, "accuracy_m": 20, "source": "gps"}
        return {"json": {"client_alert_id": f"bench-{n}", "location": location},
                "headers": {"Authorization": f"Bearer {self.tokens[n % len(self.tokens)]}"}}


# --- load ---------------------------------------------------------------------------------------------------

def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[max(0, min(len(ordered) - 1, round(p / 100 * len(ordered) + 0.5) - 1))] if ordered else float("nan")


async def closed_loop(url: str, requests: Requests | AppRequests, concurrency: int, duration: float) -> dict:
    """As fast as `concurrency` callers can go for `duration` seconds: requests per second."""
    done, errors = 0, 0
    stop_at = time.perf_counter() + duration

    async def caller(session: aiohttp.ClientSession) -> None:
        nonlocal done, errors
        while time.perf_counter() < stop_at:
            async with session.post(url, **requests.next()) as resp:
                await resp.read()
                done += 1
                errors += resp.status >= 300

    start = time.perf_counter()
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=concurrency)) as session:
        await asyncio.gather(*[caller(session) for _ in range(concurrency)])
    elapsed = time.perf_counter() - start
    return {"rps": done / elapsed, "n": done, "errors": errors}


async def open_loop(url: str, requests: Requests | AppRequests, rate: float, duration: float) -> dict:
    """A request every 1/rate s for `duration` s; latency from each request's scheduled time."""
    count = int(rate * duration)
    latencies: list[float] = []
    errors = 0

    async def one(session, request: dict, scheduled: float) -> None:
        nonlocal errors
        async with session.post(url, **request) as resp:
            await resp.read()
            errors += resp.status >= 300
        latencies.append(time.perf_counter() - scheduled)

    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:
        start = time.perf_counter() + 0.05
        tasks = []
        for i in range(count):
            scheduled = start + i / rate
            delay = scheduled - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(one(session, requests.next(), scheduled)))
        await asyncio.gather(*tasks)
    return {"n": count, "errors": errors, "p50_ms": percentile(latencies, 50) * 1000,
            "p99_ms": percentile(latencies, 99) * 1000, "max_ms": max(latencies) * 1000}


async def drained(dsn: str, limit_s: float = 60.0) -> None:
    """Wait until the engine has sent what earlier load queued, so one run's backlog does not slow the next."""
    conn = await connect(dsn)
    try:
        deadline = time.monotonic() + limit_s
        while time.monotonic() < deadline and await conn.fetchval(BENCH_QUERIES.count_outbox_backlog):
            await asyncio.sleep(0.2)
    finally:
        await conn.close()


async def measure(name: str, url: str, requests: Requests | AppRequests, args, low_rate: float | None = None) -> dict:
    await drained(args.dsn)
    await closed_loop(url, requests, 8, 1.0)  # warm-up
    await drained(args.dsn)
    full = await closed_loop(url, requests, args.concurrency, args.duration)
    await drained(args.dsn)
    fixed = await open_loop(url, requests, args.rate, args.duration)
    line = (f"{name:9} {full['rps']:8.0f} req/s (n={full['n']}, errors={full['errors']})   "
            f"at {args.rate:.0f}/s: p50 {fixed['p50_ms']:7.1f} ms  p99 {fixed['p99_ms']:7.1f} ms "
            f"(n={fixed['n']}, errors={fixed['errors']})")
    result = {"closed": full, "open": fixed}
    if low_rate:
        await drained(args.dsn)
        low = await open_loop(url, requests, low_rate, args.duration)
        line += f"   at {low_rate:.0f}/s: p50 {low['p50_ms']:6.1f} ms  p99 {low['p99_ms']:6.1f} ms"
        result["low"] = low
    print(line, flush=True)
    return result


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--rate", type=float, default=200.0)
    parser.add_argument("--low-rate", type=float, default=50.0, help="a second fixed rate for the new-alert runs")
    args = parser.parse_args()
    # Enough phones that (at up to ~1500 req/s) every new-only request is a first SMS and raises a new alert.
    need = int((1500 + args.rate + args.low_rate) * (args.duration + 1)) * 6 // 5

    with benchlib.Services() as services:
        dsn = await services.database("bench")
        phones = await seed(dsn, need)
        args.dsn = dsn
        settings = services.settings(dsn, public_url="https://alertd.example.org", twilio_auth_token=TOKEN,
                                     log_level="WARNING",
                                     # No deadline may fall due during the run: escalations of one run's alerts
                                     # would land in the next run's timings. This measures intake, not escalation.
                                     ack_deadline_police_post=3600, ack_deadline_crisis_centre=3600,
                                     ack_deadline_mobile_unit=3600)
        port = settings.http_port
        services.serve(settings)
        base_port = free_port()
        baseline_server = services.spawn([benchlib.PYTHON, __file__, "--baseline", str(base_port)],
                                         log_name="baseline.log")
        benchlib.wait_ready(f"http://127.0.0.1:{base_port}/readyz", baseline_server)

        print(f"{os.cpu_count()} cpu, load {os.getloadavg()[0]:.2f}")
        base = await measure("baseline", f"http://127.0.0.1:{base_port}{PATH}",
                             Requests(settings.public_url, phones), args)
        url = f"http://127.0.0.1:{port}{PATH}"
        mixed = await measure("mixed", url, Requests(settings.public_url, phones[:need // 5], "mixed"), args)
        storm = await measure("new-only", url, Requests(settings.public_url, phones[need // 5:]), args,
                              args.low_rate)
        app = await measure("app-new", f"http://127.0.0.1:{port}/v1/alerts", AppRequests(device_tokens(settings)),
                            args, args.low_rate)
        conn = await connect(dsn)
        outcomes = dict(await conn.fetch("SELECT outcome, count(*) FROM sms_inbound GROUP BY outcome"))
        alerts = await conn.fetchval("SELECT count(*) FROM alerts")
        await conn.close()
        for name, result in (("mixed", mixed), ("new-only", storm)):
            print(f"{name:9} {result['closed']['rps'] / base['closed']['rps']:.2f} of baseline req/s; "
                  f"p99 {result['open']['p99_ms'] / base['open']['p99_ms']:.1f}x baseline's at {args.rate:.0f}/s")
        print(f"new-only SMS makes {storm['closed']['rps'] / app['closed']['rps']:.2f} of the app intake's req/s "
              f"(the same alert and dispatches without the webhook)")
        print(f"committed: {alerts} alerts; inbound outcomes {outcomes}")
        for name, result in (("mixed", mixed), ("new-only", storm)):
            ok = result["open"]["p99_ms"] < 200 and result["open"]["errors"] == 0
            print(f"{'PASS' if ok else 'MISS'}  {name}: p99 < 200 ms at {args.rate:.0f} req/s: "
                  f"{result['open']['p99_ms']:.1f} ms")
        return 0


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--baseline":
        baseline(int(sys.argv[2]))
    else:
        sys.exit(asyncio.run(main()))
