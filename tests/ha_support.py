"""Fault drills on a real Patroni cluster (issue 13), shared by tests/integration/test_ha_cluster.py and bench/failover.py.

`alertd serve` runs on the cluster's multi-host URL; phones raise alerts at a steady rate and buttons press, each
retried by its sender until answered (the phone app keeps its client_alert_id, a button its seq), exactly as the
real clients do; a fault is injected mid-load; then the checks: every alert answered 201/200 and every press
acknowledged is on the surviving primary with its three dispatches, none twice; every deadline that came due
fired exactly once; and the time from the fault to the first commit afterwards.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp

from alertd.local.services import free_port
from alertd.settings import Settings
from alertd.store.db import connect
from tests.helpers import device_token, enrol, offset, seed_responders

# Police posts must acknowledge within 15 s, so deadlines come due before, during and after each fault; the other
# kinds wait longer than a drill, so each alert keeps exactly its three first dispatches besides police ones.
DEADLINES = {"ack_deadline_police_post": 15, "ack_deadline_crisis_centre": 600, "ack_deadline_mobile_unit": 600}


@dataclass
class Sent:
    """One alert (or press) from its first send until a sender heard it was committed."""

    key: tuple[str, str]  # (device_id, client_alert_id) or (device_id, seq)
    first_sent: float
    answered_at: float | None = None
    answered_attempt_sent: float | None = None  # when the attempt that got through was sent
    alert_id: str | None = None
    refusals: Counter = field(default_factory=Counter)  # status code (or "no answer") -> count


class AppLoad:
    """Phones raising alerts at `rate` per second, round robin, each retried with its client_alert_id until the
    answer is 201 or 200 (after Retry-After on a 503, 0.5 s after anything else), as the phone app's queue does."""

    def __init__(self, base_url: str, phones: list[tuple[str, str]], rate: float, tag: str) -> None:
        self.base_url, self.phones, self.rate, self.tag = base_url, phones, rate, tag
        self.sent: list[Sent] = []
        self.stopping = asyncio.Event()
        self._tasks: set[asyncio.Task] = set()

    async def run(self) -> None:
        timeout = aiohttp.ClientTimeout(total=20)
        async with aiohttp.ClientSession(timeout=timeout) as http:
            i = 0
            loop = asyncio.get_running_loop()
            next_at = loop.time()
            while not self.stopping.is_set():
                device_id, token = self.phones[i % len(self.phones)]
                item = Sent((device_id, f"{self.tag}-{i}"), time.monotonic())
                self.sent.append(item)
                task = asyncio.create_task(self._until_answered(http, item, token))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)
                i += 1
                next_at += 1 / self.rate
                await asyncio.sleep(max(0.0, next_at - loop.time()))
            if self._tasks:
                await asyncio.wait(set(self._tasks), timeout=120)

    async def _until_answered(self, http: aiohttp.ClientSession, item: Sent, token: str) -> None:
        lat, lon = offset(0.5 + len(self.sent) % 7 * 0.3)
        body = {"client_alert_id": item.key[1], "location": {"lat": lat, "lon": lon, "accuracy_m": 15.0}}
        headers = {"Authorization": f"Bearer {token}"}
        give_up = time.monotonic() + 120
        while time.monotonic() < give_up:
            attempt = time.monotonic()
            try:
                async with http.post(f"{self.base_url}/v1/alerts", json=body, headers=headers) as resp:
                    if resp.status in (200, 201):
                        item.alert_id = (await resp.json())["alert_id"]
                        item.answered_at, item.answered_attempt_sent = time.monotonic(), attempt
                        return
                    item.refusals[resp.status] += 1
                    wait = float(resp.headers.get("Retry-After", 0.5))
            except (aiohttp.ClientError, TimeoutError):
                item.refusals["no answer"] += 1
                wait = 0.5
            await asyncio.sleep(wait)


