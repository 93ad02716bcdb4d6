"""Console sign-in throttles the attacker, not the account: per username and source, progressive, never forever."""

from __future__ import annotations

from alertd.service import officer_accounts
from tests.console_support import PASSWORD, add_officer
from tests.helpers import running_app, seed_responders

ATTACKER, OFFICE, OTHER = "203.0.113.66", "198.51.100.10", "192.0.2.7"


async def _sign_in(client, username: str, source: str, password: str = PASSWORD):
    """A sign-in through the reverse proxy (127.0.0.1, trusted) from `source`."""
    resp = await client.post("/console/api/session", json={"username": username, "password": password},
                             headers={"X-Forwarded-For": source})
    await resp.read()
    return resp


async def _events(db, kind: str, source: str) -> int:
    """Refusals recorded: one row each, or, where refusals are grouped in episodes, what each row counts."""
    grouped = await db.fetchval("SELECT count(*) FROM information_schema.columns "
                                "WHERE table_name = 'security_events' AND column_name = 'refusals'")
    counted = "sum(refusals)" if grouped else "count(*)"
    return await db.fetchval(f"SELECT coalesce({counted}, 0) FROM security_events WHERE kind = $1 AND source = $2",
                             kind, f"console:{source}")


async def test_guessing_throttles_the_guesser_and_never_locks_out_the_officer(settings, clock, db):
    await seed_responders(db)
    await add_officer(db, clock.now(), "duty", "pol-1")
    await add_officer(db, clock.now(), "boss", "pol-2", role="supervisor")
    async with running_app(settings.replace(trusted_proxies="127.0.0.1"), clock) as client:
        answers = [await _sign_in(client, "duty", ATTACKER, f"guess {i}") for i in range(50)]
        assert [a.status for a in answers] == [401] * officer_accounts.FREE_PER_ACCOUNT + [429] * 45
        # Throttled attempts check nothing and count for nothing: the wait did not grow with them.
        assert {a.headers["Retry-After"] for a in answers[officer_accounts.FREE_PER_ACCOUNT:]} == {"30"}
        # Every failure is recorded, checked or throttled.
        assert await _events(db, "bad_sign_in", ATTACKER) == officer_accounts.FREE_PER_ACCOUNT
        assert await _events(db, "sign_in_throttled", ATTACKER) == 45

        # The officer, from her own desk, and another account, even from the guesser's address, sign in.
        assert (await _sign_in(client, "duty", OFFICE)).status == 200
        assert (await _sign_in(client, "boss", ATTACKER)).status == 200
        # A success from one source forgives nothing from another.
        assert (await _sign_in(client, "duty", ATTACKER, "guess 50")).status == 429

        # The wait passes, however many throttled attempts came meanwhile; then each failure doubles it.
        clock.advance(29)
        assert (await _sign_in(client, "duty", ATTACKER, "guess 51")).status == 429
        clock.advance(1)
        assert (await _sign_in(client, "duty", ATTACKER, "guess 52")).status == 401
        again = await _sign_in(client, "duty", ATTACKER, "guess 53")
        assert again.status == 429 and again.headers["Retry-After"] == "60"
        clock.advance(60)
        assert (await _sign_in(client, "duty", ATTACKER)).status == 200


async def test_one_source_guessing_many_accounts_is_throttled_as_a_source(settings, clock, db, monkeypatch):
    monkeypatch.setattr(officer_accounts, "FREE_PER_SOURCE", 8)
    await seed_responders(db)
    await add_officer(db, clock.now(), "duty", "pol-1")
    async with running_app(settings.replace(trusted_proxies="127.0.0.1"), clock) as client:
        for i in range(8):  # one guess each at many usernames stays under the per-account limit
            assert (await _sign_in(client, f"user{i}", ATTACKER, "guess")).status == 401
        spraying = await _sign_in(client, "user9", ATTACKER, "guess")
        assert spraying.status == 429 and spraying.headers["Retry-After"] == "30"
        assert (await _sign_in(client, "duty", ATTACKER)).status == 429
        assert (await _sign_in(client, "duty", OTHER)).status == 200
        clock.advance(officer_accounts.FAILURE_WINDOW.total_seconds())
        assert (await _sign_in(client, "duty", ATTACKER)).status == 200  # old failures stop counting


async def test_without_trusted_proxies_a_forwarded_header_buys_no_fresh_budget(app_client, settings, clock, db):
    await seed_responders(db)
    await add_officer(db, clock.now(), "duty", "pol-1")
    statuses = [(await _sign_in(app_client, "duty", f"198.51.100.{i}", "guess")).status for i in range(7)]
    assert statuses == [401] * officer_accounts.FREE_PER_ACCOUNT + [429] * 2
    assert await _events(db, "sign_in_throttled", "127.0.0.1") == 2
