"""`alertd demo`'s broker secured as in production: its admin and service logins, and an account and role of its
own for the sample button and every mobile-unit terminal, all kept in the data folder (mode 0600)."""

from __future__ import annotations

import json
import secrets
from pathlib import Path

from alertd.clock import SystemClock
from alertd.mqtt.dynsec import Account, Dynsec, NoBroker
from alertd.service import provisioning
from alertd.settings import Settings
from alertd.store import queries
from alertd.store.db import connect

LOGINS = "broker_logins.json"
UNITS = "unit_terminals.json"
BUTTON = "sample_button.json"


def _write_private(path: Path, value) -> None:
    path.write_text(json.dumps(value))
    path.chmod(0o600)


def broker_logins(data_dir: Path, broker_dir: Path) -> tuple[tuple[str, str], tuple[str, str]]:
    """The dynamic-security admin and alertd's own account, (username, password) each; made once, kept."""
    path = data_dir / LOGINS
    if not path.exists():
        # a plugin state made with an admin password nobody has any more (or by a demo whose broker was open)
        (broker_dir / "dynamic-security.json").unlink(missing_ok=True)
        _write_private(path, {"admin": ["admin", secrets.token_urlsafe(24)],
                              "service": ["alertd", secrets.token_urlsafe(24)]})
    logins = json.loads(path.read_text())
    return tuple(logins["admin"]), tuple(logins["service"])


async def unit_terminals(settings: Settings, data_dir: Path) -> list[dict]:
    """Terminal credentials for every mobile unit of the sample region (made once, kept)."""
    path = data_dir / UNITS
    if not path.exists():
        conn = await connect(settings.database_url)
        try:
            now = SystemClock().now()
            # Database rows only here: `sync_broker` gives the broker all the accounts in one batch next.
            terminals = [(await provisioning.provision_unit(conn, NoBroker(), now, row["id"])).as_json()
                         for row in await conn.fetch(queries.list_mobile_units)]
        finally:
            await conn.close()
        _write_private(path, terminals)
    host_port = settings.mqtt_url.split("://", 1)[1].rsplit("@", 1)[-1]
    return [{"unit_id": t["device_id"], **t, "url": f"mqtt://{t['username']}:{t['password']}@{host_port}"}
            for t in json.loads(path.read_text())]


async def sync_broker(admin_url: str, data_dir: Path) -> None:
    """Give the broker the account and role of each device the data folder holds credentials for, at every start
    (so a data folder from before the broker was secured, or a lost plugin state, still works)."""
    accounts = []
    if (data_dir / BUTTON).exists():
        button = json.loads((data_dir / BUTTON).read_text())
        accounts.append(Account.button(button["username"], button["password"]))
    if (data_dir / UNITS).exists():
        accounts += [Account.unit(t["username"], t["password"]) for t in json.loads((data_dir / UNITS).read_text())]
    await Dynsec(admin_url).replace(accounts)
