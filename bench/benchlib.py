"""What the benchmarks share: throwaway PostgreSQL+PostGIS and Mosquitto, `alertd serve` children, percentiles."""

from __future__ import annotations

import asyncio
import os
import platform
import random
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import asyncpg

from alertd import auth
from alertd.clock import SystemClock
from alertd.core.ids import new_id
from alertd.core.model import Location
from alertd.local.region import CENTRE_LAT, CENTRE_LON, HALF_LAT, HALF_LON, responders
from alertd.local.services import LocalMosquitto, LocalPostgres, free_port
from alertd.service.people import enrol_person
from alertd.service.responders import upsert_responders
from alertd.settings import Settings
from alertd.store import queries
from alertd.store.db import connect
from alertd.store.migrate import migrate

BENCH_DIR = Path(__file__).resolve().parent
PYTHON = sys.executable


class Services:
    """A PostgreSQL+PostGIS cluster and (optionally) a Mosquitto broker in a temp folder, removed afterwards."""

    def __init__(self, *, durable: bool = True, broker: bool = True, pg_options: str = "") -> None:
        """`pg_options`: more `-c name=value` PostgreSQL settings (LocalPostgres's `options`)."""
        self.durable = durable
        self.pg_options = pg_options
        self.want_broker = broker
        self.workdir = Path(tempfile.mkdtemp(prefix="alertd-bench-"))
        os.chmod(self.workdir, 0o755)
        self.pg: LocalPostgres | None = None
        self.broker: LocalMosquitto | None = None
        self.children: list[subprocess.Popen] = []

    def __enter__(self) -> Services:
        # A stopped benchmark still stops its servers: SIGTERM unwinds like Ctrl-C.
        signal.signal(signal.SIGTERM, signal.default_int_handler)
        self.pg = LocalPostgres(self.workdir / "pg", durable=self.durable, options=self.pg_options).start()
        if self.want_broker:
            self.broker = LocalMosquitto(self.workdir / "mqtt").start()
        return self

    def __exit__(self, *exc) -> None:
        for child in self.children:
            stop_child(child)
        if self.broker:
            self.broker.stop()
        if self.pg:
            self.pg.stop("fast")
        shutil.rmtree(self.workdir, ignore_errors=True)

    async def database(self, name: str, *, migrated: bool = True) -> str:
        """Create a database (migrated with alertd.store.migrate unless told otherwise); return its DSN."""
        admin = await asyncpg.connect(self.pg.dsn())
        await admin.execute(f'CREATE DATABASE "{name}"')
        await admin.close()
        dsn = self.pg.dsn(name)
        if migrated:
            conn = await connect(dsn)
            try:
                await migrate(conn)
            finally:
                await conn.close()
        return dsn

    def settings(self, dsn: str, **changes) -> Settings:
        port = free_port()
        base = Settings(
            database_url=dsn, mqtt_url=self.broker.url if self.broker else "mqtt://127.0.0.1:1",
            http_host="127.0.0.1", http_port=port, public_url=f"http://127.0.0.1:{port}",
            jwt_secret=secrets.token_urlsafe(48), data_dir=str(self.workdir / "data"))
        return base.replace(**changes)

    def spawn(self, args: list[str], *, env: dict[str, str] | None = None, log_name: str) -> subprocess.Popen:
        """Start a child process whose output goes to a log file in the work folder; stopped on exit."""
        log = open(self.workdir / log_name, "wb")
        child = subprocess.Popen(args, env={**os.environ, **(env or {})}, stdout=log, stderr=subprocess.STDOUT,
                                 cwd=BENCH_DIR.parent)
        child.log_path = self.workdir / log_name  # type: ignore[attr-defined]
        self.children.append(child)
        return child

    def serve(self, settings: Settings, log_name: str = "alertd.log") -> subprocess.Popen:
        """`alertd serve` in a child process with the environment that reproduces `settings`."""
        child = self.spawn([PYTHON, "-m", "alertd", "serve"], env=settings.as_env(), log_name=log_name)
        wait_ready(f"http://127.0.0.1:{settings.http_port}/readyz", child)
        return child


