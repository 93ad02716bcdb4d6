"""The check-in timer behind the calculator, in Debian's chromium against the real service: started with
`secret × minutes =`, extended with `secret + minutes =`, checked in with `PIN =`; only a calculator's "M" shows."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

from tests.helpers import seed_responders
from tests.integration.test_phone_app_browser import (  # noqa: F401  (fixtures)
    DURESS,
    PIN,
    SECRET,
    browser,
    enrol_phone,
    page,
    served,
    stored,
    tap,
    until,
)

pytestmark = pytest.mark.browser


async def _timer(db):
    return await db.fetchrow("SELECT id, status, started_at, due_at, duress, alert_id, wrong_pins FROM timers "
                             "ORDER BY started_at DESC LIMIT 1")


async def test_start_extend_and_check_in_behind_the_calculator(page, served, db):
    await seed_responders(db)
    await enrol_phone(page, db, served)
    assert await page.is_hidden("#mem")
    await tap(page, "12*45=")  # a product is only a product
    assert await page.text_content("#out") == "540"
    await tap(page, f"{SECRET}+30=")  # no timer runs: the secret in a sum is only a sum
    assert await page.text_content("#out") == str(int(SECRET) + 30)

    await tap(page, f"{SECRET}*45=")
    assert await page.text_content("#out") == str(int(SECRET) * 45)  # the display shows the product
    timer = await until(lambda: _timer(db))
    assert timer["status"] == "running" and timer["due_at"] - timer["started_at"] == timedelta(minutes=45)
    assert await db.fetchval("SELECT count(*) FROM timer_fixes WHERE timer_id = $1", timer["id"]) == 1
    assert await page.is_visible("#mem")
    assert await page.text_content("#display") == "M" + str(int(SECRET) * 45)  # nothing but a memory sign
    assert "timer" not in (await page.content()).lower().replace("settimeout", "").replace("cleartimeout", "")

    await tap(page, f"{SECRET}+15=")
    await until(lambda: db.fetchval("SELECT due_at - started_at = interval '60 minutes' FROM timers"))
    await until(lambda: page.evaluate("CalcStore.pending().then(n => n === 0)"))

    await tap(page, "5555=")  # a wrong PIN: refused, the timer still runs and the M comes back
    assert await page.is_hidden("#mem")
    await page.wait_for_selector("#mem", state="visible")
    assert (await _timer(db))["wrong_pins"] == 1 and (await _timer(db))["status"] == "running"

    await tap(page, PIN + "=")
    assert await page.is_hidden("#mem")  # at once
    await until(lambda: db.fetchval("SELECT status = 'checked_in' FROM timers"))
    await until(lambda: page.evaluate("CalcStore.get('timer').then(t => t === undefined)"))
    assert await page.is_hidden("#mem")
    assert await db.fetchval("SELECT count(*) FROM alerts") == 0
    answer = served.posts(r"/v1/timers/[^/]+/checkin")[-1]
    assert answer.status == 200 and json.loads(answer.body)["status"] == "checked_in"


async def test_duress_check_in_looks_the_same_and_raises_a_duress_alert(page, served, db):
    await seed_responders(db)
    await enrol_phone(page, db, served)
    screens = []
    for pin in (PIN, DURESS):
        await tap(page, f"{SECRET}*30=")
        await until(lambda: db.fetchval("SELECT count(*) FROM timers WHERE status = 'running'"))
        await until(lambda: page.evaluate("CalcStore.pending().then(n => n === 0)"))
        await tap(page, pin + "=")
        await until(lambda: page.evaluate("CalcStore.get('timer').then(t => t === undefined)"))
        screens.append(await page.screenshot(mask=[page.locator("#out")]))
    assert screens[0] == screens[1]
    answers = served.posts(r"/v1/timers/[^/]+/checkin")
    assert [a.status for a in answers] == [200, 200]
    assert [json.loads(a.body)["status"] for a in answers] == ["checked_in", "checked_in"]
    alert = await db.fetchrow("SELECT channel, duress FROM alerts")
    assert dict(alert) == {"channel": "timer", "duress": True}
    assert await stored(page, "alert") is None  # nothing on her phone says an alert is live


async def test_a_timer_started_offline_reaches_the_server_when_the_network_returns(page, served, db):
    await enrol_phone(page, db, served)
    await page.context.set_offline(True)
    await tap(page, f"{SECRET}*20=")
    assert await page.is_visible("#mem")
    await until(lambda: page.evaluate("CalcStore.pending().then(n => n === 1)"))
    await page.context.set_offline(False)
    await until(lambda: db.fetchval("SELECT count(*) FROM timers"))
    await until(lambda: page.evaluate("CalcStore.pending().then(n => n === 0)"))
    assert len(served.posts("/v1/timers")) == 1
