"""A local high-availability database on one host: three etcd members and two or three Patroni-managed
PostgreSQL+PostGIS nodes, each with its own ports and folder (the fault tests, bench/failover.py, scripts/ha-demo.sh).

Production runs the same pieces on three machines (docs/operations.md); here each "machine" is a set of
processes that can be killed with SIGKILL. Patroni 3.0 (Debian 12) talks to etcd 3.4 through its `etcd3`
section (etcd's v2 API is off). `synchronous_mode` is on: Patroni promotes only a standby that had every
commit a client was told about.
"""

from __future__ import annotations

import json
import os
import pwd
import shutil
import signal
import subprocess
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from alertd.local.services import ServiceError, free_port, postgres_bindir, wait_port


@dataclass(frozen=True)
class Timings:
    """Patroni's timings (seconds). A dead primary's leader key lives `ttl` at most; a standby takes over within
    about `ttl + loop_wait`. Patroni needs loop_wait + 2 * retry_timeout <= ttl."""

    ttl: int = 10
    loop_wait: int = 1
    retry_timeout: int = 4


TEST_TIMINGS = Timings()
PRODUCTION_TIMINGS = Timings(ttl=30, loop_wait=10, retry_timeout=10)  # Patroni's defaults


def _as_postgres() -> list[str]:
    return ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []


def _own(path: Path) -> None:
    """Give a folder to the postgres user (PostgreSQL and Patroni run as it), and let it reach the folder."""
    path.mkdir(parents=True, exist_ok=True)
    if os.geteuid() != 0:
        return
    pw = pwd.getpwnam("postgres")
    for p in [path, *path.rglob("*")]:
        os.chown(p, pw.pw_uid, pw.pw_gid)
    for parent in path.resolve().parents:
        if parent != Path("/") and not parent.stat().st_mode & 0o001:
            os.chmod(parent, parent.stat().st_mode | 0o001)


def _descendants(pid: int) -> list[int]:
    """Every process below `pid` (read from /proc), deepest last."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    out, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            out.append(child)
            todo.append(child)
    return out


def _kill9(pids: list[int]) -> None:
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def _get_json(url: str, timeout: float = 2.0) -> dict | list | None:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return json.loads(resp.read())
    except (OSError, ValueError) as exc:
        if hasattr(exc, "read"):  # Patroni answers 503 with its state for a replica on /primary and the like
            try:
                return json.loads(exc.read())
            except (OSError, ValueError):
                return None
        return None


class LocalEtcd:
    """A three-member etcd cluster (the DCS Patroni keeps its leader key in)."""

    def __init__(self, directory: Path, members: int = 3) -> None:
        self.directory = Path(directory)
        self.names = [f"etcd{i + 1}" for i in range(members)]
        self.client_ports = [free_port() for _ in self.names]
        self.peer_ports = [free_port() for _ in self.names]
        self.processes: list[subprocess.Popen | None] = [None] * members
        self.binary = shutil.which("etcd") or "/usr/bin/etcd"
        if not Path(self.binary).exists():
            raise ServiceError("etcd not found: run scripts/setup.sh (installs etcd-server)")

    @property
    def hosts(self) -> str:
        """host:port of every member, as Patroni's etcd3 section takes them."""
        return ",".join(f"127.0.0.1:{p}" for p in self.client_ports)

    def _command(self, i: int, state: str) -> list[str]:
        cluster = ",".join(f"{n}=http://127.0.0.1:{p}" for n, p in zip(self.names, self.peer_ports, strict=True))
        client = f"http://127.0.0.1:{self.client_ports[i]}"
        peer = f"http://127.0.0.1:{self.peer_ports[i]}"
        return [self.binary, "--name", self.names[i], "--data-dir", str(self.directory / self.names[i]),
                "--listen-client-urls", client, "--advertise-client-urls", client,
                "--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
                "--initial-cluster", cluster, "--initial-cluster-token", f"alertd-{self.client_ports[0]}",
                "--initial-cluster-state", state, "--heartbeat-interval", "100", "--election-timeout", "1000"]

    def start_member(self, i: int) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        with open(self.directory / f"{self.names[i]}.log", "ab") as log:
            self.processes[i] = subprocess.Popen(self._command(i, "new"), stdout=log, stderr=log)

    def start(self) -> LocalEtcd:
        for i in range(len(self.names)):
            self.start_member(i)
        for port in self.client_ports:
            wait_port(port, 30)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:  # a leader elected: the cluster takes writes
            health = _get_json(f"http://127.0.0.1:{self.client_ports[0]}/health", 1.0)
            if isinstance(health, dict) and health.get("health") == "true":
                return self
            time.sleep(0.2)
        raise ServiceError(f"etcd never became healthy (logs in {self.directory})")

    def kill_member(self, i: int) -> None:
        process = self.processes[i]
        if process is not None and process.poll() is None:
            process.kill()
            process.wait()
        self.processes[i] = None

    def stop(self) -> None:
        for i in range(len(self.names)):
            self.kill_member(i)


