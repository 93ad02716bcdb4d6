"""The console in Debian's chromium shows, per person, when each of her channels last proved it works: in a
caseworker's list of the people in her care, in the alert view, and as a notice; in Kazakh, Russian and English."""

from __future__ import annotations

import aiohttp
import pytest
from playwright.async_api import expect

from alertd.channels.buttons import protocol
from alertd.service import buttons
from alertd.web.keys import CTX, POOL
from clients.button import protocol as firmware
from tests.buttons_support import provision_button
from tests.console_support import add_officer, raise_alert
from tests.helpers import device_token, enrol, offset
from tests.integration.test_console_browser import browser, console, live, shot, url  # noqa: F401 (fixtures)

pytestmark = pytest.mark.browser


async def test_a_caseworker_sees_when_each_of_her_channels_last_worked(live, console, settings, clock, db):
    await add_officer(db, clock.now(), "cw", "cc-1")
    person = await enrol(db, clock.now(), home=offset(1), phone="+77015550142")
    button = await provision_button(db, settings, clock, person.person_id, caseworker_id="cc-1")
    page = await console("cw")
    await expect(page.locator("#my-people")).to_be_visible()
    row = page.locator(f"#people-list li[data-person='{person.person_id}']")
    await expect(row.locator("li.never")).to_have_count(3)  # app, button, SMS: none tested yet

    # her test press (the firmware's own message, through the service as the ingest hands it over)
    _topic, payload = firmware.message(button.device_id, button.hmac_secret, "test", 1, int(clock.now().timestamp()))
    receipt = await buttons.receive(live.app[POOL], live.app[CTX], protocol.inbound(button.device_id, "test", payload))
    assert receipt.test and receipt.ack_seq == 1 and receipt.alert_id is None
    # her phone app's self-test
    async with aiohttp.ClientSession() as http:
        async with http.post(f"{url(live)}/v1/tests", json={"client_test_id": "t-1"}, headers={
                "Authorization": f"Bearer {device_token(settings, person, clock.now())}"}) as resp:
            assert resp.status == 201, await resp.text()

    await expect(row.locator("li.proven")).to_have_count(2, timeout=5000)  # the notices' push refreshes the list
    await expect(row.locator("li[data-channel=button]")).to_contain_text(f"Button {button.device_id}: worked")
    await expect(row.locator("li[data-channel=app]")).to_contain_text("Phone app")
    await expect(row.locator("li[data-channel=sms]")).to_have_text("SMS: never tested")
    notices = page.locator("#notice-list li.tpl-channel_proven")
    await expect(notices).to_have_count(2)
    await expect(notices.filter(has_text=button.device_id)).to_contain_text("Works: tested")
    await expect(notices.filter(has_text=button.device_id)).to_contain_text("Button")
    await expect(notices.filter(has_text=person.device_id)).to_contain_text(f"Phone app · device {person.device_id}")
    for text in await notices.all_text_contents():
        assert "+7701" not in text and "channel" not in text, text
    await shot(page, "console-channels.png")

    # the alert view shows the same for the person behind the alert
    alert_id = await raise_alert(url(live), settings, person, clock.now())
    await page.goto(f"{url(live)}/console/#/alert/{alert_id}")
    channels = page.locator("#alert-channels li")
    await expect(channels).to_have_count(3)
    await expect(page.locator("#alert-channels li.proven")).to_have_count(2)
    for language, worked, never, title in (("ru", "работал", "не проверялся", "Проверка каналов"),
                                           ("kk", "жұмыс істеді", "тексерілмеген", "Арналарды тексеру"),
                                           ("en", "worked", "never tested", "Channels last proven")):
        await page.select_option("#lang", language)
        await expect(page.locator("#alert-channels li[data-channel=button]")).to_contain_text(worked)
        await expect(page.locator("#alert-channels li[data-channel=sms]")).to_contain_text(never)
        await expect(page.locator("#alert-summary dt").filter(has_text=title)).to_have_count(1)
