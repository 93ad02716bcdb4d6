"""deploy/alertd.env.example and deploy/alertd.service: every variable is a setting alertd reads, the values parse,
and the unit runs commands alertd has."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

from alertd.cli import build_parser
from alertd.settings import Settings

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"


def test_every_variable_of_the_env_example_is_a_setting_and_parses():
    known = set(Settings().as_env())
    lines = (DEPLOY / "alertd.env.example").read_text().splitlines()
    assigned = dict(line.split("=", 1) for line in lines if line and not line.startswith("#"))
    commented = [m.group(1) for line in lines if (m := re.match(r"#\s*((?:ALERTD|TWILIO)_[A-Z_]+)=", line))]
    assert len(assigned) >= 15
    assert [name for name in [*assigned, *commented] if name not in known] == []
    settings = Settings.from_env(assigned)
    assert settings.mqtt_tls and settings.public_url.startswith("https://")
    assert settings.trusted_proxy_networks and settings.metrics_token
    settings.check_retention()


def test_the_service_unit_runs_commands_alertd_has():
    unit = (DEPLOY / "alertd.service").read_text()
    commands = [shlex.split(value)[1:] for key, value in re.findall(r"^(ExecStartPre|ExecStart)=(.+)$", unit, re.M)]
    assert commands == [["migrate"], ["serve"]]
    parser = build_parser()
    for argv in commands:
        assert parser.parse_args(argv).handler
    assert "EnvironmentFile=/etc/alertd/alertd.env" in unit and "NoNewPrivileges=true" in unit