class PatroniNode:
    """One "database machine": Patroni and the PostgreSQL it runs, with their own ports and folder."""

    def __init__(self, name: str, directory: Path, etcd: LocalEtcd, timings: Timings, strict: bool) -> None:
        self.name = name
        self.directory = Path(directory)
        self.pg_port = free_port()
        self.api_port = free_port()
        self.etcd, self.timings, self.strict = etcd, timings, strict
        self.process: subprocess.Popen | None = None

    @property
    def datadir(self) -> Path:
        return self.directory / "data"

    @property
    def api(self) -> str:
        return f"http://127.0.0.1:{self.api_port}"

    def config(self) -> dict:
        t = self.timings
        return {
            "scope": "alertd", "namespace": "/service/", "name": self.name,
            "log": {"level": "INFO", "dir": str(self.directory / "log")},
            "restapi": {"listen": f"127.0.0.1:{self.api_port}", "connect_address": f"127.0.0.1:{self.api_port}"},
            "etcd3": {"hosts": self.etcd.hosts},
            "watchdog": {"mode": "off"},  # one host: nothing to fence; production uses the softdog (operations.md)
            "bootstrap": {
                "dcs": {
                    "ttl": t.ttl, "loop_wait": t.loop_wait, "retry_timeout": t.retry_timeout,
                    "maximum_lag_on_failover": 1048576,
                    "synchronous_mode": True, "synchronous_mode_strict": self.strict,
                    "postgresql": {
                        "use_pg_rewind": True, "use_slots": True,
                        "parameters": {"wal_level": "replica", "hot_standby": "on", "wal_log_hints": "on",
                                       "max_wal_senders": 10, "max_replication_slots": 10,
                                       "max_connections": 200, "wal_keep_size": "256MB"},
                    },
                },
                "initdb": [{"encoding": "UTF8"}, {"locale": "C.UTF-8"}, "data-checksums"],
            },
            "postgresql": {
                "listen": f"127.0.0.1:{self.pg_port}", "connect_address": f"127.0.0.1:{self.pg_port}",
                "data_dir": str(self.datadir), "bin_dir": str(postgres_bindir()),
                "pgpass": str(self.directory / "pgpass"),
                "authentication": {"superuser": {"username": "postgres", "password": "postgres"},
                                   "replication": {"username": "replicator", "password": "replicator"}},
                "parameters": {"unix_socket_directories": str(self.directory)},
                "pg_hba": ["local all all trust", "host all all 127.0.0.1/32 trust",
                           "host replication replicator 127.0.0.1/32 trust"],
            },
            "tags": {"nofailover": False, "noloadbalance": False, "clonefrom": False, "nosync": False},
        }

    def start(self) -> PatroniNode:
        (self.directory / "log").mkdir(parents=True, exist_ok=True)
        conf = self.directory / "patroni.yml"
        conf.write_text(json.dumps(self.config(), indent=2))  # YAML is a superset of JSON
        _own(self.directory)
        with open(self.directory / "patroni.out", "ab") as out:
            self.process = subprocess.Popen([*_as_postgres(), "patroni", str(conf)], stdout=out, stderr=out,
                                            start_new_session=True)
        return self

    def state(self) -> dict:
        """Patroni's own view of this node (role, state), or {} when its REST API does not answer."""
        doc = _get_json(f"{self.api}/patroni", 1.0)
        return doc if isinstance(doc, dict) else {}

    def patroni_pid(self) -> int | None:
        """The Patroni process itself (as root it runs under runuser, which a SIGKILL would leave it behind)."""
        if self.process is None:
            return None
        for pid in [self.process.pid, *_descendants(self.process.pid)]:
            try:
                argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if Path(argv[0].decode()).name != "runuser" and any(a.endswith(b"patroni") for a in argv[:2]):
                return pid
        return None

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def kill(self) -> None:
        """SIGKILL Patroni and its PostgreSQL (postmaster and backends) at once: the machine died."""
        if self.process is None:
            return
        pids = [self.process.pid, *_descendants(self.process.pid)]
        pid_file = self.datadir / "postmaster.pid"
        if pid_file.exists():
            try:
                postmaster = int(pid_file.read_text().split()[0])
                pids += [postmaster, *_descendants(postmaster)]
            except (OSError, ValueError, IndexError):
                pass
        _kill9(sorted(set(pids)))
        self.process.wait()
        self.process = None

    def stop(self) -> None:
        """Stop Patroni cleanly (it stops its PostgreSQL), or kill it after 30 s."""
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.kill()
        self.process = None


