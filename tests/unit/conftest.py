"""Unit tests are pure: no database, broker or browser. Asking for one of the servers' fixtures here fails."""

import pytest

SERVERS = ("db", "pool", "settings", "app_client", "postgres", "workdir", "button_service", "fake_twilio")


def _refuse(name):
    @pytest.fixture
    def fixture():
        raise pytest.UsageError(f"tests/unit is pure: the {name!r} fixture belongs in tests/integration")
    return fixture


for _name in SERVERS:
    globals()[_name] = _refuse(_name)
