"""auth.verify remembers a token that passed: only while it would pass again, and never one that failed."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import jwt
import pytest

from alertd import auth
from alertd.settings import Settings

SETTINGS = Settings(database_url="postgresql://unused/x", jwt_secret="cache-secret-" + "x" * 40)
NOW = datetime.now(UTC).replace(microsecond=0)


def device_token(settings: Settings = SETTINGS, ttl_s: int = 600, now: datetime = NOW) -> str:
    return auth.issue(settings, role="device", sub="D-1", ttl_s=ttl_s, now=now, person_id="P-1", device_id="D-1")


def checks(monkeypatch) -> list[str]:
    """Count the full checks (pyjwt decodes) verify makes."""
    seen: list[str] = []
    real = auth._verify

    def counting(settings, token, now, **kw):
        seen.append(token)
        return real(settings, token, now, **kw)

    monkeypatch.setattr(auth, "_verify", counting)
    return seen


def test_a_token_that_passed_is_checked_once(monkeypatch):
    seen = checks(monkeypatch)
    token = device_token()
    first = auth.verify(SETTINGS, token, NOW)
    again = auth.verify(SETTINGS, token, NOW + timedelta(seconds=5), allow_expired_device=True)
    assert again == first and again.device_id == "D-1" and not again.expired
    assert seen == [token]


def test_at_its_exp_it_is_checked_again_and_refused(monkeypatch):
    seen = checks(monkeypatch)
    token = device_token(ttl_s=60)
    auth.verify(SETTINGS, token, NOW)
    with pytest.raises(auth.TokenError, match="expired"):
        auth.verify(SETTINGS, token, NOW + timedelta(seconds=60))
    stale = auth.verify(SETTINGS, token, NOW + timedelta(seconds=61), allow_expired_device=True)
    assert stale.expired
    assert len(seen) == 3  # an expired token is never remembered


def test_other_keys_or_a_clock_gone_back_check_it_again(monkeypatch):
    seen = checks(monkeypatch)
    token = device_token()
    auth.verify(SETTINGS, token, NOW)
    rotated = SETTINGS.replace(jwt_secret="another-secret-" + "y" * 40)
    with pytest.raises(auth.TokenError):
        auth.verify(rotated, token, NOW)
    with pytest.raises(auth.TokenError):  # iat is now 40 s ahead of the clock: past the leeway
        auth.verify(SETTINGS, token, NOW - timedelta(seconds=auth.LEEWAY_S + 10))
    assert len(seen) == 3


def test_a_forged_token_is_never_remembered(monkeypatch):
    seen = checks(monkeypatch)
    token = device_token()
    header, body, signature = token.split(".")
    forged = f"{header}.{body}.{signature[:-4]}AAAA"
    for _ in range(2):
        with pytest.raises(auth.TokenError):
            auth.verify(SETTINGS, forged, NOW)
    claims = jwt.decode(token, options={"verify_signature": False})
    unsigned = jwt.encode({**claims, "role": "admin"}, "not-the-secret-" + "z" * 40, algorithm="HS256")
    with pytest.raises(auth.TokenError):
        auth.verify(SETTINGS, unsigned, NOW)
    assert seen == [forged, forged, unsigned]


def _ring(tmp_path, kid: str, secret: str) -> Settings:
    path = tmp_path / "keys.json"
    path.write_text(json.dumps({"signing": kid, "keys": {kid: secret}}))
    return SETTINGS.replace(jwt_keys_file=str(path)).validate()


def test_a_headers_key_is_looked_up_once_and_the_signature_still_checked_every_time(monkeypatch, tmp_path):
    """Every token signed with one key has the same header: its key is read from the header once. What a token
    claims under that header is still checked against the signature, token by token."""
    ring = _ring(tmp_path, "k1", "ring-secret-" + "z" * 40)
    lookups: list[str] = []
    real = auth._key_named
    monkeypatch.setattr(auth, "_key_named", lambda settings, token: lookups.append(token) or real(settings, token))
    tokens = [auth.issue(ring, role="device", sub=f"D-{i}", ttl_s=600, now=NOW, person_id=f"P-{i}",
                         device_id=f"D-{i}") for i in range(3)]
    assert len({t.split(".")[0] for t in tokens}) == 1
    assert [auth.verify(ring, t, NOW).device_id for t in tokens] == ["D-0", "D-1", "D-2"]
    assert lookups == tokens[:1]
    header, _, signature = tokens[0].split(".")
    _, body, _ = tokens[1].split(".")
    with pytest.raises(auth.TokenError):  # a known header, another token's claims: the signature does not match
        auth.verify(ring, f"{header}.{body}.{signature}", NOW)
    other = _ring(tmp_path, "k1", "rotated-secret-" + "w" * 40)  # the same key id, another key: looked up again
    with pytest.raises(auth.TokenError):
        auth.verify(other, device_token(ring), NOW)
    assert len(lookups) == 2


def test_a_header_naming_an_unknown_key_is_refused_every_time(monkeypatch, tmp_path):
    ring = _ring(tmp_path, "k1", "ring-secret-" + "z" * 40)
    stranger = jwt.encode({"sub": "x"}, "some-other-secret-" + "q" * 40, algorithm="HS256", headers={"kid": "k9"})
    for _ in range(2):
        with pytest.raises(auth.TokenError, match="unknown key id"):
            auth.verify(ring, stranger, NOW)
    assert stranger.split(".")[0] not in auth._KEYS