class LocalHACluster:
    """etcd (three members) and `nodes` Patroni nodes; `database_url()` names every node for alertd."""

    def __init__(self, directory: Path, nodes: int = 2, timings: Timings = TEST_TIMINGS, *,
                 strict: bool = False) -> None:
        self.directory = Path(directory)
        self.timings = timings
        self.etcd = LocalEtcd(self.directory / "etcd")
        self.nodes = [PatroniNode(f"pg{i + 1}", self.directory / f"pg{i + 1}", self.etcd, timings, strict)
                      for i in range(nodes)]
        for tool in ("patroni", "patronictl"):
            if shutil.which(tool) is None:
                raise ServiceError(f"{tool} not found: run scripts/setup.sh (installs patroni)")

    def dsn(self, database: str = "postgres") -> str:
        """The multi-host URL of a database (as LocalPostgres.dsn names one on a single server)."""
        return self.database_url(database)

    def database_url(self, database: str = "alertd", user: str = "postgres") -> str:
        hosts = ",".join(f"127.0.0.1:{n.pg_port}" for n in self.nodes)
        return f"postgresql://{user}@{hosts}/{database}?target_session_attrs=primary"

    def node_url(self, node: PatroniNode, database: str = "alertd") -> str:
        return f"postgresql://postgres@127.0.0.1:{node.pg_port}/{database}"

    def start(self, timeout: float = 180.0) -> LocalHACluster:
        """etcd, then the first node (it bootstraps the cluster), then the others (they clone it)."""
        self.directory.mkdir(parents=True, exist_ok=True)
        self.etcd.start()
        self.nodes[0].start()
        self.wait_leader(timeout)
        for node in self.nodes[1:]:
            node.start()
        self.wait_healthy(timeout)
        return self

    def members(self) -> list[dict]:
        """The cluster as Patroni's REST API sees it: name, role (leader, sync_standby, replica), state."""
        for node in self.nodes:
            if node.alive:
                doc = _get_json(f"{node.api}/cluster", 1.0)
                if isinstance(doc, dict) and "members" in doc:
                    return doc["members"]
        return []

    def leader(self) -> PatroniNode | None:
        for m in self.members():
            if m.get("role") == "leader" and m.get("state") == "running":
                return next((n for n in self.nodes if n.name == m["name"]), None)
        return None

    def wait_leader(self, timeout: float = 60.0) -> PatroniNode:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            leader = self.leader()
            if leader is not None and leader.state().get("role") in ("master", "primary"):
                return leader
            time.sleep(0.2)
        raise ServiceError(f"no Patroni leader within {timeout} s (logs in {self.directory})")

    def wait_healthy(self, timeout: float = 180.0) -> None:
        """Until a leader runs and every live node streams from it, one of them as the synchronous standby."""
        deadline = time.monotonic() + timeout
        live = {n.name for n in self.nodes if n.alive}
        while time.monotonic() < deadline:
            members = {m["name"]: m for m in self.members()}
            roles = [m.get("role") for m in members.values()]
            if set(members) >= live and roles.count("leader") == 1 and (
                    len(live) == 1 or "sync_standby" in roles) and all(
                    members[n].get("state") in ("running", "streaming") for n in live):
                return
            time.sleep(0.3)
        raise ServiceError(f"cluster not healthy within {timeout} s: {self.members()} (logs in {self.directory})")

    def switchover(self, candidate: PatroniNode | None = None) -> None:
        """A clean switchover (`patronictl switchover`), to `candidate` or the synchronous standby."""
        leader = self.wait_leader()
        candidate = candidate or next(n for n in self.nodes if n is not leader and n.alive)
        conf = self.nodes[0].directory / "patroni.yml"
        subprocess.run(["patronictl", "-c", str(conf), "switchover", "--leader", leader.name,
                        "--candidate", candidate.name, "--force", "alertd"], check=True, capture_output=True,
                       timeout=120)

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()
        self.etcd.stop()


