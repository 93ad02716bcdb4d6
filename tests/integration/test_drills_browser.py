"""The drills page in Debian's chromium (Playwright) against a real alertd: a supervisor starts a drill at a point,
its dispatch card says DRILL first, the report follows the acknowledgement, the supervisor ends it; an officer has
no drills page."""

from __future__ import annotations

import re

import pytest
from playwright.async_api import expect

from tests.console_support import add_officer
from tests.helpers import offset
from tests.integration.test_console_browser import browser, console, live, shot  # noqa: F401  (fixtures)

pytestmark = pytest.mark.browser


async def test_a_supervisor_runs_a_drill_from_the_console(live, console, settings, clock, db):
    await add_officer(db, clock.now(), "sup1", "pol-1", role="supervisor")
    await add_officer(db, clock.now(), "cc1", "cc-1")
    page = await console("sup1")
    await expect(page.locator("#nav-drills")).to_be_visible()
    await page.click("#nav-drills")
    await expect(page.locator("#drills-title")).to_be_focused()
    await expect(page.locator("#drill-empty")).to_be_visible()

    # a point given badly is refused before anything is sent
    await page.fill("#drill-lat", "fifty")
    await page.click("#drill-start")
    await expect(page.locator("#drill-error")).to_contain_text("latitude and a longitude")
    lat, lon = offset(0.5)
    await page.fill("#drill-lat", f"{lat:.5f}")
    await page.fill("#drill-lon", f"{lon:.5f}")
    await page.click("#drill-start")
    await expect(page).to_have_url(re.compile(r"#/drill/[0-9a-f-]{36}$"))
    rows = page.locator("#drill-lines tbody tr")
    await expect(rows).to_have_count(3)
    await expect(page.locator("#drill-summary .drill-state")).to_have_text("running")
    await expect(page.locator("#drill-end")).to_be_visible()
    await expect(page.locator("#drill-list li.is-drill")).to_have_count(1)
    drill_id = page.url.rsplit("/", 1)[1]
    assert await db.fetchval("SELECT count(*) FROM drills WHERE id::text = $1", drill_id) == 1

    # her dispatch card (the supervisor's responder, pol-1, is dispatched too) says DRILL first
    await page.click("#nav-dispatches")
    card = page.locator(".card.is-drill[data-status=pending]")
    await expect(card).to_be_visible()
    await expect(card.locator(".card-head .badge").first).to_have_text("DRILL")
    await expect(page.locator("#alarm-text")).to_contain_text("DRILL · ")
    label = await card.evaluate("c => c.getAttribute('aria-labelledby').split(' ').map(id => "
                                "document.getElementById(id).textContent).join(' ')")
    assert label.startswith("DRILL")
    clock.advance(12)
    await card.locator(".act-ack").click()
    await expect(page.locator(".card.is-drill[data-status=acknowledged]")).to_be_visible()

    # the report follows: pol-1 acknowledged in 12 s of 60
    await page.goto(page.url.split("#")[0] + f"#/drill/{drill_id}")
    pol = page.locator('#drill-lines tbody tr[data-responder="pol-1"]')
    await expect(pol).to_have_attribute("data-outcome", "within_deadline")
    await expect(pol.locator(".to-ack")).to_have_text("12 s")
    await expect(page.locator("#drill-summary .share-deadline")).to_contain_text("100%")
    assert "null" not in await page.locator("#drill-summary").text_content()
    await shot(page, "console-drills.png")

    # its alert view says DRILL too, and names no person (a drill has none)
    await page.click("#drill-summary a")
    await expect(page.locator("#alert-title")).to_have_text(re.compile(r"^DRILL: Alert "))
    await expect(page.locator("#alert-summary .badge.drill")).to_have_text("DRILL")
    summary = await page.locator("#alert-summary").text_content()
    assert "null" not in summary and "Person" not in summary
    await page.go_back()
    await expect(page.locator("#drill-summary .drill-state")).to_have_text("running")

    await page.click("#drill-end")
    await expect(page.locator("#drill-summary .drill-state")).to_have_text("ended")
    await expect(page.locator("#drill-end")).to_be_hidden()
    assert await db.fetchval("SELECT ended_by FROM drills WHERE id::text = $1", drill_id) == "supervisor:sup1"
    await expect(page.locator("#drill-list li.ended")).to_have_count(1)

    # in Russian and Kazakh: the marker in the reader's language
    await page.select_option("#lang", "ru")
    await expect(page.locator("#drill-list .badge.drill")).to_have_text("УЧЕНИЯ")
    await page.select_option("#lang", "kk")
    await expect(page.locator("#drill-list .badge.drill")).to_have_text("ЖАТТЫҒУ")
    assert await page.evaluate("document.documentElement.scrollWidth") <= 1280

    # an officer has no drills page, and a typed-in address shows the dispatches instead
    officer = await console("cc1")
    await expect(officer.locator("#nav-drills")).to_be_hidden()
    await officer.goto(officer.url.split("#")[0] + "#/drills")
    await expect(officer.locator("#dispatches")).to_be_visible()
    await expect(officer.locator("#drills-view")).to_be_hidden()