class PressLoad:
    """Buttons pressing every `gap_s`, each press retried until its app-level ack (the firmware), in threads."""

    def __init__(self, buttons: list, gap_s: float) -> None:
        self.buttons, self.gap_s = buttons, gap_s
        self.sent: list[Sent] = []
        self.errors: list[BaseException] = []
        self.stopping = threading.Event()
        self._lock = threading.Lock()
        self.threads = [threading.Thread(target=self._run, args=(b,), daemon=True) for b in buttons]

    def start(self) -> None:
        for t in self.threads:
            t.start()

    def _run(self, button) -> None:
        try:
            while not self.stopping.is_set():
                seq, topic, payload = button.next_message("press")
                item = Sent((button.device_id, str(seq)), time.monotonic())
                with self._lock:
                    self.sent.append(item)
                attempts_before = time.monotonic()
                button.send_until_acked(seq, topic, payload, wait_s=120)
                item.answered_at, item.answered_attempt_sent = time.monotonic(), attempts_before
                self.stopping.wait(self.gap_s)
        except BaseException as exc:  # reported by join()
            self.errors.append(exc)

    async def join(self) -> None:
        self.stopping.set()
        for t in self.threads:
            await asyncio.to_thread(t.join, 150)


@dataclass
class Result:
    fault: str
    recovery_s: float | None  # from the fault to the first commit answered for a request sent after it
    longest_gap_s: float  # the longest time without any alert answered, from just before the fault on
    app_sent: int
    app_answered: int
    app_lost: int  # answered 201/200 but not on the surviving primary
    app_doubled: int  # one client_alert_id, more than one alert
    presses_acked: int
    presses_lost: int
    presses_doubled: int
    missing_dispatches: int  # committed alerts of this drill without exactly one first dispatch of each kind
    refused: dict  # status -> count, while the fault lasted
    deadlines_due_in_outage: int  # police deadlines that came due between the fault and the recovery
    deadlines_fired_twice: int
    deadlines_not_fired: int
    successors_doubled: int

    @property
    def ok(self) -> bool:
        return (self.app_lost == self.app_doubled == self.presses_lost == self.presses_doubled == 0
                and self.missing_dispatches == self.deadlines_fired_twice == self.deadlines_not_fired == 0
                and self.successors_doubled == 0 and self.app_answered == self.app_sent
                and 500 not in self.refused)

    def line(self) -> str:
        rec = f"{self.recovery_s:.1f} s" if self.recovery_s is not None else "n/a"
        return (f"{self.fault}: first commit after {rec}, longest gap without one {self.longest_gap_s:.1f} s; app {self.app_answered}/{self.app_sent} answered, "
                f"lost {self.app_lost}, doubled {self.app_doubled}; presses {self.presses_acked} acked, "
                f"lost {self.presses_lost}, doubled {self.presses_doubled}; refused {dict(self.refused)}; "
                f"deadlines due in the outage {self.deadlines_due_in_outage}, fired twice "
                f"{self.deadlines_fired_twice}, not fired {self.deadlines_not_fired}")


