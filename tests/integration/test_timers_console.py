"""The console names the channel of an alert a check-in timer raised, in each of its languages."""

from __future__ import annotations

import aiohttp
import pytest
from playwright.async_api import expect

from alertd.web.keys import ENGINE
from tests.console_support import add_officer
from tests.helpers import bearer, device_token, enrol, fix, offset
from tests.integration.test_console_browser import browser, console, live, url  # noqa: F401  (fixtures)

pytestmark = pytest.mark.browser


async def test_an_expired_timers_alert_shows_channel_timer(live, console, settings, clock, db):
    await add_officer(db, clock.now(), "boss", "pol-3", role="supervisor", language="ru")
    person = await enrol(db, clock.now())
    async with aiohttp.ClientSession() as http:
        resp = await http.post(f"{url(live)}/v1/timers", headers=bearer(device_token(settings, person, clock.now())),
                               json={"client_timer_id": "t", "duration_s": 600, "location": fix(*offset(0.5))})
        assert resp.status == 201
    clock.advance(600)
    await live.app[ENGINE].run_once(only={"timers"})
    alert_id = await db.fetchval("SELECT alert_id FROM timers")
    page = await console("boss")
    await page.goto(f"{url(live)}/console/#/alert/{alert_id}")
    channel = page.locator("#alert-summary dd").nth(3)
    await expect(channel).to_have_text("Таймер отметки")
    for language, word in (("kk", "Белгі таймері"), ("en", "Check-in timer")):
        await page.select_option("#lang", language)
        await expect(channel).to_have_text(word)
