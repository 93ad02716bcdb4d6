"""The state `alertd demo` keeps in its data folder between runs: who runs it now (a lock), the ports it used
(taken again when free, so exported settings and an enrolled phone app keep working), and the servers an
earlier run left behind when it was killed."""

from __future__ import annotations

import fcntl
import json
import os
import signal
import time
from pathlib import Path

from alertd.local.services import LocalPostgres

LOCK = "demo.lock"
RUNNING = "demo.json"  # {pid, http}: who holds the lock, for the message a second demo prints
PORTS = "ports.json"
MOSQUITTO_PID = "mosquitto.pid"


class AlreadyRunning(RuntimeError):
    """Another live demo holds this data folder; `pid` and `http` say which and where (http None while starting)."""

    def __init__(self, pid: int | None, http: str | None) -> None:
        super().__init__(f"pid {pid}, {http}")
        self.pid, self.http = pid, http


class DemoFolder:
    """A data folder held by one live demo at a time: the lock is an flock, so a demo killed with -9 lets go."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock_fd: int | None = None

    def acquire(self) -> DemoFolder:
        """Take the folder, or AlreadyRunning naming the demo that has it."""
        self.path.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path / LOCK, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            running = self._read(RUNNING)
            raise AlreadyRunning(running.get("pid"), running.get("http")) from None
        self._lock_fd = fd
        self._write(RUNNING, {"pid": os.getpid(), "http": None})
        return self

    def announce(self, http: str) -> None:
        """Record where this demo serves, for a second demo's message."""
        self._write(RUNNING, {"pid": os.getpid(), "http": http})

    def release(self) -> None:
        if self._lock_fd is not None:  # its servers are stopped by now: nothing of this run is left to find
            (self.path / RUNNING).unlink(missing_ok=True)
            (self.path / MOSQUITTO_PID).unlink(missing_ok=True)
            os.close(self._lock_fd)
            self._lock_fd = None

    def ports(self) -> dict[str, int]:
        """The ports the last run used ({} on a new folder)."""
        return {k: int(v) for k, v in self._read(PORTS).items()}

    def record_ports(self, **ports: int) -> None:
        self._write(PORTS, ports)

    def record_mosquitto(self, pid: int) -> None:
        self._write(MOSQUITTO_PID, {"pid": pid})

    def stop_orphans(self, postgres: LocalPostgres, mosquitto_conf: Path) -> list[str]:
        """Stop the PostgreSQL and Mosquitto an earlier run of this folder left running (it was killed); the names
        of those stopped. Call only while holding the folder: a live demo's servers are not orphans."""
        stopped = []
        if (postgres.datadir / "postmaster.pid").exists():
            postgres.stop("fast")  # pg_ctl stop: a clean shutdown (a stale pid file is left for pg_ctl start)
            if not (postgres.datadir / "postmaster.pid").exists():
                stopped.append("postgresql")
        pid = self._read(MOSQUITTO_PID).get("pid")
        if pid and _is_mosquitto_of(pid, mosquitto_conf):
            _terminate(pid)
            stopped.append("mosquitto")
        (self.path / MOSQUITTO_PID).unlink(missing_ok=True)
        return stopped

    def _read(self, name: str) -> dict:
        try:
            return json.loads((self.path / name).read_text())
        except (OSError, ValueError):
            return {}

    def _write(self, name: str, doc: dict) -> None:
        tmp = self.path / f".{name}.tmp"
        tmp.write_text(json.dumps(doc))
        tmp.replace(self.path / name)


def _is_mosquitto_of(pid: int, conf: Path) -> bool:
    """Is pid a Mosquitto started with this folder's config (and not some process that reused the pid)?"""
    try:
        argv = (Path("/proc") / str(pid) / "cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    return bool(argv) and argv[0].endswith(b"mosquitto") and str(conf).encode() in argv


def _terminate(pid: int, timeout_s: float = 10.0) -> None:
    """SIGTERM (Mosquitto saves its persistence file), then SIGKILL if it has not gone in timeout_s."""
    try:
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if not Path(f"/proc/{pid}").exists() or _zombie(pid):
                return
            time.sleep(0.05)
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def _zombie(pid: int) -> bool:
    try:
        return (Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except (OSError, IndexError):
        return True