class Drill:
    """The people, buttons and `alertd serve` of the drills, on a cluster and a secured broker."""

    def __init__(self, workdir: Path, database_url: str, settings: Settings) -> None:
        self.workdir = workdir
        self.database_url = database_url
        self.settings = settings
        self.phones: list[tuple[str, str]] = []
        self.buttons: list = []
        self.process: subprocess.Popen | None = None
        self.drills = 0

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.settings.http_port}"

    async def populate(self, people: int, buttons: int) -> None:
        from alertd.clock import SystemClock
        from tests.buttons_support import connected_button, provision_button

        clock = SystemClock()
        db = await connect(self.database_url)
        try:
            await seed_responders(db)
            persons = []
            for _ in range(people):
                person = await enrol(db, clock.now(), home=offset(1))
                persons.append(person)
                token = device_token(self.settings, person, clock.now(), ttl_s=24 * 3600)
                self.phones.append((person.device_id, token))
            broker = _BrokerOf(self.settings)
            for i in range(buttons):
                creds = await provision_button(db, self.settings, clock, persons[i % people].person_id)
                self.buttons.append(await connected_button(broker, creds, clock, retry_s=1.0))
        finally:
            await db.close()

    def serve(self) -> subprocess.Popen:
        env = {**os.environ, **self.settings.as_env()}
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen([sys.executable, "-m", "alertd", "serve"], env=env,
                                            stdout=subprocess.DEVNULL, stderr=log,
                                            cwd=Path(__file__).resolve().parent.parent)
        return self.process

    async def wait_ready(self, timeout: float = 60.0) -> None:
        end = time.monotonic() + timeout
        async with aiohttp.ClientSession() as http:
            while time.monotonic() < end:
                try:
                    async with http.get(f"{self.base_url}/readyz") as resp:
                        if resp.status == 200:
                            return
                except aiohttp.ClientError:
                    pass
                await asyncio.sleep(0.2)
        raise AssertionError(f"alertd on {self.base_url} never became ready")

    @property
    def log_path(self) -> Path:
        return self.workdir / f"serve-{self.settings.http_port}.log"

    def unusual_log_lines(self, limit: int = 80) -> str:
        """alertd's log without its routine info lines: what went wrong is in the rest."""
        lines = self.log_path.read_text().splitlines() if self.log_path.exists() else []
        return "\n".join([line for line in lines if '"level": "info"' not in line][-limit:])

    def stop(self) -> None:
        for button in self.buttons:
            button.close()
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    async def run(self, name: str, fault, *, rate: float = 10.0, press_gap_s: float = 1.0, before_s: float = 8.0,
                  after_s: float = 6.0, recovery_timeout_s: float = 90.0) -> Result:
        """Load, `fault()` (blocking, run in a thread) mid-load, load on until `after_s` past the recovery."""
        self.drills += 1
        app = AppLoad(self.base_url, self.phones, rate, f"{name}-{self.drills}-{uuid.uuid4().hex[:6]}")
        presses = PressLoad(self.buttons, press_gap_s)
        app_task = asyncio.create_task(app.run())
        presses.start()
        await asyncio.sleep(before_s)
        db = await connect(self.database_url)
        fault_wall = await db.fetchval("SELECT now()")
        await db.close()
        fault_at = time.monotonic()
        await asyncio.to_thread(fault)
        recovered_at = None
        end = fault_at + recovery_timeout_s
        while time.monotonic() < end:
            firsts = [s.answered_at for s in app.sent if s.answered_at and s.answered_attempt_sent > fault_at]
            if firsts:
                recovered_at = min(firsts)
                break
            await asyncio.sleep(0.1)
        await asyncio.sleep(after_s)
        app.stopping.set()
        await app_task
        await presses.join()
        assert not presses.errors, presses.errors
        recovery_s = recovered_at - fault_at if recovered_at else None
        answers = sorted(s.answered_at for s in app.sent if s.answered_at and s.answered_at >= fault_at - 1.0)
        gap = max((b - a for a, b in zip(answers, answers[1:])), default=0.0)
        refused = Counter()
        for s in app.sent:
            refused.update(s.refusals)
        return await self._check(name, app, presses, recovery_s, gap, fault_wall, refused)

    async def _check(self, name: str, app: AppLoad, presses: PressLoad, recovery_s, gap, fault_wall,
                     refused) -> Result:
        db = await connect(self.database_url)
        try:
            # every deadline due by now fires (at most 1 s late, the engine polls every 0.5 s): wait for it
            for _ in range(100):
                overdue = await db.fetchval("SELECT count(*) FROM dispatches WHERE status = 'pending' "
                                            "AND ack_deadline < now() - interval '2 seconds'")
                if overdue == 0:
                    break
                await asyncio.sleep(0.2)
            answered = {s.key: s.alert_id for s in app.sent if s.alert_id}
            # An alert while hers is open joins it as a repeat: its key is kept in alert_repeats, not alerts.
            stored = await committed_keys(db, [k[0] for k in answered] or [""])
            app_lost = sum(1 for k, alert_id in answered.items() if stored.get(k) != [alert_id])
            app_doubled = sum(len(ids) - 1 for k, ids in stored.items() if k in answered and len(ids) > 1)
            acked = {s.key for s in presses.sent if s.answered_at}
            pressed = await committed_keys(db, [b.device_id for b in self.buttons])
            press_keys = {(device, key.removeprefix("seq:")): ids for (device, key), ids in pressed.items()}
            presses_lost = sum(1 for k in acked if k not in press_keys)
            presses_doubled = sum(len(ids) - 1 for ids in press_keys.values() if len(ids) > 1)
            ids = list(answered.values())
            missing = await db.fetchval(
                "SELECT count(*) FROM (SELECT a.id FROM alerts a LEFT JOIN dispatches d ON d.alert_id = a.id "
                "AND d.attempt = 1 AND NOT d.broadcast WHERE a.id::text = ANY($1::text[]) GROUP BY a.id "
                "HAVING count(d.id) <> 3 OR count(DISTINCT d.kind) <> 3) x", ids)
            fired_twice = await db.fetchval(
                "SELECT count(*) FROM (SELECT dispatch_id FROM alert_events WHERE type = 'expired' "
                "GROUP BY dispatch_id HAVING count(*) > 1) x")
            not_fired = await db.fetchval("SELECT count(*) FROM dispatches WHERE status = 'pending' "
                                          "AND ack_deadline < now() - interval '2 seconds'")
            successors = await db.fetchval(
                # an escalation makes one successor per missed dispatch; a region-wide call-out makes many of one
                # attempt, and a re-dispatch to a nearer responder (her repeat moved her) cancels the old one and
                # keeps its attempt: neither is a double
                "SELECT count(*) FROM (SELECT alert_id, kind, attempt FROM dispatches WHERE NOT broadcast "
                "AND status <> 'cancelled' GROUP BY alert_id, kind, attempt HAVING count(*) > 1) x")
            due_in_outage = await db.fetchval(
                "SELECT count(*) FROM dispatches WHERE kind = 'police_post' AND ack_deadline >= $1 "
                "AND ack_deadline < $1 + make_interval(secs => $2)", fault_wall, recovery_s or 0.0)
        finally:
            await db.close()
        return Result(name, recovery_s, gap, len(app.sent), len(answered), app_lost, app_doubled, len(acked),
                      presses_lost, presses_doubled, missing, dict(refused), due_in_outage, fired_twice,
                      not_fired, successors)


