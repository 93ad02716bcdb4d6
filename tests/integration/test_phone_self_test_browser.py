"""The phone app's self-test in Debian's chromium: "Check connection" in the calculator's menu proves the app reaches
alertd (recorded, nothing dispatched) and says so in neutral words; with no network it says the check failed."""

from __future__ import annotations

import pytest

from tests.integration.test_phone_app_browser import (  # noqa: F401 (fixtures)
    browser,
    enrol_phone,
    page,
    served,
    tap,
    visible_texts,
)

pytestmark = pytest.mark.browser


async def test_check_connection_in_the_menu_proves_the_app_works_and_raises_nothing(page, served, db):
    await page.click("#menu-btn")
    assert "Проверить связь" not in await visible_texts(page, "#menu button")  # not before enrolment
    await page.click("#menu-btn")
    person = await enrol_phone(page, db, served)
    await page.click("#menu-btn")
    await page.click("#check")
    result = page.locator("#check-result")
    await result.filter(has_text="Связь в порядке").wait_for(timeout=10_000)
    assert await result.get_attribute("data-state") == "ok" and await result.get_attribute("role") == "status"
    [call] = served.posts("/v1/tests")
    assert call.status == 201
    rows = await db.fetch("SELECT person_id, channel FROM channel_tests")
    assert [(r["person_id"], r["channel"]) for r in rows] == [(person.person_id, "app")]
    assert await db.fetchval("SELECT count(*) FROM alerts") == 0
    assert await page.is_hidden("#cue")  # nothing on the calculator face changed

    # another language, and no network: the check says it failed, and nothing is queued for later
    await page.click("[data-lang=en]")
    await page.context.set_offline(True)
    await page.click("#menu-btn")
    assert await page.text_content("#check") == "Check connection"
    await page.click("#check")
    await result.filter(has_text="Check failed").wait_for(timeout=20_000)
    assert await page.evaluate("CalcStore.pending()") == 0
    await page.context.set_offline(False)
    await tap(page, "C")  # quick exit closes the menu and its result
    assert await page.is_hidden("#menu")
