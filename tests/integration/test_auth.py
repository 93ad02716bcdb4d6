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


def _signed(**over) -> str:
    return jwt.encode(_claims(**over), "k" * 64, algorithm="HS256")


DAY = 86400


@pytest.mark.parametrize(("token", "why"), [
    (_signed(exp="NaN"), "must be an integer"),
    (_signed(exp="abc"), "must be an integer"),
    (jwt.encode(_claims(exp=float("nan")), "k" * 64, algorithm="HS256"), "must be an integer"),
    (_signed(iat="yesterday"), "must be an integer"),
    (_signed(nbf=int(NOW.timestamp()) + DAY), "not yet valid"),
    (_signed(iat=int(NOW.timestamp()) + 3650 * DAY), "not yet valid"),
    (_signed(role=None), "role"),
    (_signed(responder_id=None), "needs responder_id"),
    (_signed(responder_id=""), "needs responder_id"),
    (_signed(responder_id=7), "needs responder_id"),
    (_signed(role="supervisor", responder_id=None), "needs responder_id"),
    (_signed(role="device", responder_id=None, device_id="d"), "needs person_id"),
    (_signed(role="officer", sid=["x"]), "must be strings"),
])
def test_hostile_claims_refused_with_the_reason(token, why):
    with pytest.raises(auth.TokenError, match=why):
        auth.verify(S, token, NOW, allow_expired_device=True)


def test_time_claims_follow_the_injected_clock_with_a_small_leeway():
    """iat and nbf may be a little ahead of the clock (skew between instances), never more; expiry has no leeway."""
    assert auth.verify(S, _signed(iat=int(NOW.timestamp()) + auth.LEEWAY_S), NOW).sub == "x"
    assert auth.verify(S, _signed(nbf=int(NOW.timestamp()) + auth.LEEWAY_S), NOW).sub == "x"
    with pytest.raises(auth.TokenError, match="not yet valid"):
        auth.verify(S, _signed(nbf=int(NOW.timestamp()) + auth.LEEWAY_S + 2), NOW)
    exp = int(NOW.timestamp()) + 10
    assert not auth.verify(S, _signed(exp=exp), NOW + timedelta(seconds=9)).expired
    with pytest.raises(auth.TokenError, match="expired"):
        auth.verify(S, _signed(exp=exp), NOW + timedelta(seconds=10))
    # Years away from the system clock, both ways: only the injected clock decides.
    for now in (NOW - timedelta(days=3650), NOW + timedelta(days=3650)):
        token = auth.issue(S, role="officer", sub="o", ttl_s=60, now=now, responder_id="p")
        assert auth.verify(S, token, now + timedelta(seconds=59)).responder_id == "p"
        with pytest.raises(auth.TokenError, match="expired"):
            auth.verify(S, token, now + timedelta(seconds=60))


def test_role_tokens_without_their_claims_are_not_issued():
    with pytest.raises(ValueError, match="responder_id"):
        auth.issue(S, role="officer", sub="o", ttl_s=60, now=NOW)
    with pytest.raises(ValueError, match="person_id, device_id"):
        auth.issue(S, role="device", sub="d", ttl_s=60, now=NOW)
    assert auth.verify(S, auth.issue(S, role="admin", sub="a", ttl_s=60, now=NOW), NOW).role == "admin"


async def test_hostile_tokens_get_401_and_a_security_event(app_client, settings, clock, db):
    """Over HTTP: a malformed exp is a 401 (never a 500), an unscoped officer token acts for nobody; each refusal
    is recorded with its reason."""
    from tests.helpers import bearer, device_token, enrol, fix, offset, seed_responders

    await seed_responders(db)
    person = await enrol(db, clock.now())
    raised = await app_client.post("/v1/alerts", json={"client_alert_id": "a", "location": fix(*offset(1))},
                                   headers=bearer(device_token(settings, person, clock.now())))
    alert_id = (await raised.json())["alert_id"]
    dispatch_id = await db.fetchval("SELECT id FROM dispatches WHERE kind = 'police_post'")

    def signed(**over):
        claims = {"iss": settings.jwt_issuer, "aud": settings.jwt_audience, "sub": "o", "role": "officer",
                  "iat": int(clock.now().timestamp()), "exp": int(clock.now().timestamp()) + 600,
                  "responder_id": "pol-1", **over}
        return jwt.encode({k: v for k, v in claims.items() if v is not None}, settings.jwt_secret, algorithm="HS256")

    cases = [
        ("GET", f"/v1/alerts/{alert_id}", signed(exp="abc"), "must be an integer"),
        ("GET", f"/v1/alerts/{alert_id}", signed(exp="NaN"), "must be an integer"),
        ("GET", f"/v1/alerts/{alert_id}", signed(nbf=int(clock.now().timestamp()) + DAY), "not yet valid"),
        ("GET", f"/v1/alerts/{alert_id}", signed(iat=int(clock.now().timestamp()) + 3650 * DAY), "not yet valid"),
        ("GET", f"/v1/alerts/{alert_id}", signed(responder_id=None), "needs responder_id"),
        ("POST", f"/v1/dispatches/{dispatch_id}/ack", signed(responder_id=None), "needs responder_id"),
    ]
    for method, path, token, why in cases:
        clock.advance(60)  # a minute apart: each refusal is an episode of its own, recorded with its reason
        resp = await app_client.request(method, path, headers=bearer(token))
        body = await resp.json()
        assert resp.status == 401, (path, body)
        assert body["error"]["code"] == "unauthorized" and why in body["error"]["message"]
    events = await db.fetch("SELECT detail FROM security_events WHERE kind = 'bad_token' ORDER BY id")
    assert [why in e["detail"]["reason"] for e, (*_, why) in zip(events, cases, strict=True)] == [True] * len(cases)
    assert await db.fetchval("SELECT count(*) FROM dispatches WHERE status = 'acknowledged'") == 0
    assert await db.fetchval("SELECT count(*) FROM audit_log") == 0