async def committed_keys(db, devices: list[str]) -> dict[tuple[str, str], list[str]]:
    """(device_id, client_alert_id) -> the alert ids it stands for, whether it raised its alert or joined one as a
    repeat (more than one id: committed twice)."""
    rows = await db.fetch(
        "SELECT device_id, client_alert_id, id::text AS alert_id FROM alerts WHERE device_id = ANY($1::text[]) "
        "UNION ALL SELECT device_id, client_alert_id, alert_id::text FROM alert_repeats "
        "WHERE device_id = ANY($1::text[])", devices)
    out: dict[tuple[str, str], list[str]] = {}
    for r in rows:
        out.setdefault((r["device_id"], r["client_alert_id"]), []).append(r["alert_id"])
    return out


class _BrokerOf:
    """What connected_button needs of a broker: a URL for a device's own account."""

    def __init__(self, settings: Settings) -> None:
        from urllib.parse import urlsplit

        parts = urlsplit(settings.mqtt_url)
        self.host, self.port = parts.hostname, parts.port

    def user_url(self, username: str, password: str) -> str:
        return f"mqtt://{username}:{password}@{self.host}:{self.port}"


def drill_settings(database_url: str, mqtt_url: str, mqtt_admin_url: str) -> Settings:
    return Settings(database_url=database_url, mqtt_url=mqtt_url, mqtt_admin_url=mqtt_admin_url,
                    jwt_secret="ha-drill-" + "x" * 40, http_port=free_port(),
                    mqtt_client_id=f"alertd-ha-{uuid.uuid4().hex[:8]}", mqtt_session_expiry_s=600,
                    **DEADLINES).replace(public_url="http://127.0.0.1")
