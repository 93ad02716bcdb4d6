"""Throwaway PostgreSQL+PostGIS and Mosquitto servers in a folder, on free ports (tests and `alertd demo`)."""

from __future__ import annotations

import os
import pwd
import random
import shutil
import socket
import subprocess
import time
from pathlib import Path

from alertd.mqtt.dynsec import Account, Dynsec


class ServiceError(RuntimeError):
    """A local server could not be found or started."""


# Ports handed out pick from below Linux's ephemeral range (32768-60999), where the kernel takes the local ports
# of outgoing connections: a port picked there could be taken by any client socket (a database connection of the
# tests, say) before the server meant for it binds it, and that server would then fail to start.
PORT_RANGE = range(20000, 32000)
_handed_out: set[int] = set()


def _bindable(port: int) -> bool:
    with socket.socket() as s:
        # As the servers bind (PostgreSQL, Mosquitto and aiohttp set SO_REUSEADDR): a port whose last server has
        # just stopped is free for them while its connections sit in TIME_WAIT, and a listened-on port is still not.
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_port(preferred: int | None = None) -> int:
    """The preferred port if it is free, else a free one from PORT_RANGE; never the same port twice in a process
    (two servers started one after the other must not be given one port)."""
    candidates = [preferred] if preferred is not None else []
    candidates += random.sample(PORT_RANGE, 200)
    for port in candidates:
        if port not in _handed_out and _bindable(port):
            _handed_out.add(port)
            return port
    raise ServiceError(f"no free port in {PORT_RANGE.start}-{PORT_RANGE.stop - 1}")


