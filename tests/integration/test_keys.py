"""JWT key rotation: several accepted keys with a key id, one signing; rotating logs nobody out, retiring a key
refuses what it signed, an unknown or mismatched key id is refused."""

from __future__ import annotations

import json
import os
import stat

import jwt
import pytest

from alertd import auth, keys
from alertd.settings import SettingsError
from tests.helpers import bearer, officer_token, running_app
from tests.integration.test_cli import cli_env, run  # noqa: F401 - cli_env is a fixture


def _kid(token: str) -> str | None:
    return jwt.get_unverified_header(token).get("kid")


async def test_rotation_keeps_old_tokens_valid_and_retiring_refuses_them(settings, clock, tmp_path):
    path = tmp_path / "jwt-keys.json"
    legacy = officer_token(settings, "pol-1", clock.now())  # signed with ALERTD_JWT_SECRET, no key id
    assert _kid(legacy) is None

    first, _ = keys.rotate(path)
    rotated = settings.replace(jwt_keys_file=str(path)).validate()
    signed_first = officer_token(rotated, "pol-1", clock.now())
    assert _kid(signed_first) == first
    second, _ = keys.rotate(path)
    rotated = settings.replace(jwt_keys_file=str(path)).validate()
    signed_second = officer_token(rotated, "pol-1", clock.now())
    assert _kid(signed_second) == second != first
    for token in (legacy, signed_first, signed_second):  # nobody is logged out
        assert auth.verify(rotated, token, clock.now()).responder_id == "pol-1"

    keys.retire(path, first)
    retired = settings.replace(jwt_keys_file=str(path)).validate()
    with pytest.raises(auth.TokenError, match="unknown key id"):
        auth.verify(retired, signed_first, clock.now())
    assert auth.verify(retired, signed_second, clock.now()).responder_id == "pol-1"
    with pytest.raises(keys.KeyFileError, match="signs new tokens"):
        keys.retire(path, second)


async def test_a_token_naming_another_key_or_an_unknown_one_is_refused(settings, clock, tmp_path):
    path = tmp_path / "jwt-keys.json"
    first, _ = keys.rotate(path)
    second, ring = keys.rotate(path)
    rotated = settings.replace(jwt_keys_file=str(path)).validate()
    token = officer_token(rotated, "pol-1", clock.now())
    claims = jwt.decode(token, options={"verify_signature": False})
    # signed with the second key but claiming to be the first: the first key does not verify it
    swapped = jwt.encode(claims, ring.keys[second], algorithm="HS256", headers={"kid": first})
    with pytest.raises(auth.TokenError):
        auth.verify(rotated, swapped, clock.now())
    unknown = jwt.encode(claims, ring.keys[second], algorithm="HS256", headers={"kid": "k-nobody"})
    with pytest.raises(auth.TokenError, match="unknown key id"):
        auth.verify(rotated, unknown, clock.now())
    # the service answers 401 to it, and the token signed with the current key works
    async with running_app(rotated, clock) as client:
        assert (await client.get("/v1/dispatches", headers=bearer(unknown))).status == 401
        assert (await client.get("/v1/dispatches", headers=bearer(token))).status == 200


def test_a_bad_keys_file_stops_the_start(settings, tmp_path):
    path = tmp_path / "jwt-keys.json"
    path.write_text(json.dumps({"signing": "k-1", "keys": {"k-1": "short"}}))
    with pytest.raises(SettingsError, match="shorter than 32 bytes"):
        settings.replace(jwt_keys_file=str(path)).validate()
    path.write_text(json.dumps({"signing": "k-2", "keys": {"k-1": "x" * 40}}))
    with pytest.raises(SettingsError, match="signing key"):
        settings.replace(jwt_keys_file=str(path)).validate()
    with pytest.raises(SettingsError, match="no keys file"):
        settings.replace(jwt_keys_file=str(tmp_path / "absent.json")).validate()


async def test_keys_commands(cli_env, capsys, tmp_path, monkeypatch):
    path = tmp_path / "jwt-keys.json"
    monkeypatch.setenv("ALERTD_JWT_KEYS_FILE", str(path))
    code, out = await run(capsys, "keys", "rotate")
    assert code == 0 and out["signing"] == out["added"] and out["accepted"] == [out["added"]]
    first = out["added"]
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    code, out = await run(capsys, "keys", "rotate", "--accept-only")
    assert code == 0 and out["signing"] == first and sorted(out["accepted"]) == sorted([first, out["added"]])
    second = out["added"]
    code, out = await run(capsys, "keys", "use", second)
    assert code == 0 and out["signing"] == second
    code, out = await run(capsys, "keys", "list")
    assert code == 0 and out["signing"] == second
    assert json.loads(path.read_text())["keys"][first] not in json.dumps(out)  # never the secrets
    code, out = await run(capsys, "keys", "retire", second)
    assert code == 2 and "signs new tokens" in out["error"]["message"]
    code, out = await run(capsys, "keys", "retire", first)
    assert code == 0 and out["accepted"] == [second]