def cpu_seconds(pid: int) -> float:
    """CPU time (user + system) of a process and of its children it has reaped (PostgreSQL's ended backends)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return sum(int(v) for v in fields[11:15]) / os.sysconf("SC_CLK_TCK")


def postgres_cpu_seconds(pg: LocalPostgres) -> float:
    """CPU time of the postmaster and every backend, live or ended."""
    main = int((pg.datadir / "postmaster.pid").read_text().split()[0])
    total = cpu_seconds(main)
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            if proc.joinpath("stat").read_text().rsplit(")", 1)[1].split()[1] == str(main):
                total += cpu_seconds(int(proc.name))
        except (OSError, IndexError):
            continue
    return total


def stop_child(child: subprocess.Popen, timeout: float = 15.0) -> None:
    if child.poll() is None:
        child.terminate()
        try:
            child.wait(timeout)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()


def wait_ready(url: str, child: subprocess.Popen, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if child.poll() is not None:
            # the folder with the log goes when the bench ends: say its last lines now
            tail = Path(child.log_path).read_text(errors="replace").splitlines()[-5:]
            raise RuntimeError(f"{url}: the process exited with {child.returncode}:\n" + "\n".join(tail))
        try:
            with urllib.request.urlopen(url, timeout=1) as r:
                if r.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"{url} did not answer 200 within {timeout}s")


async def run_json(args: list[str]) -> dict:
    """Run a helper script to completion and parse the one JSON document it prints."""
    import json

    proc = await asyncio.create_subprocess_exec(*args, stdout=asyncio.subprocess.PIPE,
                                                stderr=asyncio.subprocess.PIPE, cwd=BENCH_DIR.parent)
    out, err = await proc.communicate()
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(args[:3])} failed ({proc.returncode}): {err.decode()[-2000:]}")
    return json.loads(out)


def percentile(values: list[float], p: float) -> float:
    """Nearest-rank percentile (p in 0..100); NaN for no values."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(1, min(len(ordered), round(p / 100 * len(ordered) + 0.5)))
    return ordered[rank - 1]


def summary(values: list[float]) -> dict[str, float]:
    return {"n": len(values), "p50": percentile(values, 50), "p99": percentile(values, 99),
            "max": max(values) if values else float("nan")}


def machine() -> str:
    load = os.getloadavg()[0]
    return (f"{os.cpu_count()} cpu, Python {platform.python_version()}, load {load:.2f}, "
            f"PostgreSQL {_pg_version()}")


def _pg_version() -> str:
    from alertd.local.services import postgres_bindir

    return postgres_bindir().parent.name


class Verdicts:
    """PASS/MISS lines per target; the exit status stays 0 either way (only errors fail a benchmark)."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def check(self, ok: bool, target: str, measured: str) -> None:
        self.lines.append(f"{'PASS' if ok else 'MISS'}  {target}: {measured}")

    def print(self) -> None:
        print()
        for line in self.lines:
            print(line)
        # Other work on the machine moves every figure: say how busy it was.
        print(f"(load average at the end: {os.getloadavg()[0]:.2f} on {os.cpu_count()} cpu)")


async def seed_phones(dsn: str, settings, people: int, *, rng_seed: int, phone_prefix: str) -> list[str]:
    """The demo region's responders and `people` enrolled phones (home in the region); their device tokens."""
    rng = random.Random(rng_seed)
    now = SystemClock().now()
    tokens = []
    conn = await connect(dsn)
    try:
        await upsert_responders(conn, responders())
        async with conn.transaction():
            for i in range(people):
                home = Location(CENTRE_LAT + rng.uniform(-HALF_LAT, HALF_LAT),
                                CENTRE_LON + rng.uniform(-HALF_LON, HALF_LON), 30.0, "home", now)
                enrolled = await enrol_person(conn, now, phones=[f"{phone_prefix}{i:07d}"], home=home)
                tokens.append(auth.issue(settings, role="device", sub=enrolled.device_id, ttl_s=86400, now=now,
                                         person_id=enrolled.person_id, device_id=enrolled.device_id))
    finally:
        await conn.close()
    return tokens


async def enrol_people(dsn: str, settings, people: int, *, seed: int, phone_prefix: str) -> list[str]:
    """`people` people with one phone and one app device each (the enrolment statements, pipelined); tokens."""
    rng = random.Random(seed)
    now = SystemClock().now()
    rows = []
    taken: set[str] = set()
    for i in range(people):
        # 27^8 person ids: among 45,000 drawn at once, two alike about one run in 300; drawn again here (enrolment
        # one at a time would refuse the second with a unique violation)
        while (person_id := new_id("P-")) in taken:
            continue
        taken.add(person_id)
        rows.append((person_id, new_id("D-", 10), f"{phone_prefix}{i:07d}", CENTRE_LAT + rng.uniform(-HALF_LAT, HALF_LAT),
                     CENTRE_LON + rng.uniform(-HALF_LON, HALF_LON)))
    conn = await connect(dsn)
    try:
        async with conn.transaction():
            await conn.executemany(queries.insert_person,
                                   [(p, None, None, lat, lon, 30.0, None, False, None) for p, _, _, lat, lon in rows])
            await conn.executemany(queries.insert_person_phone, [(phone, p) for p, _, phone, _, _ in rows])
            await conn.executemany(queries.insert_device, [(d, p, "phone", now) for p, d, _, _, _ in rows])
        # Only the tables just filled (as autovacuum would have by the time the load comes): an ANALYZE of the
        # whole database would record the empty alerts, dispatches and outbox as empty, and every connection
        # would then plan its foreign-key checks on them as scans of a one-page table, kept as they grow.
        await conn.execute("ANALYZE people, person_phones, devices")
    finally:
        await conn.close()
    return [auth.issue(settings, role="device", sub=d, ttl_s=86400, now=now, person_id=p, device_id=d)
            for p, d, _, _, _ in rows]