async def create_alertd_database(cluster: LocalHACluster, name: str = "alertd") -> str:
    """CREATE DATABASE on the leader and migrate it; the multi-host URL alertd uses."""
    from alertd.store.db import connect
    from alertd.store.migrate import migrate

    admin = await connect(cluster.database_url("postgres"))
    try:
        if not await admin.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name):
            await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    conn = await connect(cluster.database_url(name))
    try:
        await migrate(conn)
    finally:
        await conn.close()
    return cluster.database_url(name)


def ha_instructions(cluster: LocalHACluster) -> dict:
    """What a newcomer can do to the demo's cluster: see it, kill the primary's machine, switch over."""
    conf = cluster.nodes[0].directory / "patroni.yml"
    nodes = {n.name: {"postgres_port": n.pg_port, "patroni_api": n.api, "patroni_pid": n.patroni_pid(), "data": str(n.datadir)} for n in cluster.nodes}
    lines = [
        f"patronictl -c {conf} list                # who is the primary now",
        f"patronictl -c {conf} switchover --force   # a clean switchover",
        "kill the primary's machine: SIGKILL its Patroni and its postmaster, e.g. for pg1:",
        f"  kill -9 {nodes['pg1']['patroni_pid']} $(head -1 {nodes['pg1']['data']}/postmaster.pid)",
        f"a new primary is promoted within about {cluster.timings.ttl + cluster.timings.loop_wait} s; alerts meanwhile "
        "get 503 + Retry-After and the app retries",
        f"start a killed node again (it rejoins as the standby): {' '.join(_as_postgres())} patroni "
        f"{cluster.directory}/pgN/patroni.yml &".replace("  ", " "),
    ]
    return {"nodes": nodes, "patroni_config": str(conf), "lines": lines}


def main() -> None:
    """`python -m alertd.local.cluster [FOLDER]`: a fresh cluster, its URL and how to break it, until Ctrl-C."""
    import asyncio
    import sys
    import tempfile

    folder = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(tempfile.mkdtemp(prefix="alertd-ha-"))
    shutil.rmtree(folder, ignore_errors=True)
    cluster = LocalHACluster(folder)
    try:
        cluster.start()
        url = asyncio.run(create_alertd_database(cluster))
        print(f"A Patroni cluster is running (3 etcd members, 2 PostgreSQL nodes, synchronous mode) in {folder}.\n"
              f"Point alertd at it, e.g. ALERTD_DATABASE_URL='{url}' alertd serve\n")
        for line in ha_instructions(cluster)["lines"]:
            print("  " + line)
        print("\nCtrl-C stops it.", flush=True)
        signal.sigwait({signal.SIGINT, signal.SIGTERM})
    finally:
        cluster.stop()


if __name__ == "__main__":
    main()
