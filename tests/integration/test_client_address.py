"""The client address behind trusted reverse proxies (ALERTD_TRUSTED_PROXIES), and only behind them."""

from __future__ import annotations

import pytest

from alertd.settings import Settings, SettingsError
from tests.helpers import bearer, running_app


async def _source_of_refusal(client, db, clock, forwarded: list[str]) -> str:
    """The source a refused request (a bad token) is recorded under, sent with these X-Forwarded-For headers."""
    clock.advance(60)  # a minute after the last one: its own episode, so its own security event
    headers = [("X-Forwarded-For", value) for value in forwarded]
    resp = await client.get("/v1/dispatches", headers=[*bearer("not-a-token").items(), *headers])
    assert resp.status == 401
    return await db.fetchval("SELECT source FROM security_events ORDER BY id DESC LIMIT 1")


CASES = [
    ("", ["203.0.113.9"], "127.0.0.1"),  # no trusted proxy: the header is anyone's to write
    ("10.0.0.0/8", ["203.0.113.9"], "127.0.0.1"),  # the peer is not a trusted proxy
    ("127.0.0.1", [], "127.0.0.1"),  # a trusted proxy that forwarded nothing
    ("127.0.0.1", ["203.0.113.9"], "203.0.113.9"),
    ("127.0.0.1", ["198.51.100.7, 203.0.113.9"], "203.0.113.9"),  # a forged first hop is not believed
    ("127.0.0.1, 10.0.0.0/8", ["198.51.100.7, 10.1.2.3"], "198.51.100.7"),  # a chain of trusted proxies
    ("127.0.0.1, 10.0.0.0/8", ["198.51.100.7", "10.1.2.3"], "198.51.100.7"),  # the header repeated
    ("127.0.0.1", ["203.0.113.9, not-an-address"], "127.0.0.1"),  # a malformed hop: no further than the proxy
    ("127.0.0.0/8, ::1", ["2001:db8::5"], "2001:db8::5"),
]


async def test_source_is_the_nearest_untrusted_hop(settings, clock, db):
    for trusted in dict.fromkeys(trusted for trusted, _, _ in CASES):
        async with running_app(settings.replace(trusted_proxies=trusted), clock) as client:
            for forwarded, source in [(f, s) for t, f, s in CASES if t == trusted]:
                assert await _source_of_refusal(client, db, clock, forwarded) == f"http:{source}", (trusted, forwarded)


def test_trusted_proxies_are_checked_at_start():
    assert Settings.from_env({"ALERTD_TRUSTED_PROXIES": " 10.0.0.1, 192.168.0.0/16 ,::1"}).trusted_proxy_networks
    assert Settings().trusted_proxy_networks == ()
    with pytest.raises(SettingsError, match="ALERTD_TRUSTED_PROXIES"):
        Settings(jwt_secret="k" * 64, trusted_proxies="10.0.0.0/8, proxy.local").validate()