def wait_port(port: int, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise ServiceError(f"nothing answered on port {port} within {timeout}s")


def postgres_bindir() -> Path:
    """The bin folder of an installed PostgreSQL that has PostGIS."""
    root = Path("/usr/lib/postgresql")
    versions = sorted((p for p in root.glob("*") if p.name.isdigit()), key=lambda p: int(p.name), reverse=True)
    for v in versions:
        if Path(f"/usr/share/postgresql/{v.name}/extension/postgis.control").exists():
            return v / "bin"
    raise ServiceError(
        "no PostgreSQL with PostGIS found: run scripts/setup.sh (installs postgresql-15-postgis-3)"
    )


class LocalPostgres:
    """A PostgreSQL cluster in `directory`; as root it runs as the postgres user (PostgreSQL refuses root)."""

    def __init__(self, directory: Path, port: int | None = None, *, durable: bool = True, options: str = "") -> None:
        """`options` are more `-c name=value` server settings, after (so over) the usual ones."""
        self.directory = Path(directory)
        self.port = port or free_port()
        self.durable = durable
        self.options = options
        self.bindir = postgres_bindir()
        self.datadir = self.directory / "pgdata"
        self.user = "postgres"

    @property
    def run_as(self) -> list[str]:
        return ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []

    def dsn(self, database: str = "postgres") -> str:
        return f"postgresql://{self.user}@127.0.0.1:{self.port}/{database}"

    def _chown(self) -> None:
        if os.geteuid() == 0:
            pw = pwd.getpwnam("postgres")
            for path in [self.directory, *self.directory.rglob("*")]:
                os.chown(path, pw.pw_uid, pw.pw_gid)

    def start(self) -> LocalPostgres:
        self.directory.mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:
            # runuser needs every parent to be traversable by postgres
            for parent in self.directory.resolve().parents:
                if parent != Path("/"):
                    mode = parent.stat().st_mode
                    if not mode & 0o001:
                        os.chmod(parent, mode | 0o001)
        self._chown()
        if not (self.datadir / "PG_VERSION").exists():
            subprocess.run(
                [*self.run_as, str(self.bindir / "initdb"), "-D", str(self.datadir), "-U", self.user,
                 "--auth=trust", "--encoding=UTF8", "--locale=C.UTF-8", "--no-instructions"],
                check=True, capture_output=True,
            )
        options = f"-p {self.port} -k {self.directory} -c listen_addresses=127.0.0.1 -c max_connections=200"
        if not self.durable:
            options += " -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        if self.options:
            options += " " + self.options
        subprocess.run(
            [*self.run_as, str(self.bindir / "pg_ctl"), "-D", str(self.datadir), "-o", options,
             "-l", str(self.directory / "postgres.log"), "-w", "-t", "30", "start"],
            check=True, capture_output=True,
        )
        return self

    def standby(self, directory: Path, port: int | None = None) -> LocalPostgres:
        """A streaming standby of this running cluster in `directory` (pg_basebackup -R), not yet started."""
        replica = LocalPostgres(directory, port, durable=self.durable, options=self.options)
        replica.directory.mkdir(parents=True, exist_ok=True)
        replica._chown()
        done = subprocess.run(
            [*self.run_as, str(self.bindir / "pg_basebackup"), "-h", "127.0.0.1", "-p", str(self.port), "-U",
             self.user, "-D", str(replica.datadir), "-R", "-X", "stream", "-c", "fast",
             *([] if self.durable else ["--no-sync"])],
            capture_output=True, text=True,
        )
        if done.returncode != 0:
            raise ServiceError(f"pg_basebackup failed: {done.stderr.strip()}")
        return replica

    def promote(self) -> None:
        """Make this standby a primary (what Patroni does on failover), once it is one."""
        done = subprocess.run([*self.run_as, str(self.bindir / "pg_ctl"), "-D", str(self.datadir), "-w", "promote"],
                              capture_output=True, text=True)
        if done.returncode != 0:
            raise ServiceError(f"pg_ctl promote failed: {done.stderr.strip()}")

    def stop(self, mode: str = "fast") -> None:
        if (self.datadir / "postmaster.pid").exists():
            subprocess.run(
                [*self.run_as, str(self.bindir / "pg_ctl"), "-D", str(self.datadir), "-m", mode, "-w", "stop"],
                capture_output=True,
            )


def dynsec_plugin() -> Path:
    """Mosquitto's dynamic-security plugin (Debian's mosquitto package ships it)."""
    for lib in (Path("/usr/lib/x86_64-linux-gnu"), Path("/usr/lib/aarch64-linux-gnu"), Path("/usr/lib")):
        if (lib / "mosquitto_dynamic_security.so").exists():
            return lib / "mosquitto_dynamic_security.so"
    raise ServiceError("mosquitto_dynamic_security.so not found: run scripts/setup.sh (installs mosquitto)")


class LocalMosquitto:
    """A Mosquitto broker in `directory` with a generated config; `extra_config` lines are appended."""

    def __init__(self, directory: Path, port: int | None = None, extra_config: str = "",
                 dynsec_admin: tuple[str, str] | None = None, service: tuple[str, str] | None = None) -> None:
        """dynsec_admin (username, password) loads the dynamic-security plugin with that admin account and
        refuses anonymous clients, and `service` (username, password) is then alertd's own account, made at each
        start: the broker is secured as in production. Without dynsec_admin the broker is open (benchmarks)."""
        self.directory = Path(directory)
        self.port = port or free_port()
        self.extra_config = extra_config
        self.dynsec_admin = dynsec_admin
        self.service = service
        if service and not dynsec_admin:
            raise ServiceError("a service account needs the dynamic-security admin account to make it")
        if dynsec_admin:
            self.extra_config += (f"\nplugin {dynsec_plugin()}\n"
                                  f"plugin_opt_config_file {self.directory / 'dynamic-security.json'}\n"
                                  f"allow_anonymous false\n")
        self.process: subprocess.Popen | None = None
        binary = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
        if not Path(binary).exists():
            raise ServiceError("mosquitto not found: run scripts/setup.sh (installs mosquitto)")
        self.binary = binary

    @property
    def url(self) -> str:
        return f"mqtt://127.0.0.1:{self.port}"

    def user_url(self, username: str, password: str) -> str:
        return f"mqtt://{username}:{password}@127.0.0.1:{self.port}"

    def _init_dynsec(self) -> None:
        config = self.directory / "dynamic-security.json"
        if self.dynsec_admin and not config.exists():
            ctrl = shutil.which("mosquitto_ctrl") or "/usr/bin/mosquitto_ctrl"
            subprocess.run([ctrl, "dynsec", "init", str(config), *self.dynsec_admin], check=True,
                           capture_output=True)

    def write_config(self) -> Path:
        self.directory.mkdir(parents=True, exist_ok=True)
        conf = self.directory / "mosquitto.conf"
        conf.write_text(
            f"listener {self.port} 127.0.0.1\n"
            f"persistence true\n"
            f"persistence_location {self.directory}/\n"
            f"autosave_interval 1\n"
            f"max_queued_messages 100000\n"
            f"log_dest file {self.directory}/mosquitto.log\n"
            f"{self.extra_config}\n"
        )
        if "allow_anonymous" not in self.extra_config:
            # Mosquitto 2 refuses everyone on an explicit listener unless told; a secured broker sets its own.
            with conf.open("a") as f:
                f.write("allow_anonymous true\n")
        if os.geteuid() == 0:
            # mosquitto drops root privileges to the mosquitto user unless told otherwise
            with conf.open("a") as f:
                f.write("user root\n")
        return conf

    def start(self) -> LocalMosquitto:
        conf = self.write_config()
        self._init_dynsec()
        self.process = subprocess.Popen(
            [self.binary, "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        wait_port(self.port)
        if self.dynsec_admin and self.service:
            Dynsec(self.user_url(*self.dynsec_admin)).replace_now([Account.service(*self.service)])
        return self

    @property
    def service_url(self) -> str:
        """ALERTD_MQTT_URL for alertd on this broker (its own account when secured)."""
        return self.user_url(*self.service) if self.service else self.url

    @property
    def admin_url(self) -> str:
        """ALERTD_MQTT_ADMIN_URL: provisioning tells the broker through it; empty when the broker is open."""
        return self.user_url(*self.dynsec_admin) if self.dynsec_admin else ""

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None
