"""Tokens: one pinned algorithm, required claims, issuer and audience, expiry by the injected clock."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import jwt
import pytest

from alertd import auth
from alertd.settings import Settings, SettingsError

S = Settings(jwt_secret="k" * 64)
NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)


def _claims(**over):
    base = {"iss": "alertd", "aud": "alertd", "sub": "x", "role": "officer", "iat": int(NOW.timestamp()),
            "exp": int((NOW + timedelta(hours=1)).timestamp()), "responder_id": "pol-1"}
    base.update(over)
    return {k: v for k, v in base.items() if v is not None}


def test_round_trip():
    token = auth.issue(S, role="officer", sub="o1", ttl_s=60, now=NOW, responder_id="pol-1")
    who = auth.verify(S, token, NOW)
    assert (who.role, who.sub, who.responder_id, who.expired) == ("officer", "o1", "pol-1", False)


@pytest.mark.parametrize("token", [
    jwt.encode(_claims(), "k" * 64, algorithm="HS512"),
    jwt.encode(_claims(), None, algorithm="none"),
    jwt.encode(_claims(), "z" * 64, algorithm="HS256"),
    jwt.encode(_claims(aud="someone-else"), "k" * 64, algorithm="HS256"),
    jwt.encode(_claims(iss="evil"), "k" * 64, algorithm="HS256"),
    jwt.encode(_claims(exp=None), "k" * 64, algorithm="HS256"),
    jwt.encode(_claims(sub=None), "k" * 64, algorithm="HS256"),
    jwt.encode(_claims(role="root"), "k" * 64, algorithm="HS256"),
    "garbage",
])
def test_refused(token):
    with pytest.raises(auth.TokenError):
        auth.verify(S, token, NOW)


def test_expiry_uses_injected_clock_and_only_devices_may_be_stale():
    officer = auth.issue(S, role="officer", sub="o", ttl_s=60, now=NOW, responder_id="p")
    device = auth.issue(S, role="device", sub="d", ttl_s=60, now=NOW, person_id="P", device_id="d")
    later = NOW + timedelta(seconds=61)
    with pytest.raises(auth.TokenError):
        auth.verify(S, officer, later, allow_expired_device=True)
    assert auth.verify(S, device, later, allow_expired_device=True).expired is True
    with pytest.raises(auth.TokenError):
        auth.verify(S, device, later)


def test_short_secret_refused_at_start():
    with pytest.raises(SettingsError):
        Settings(jwt_secret="short").validate()
    with pytest.raises(SettingsError):
        Settings.from_env({"ALERTD_HTTP_PORT": "eighty"})
