"""The phone app in Debian's chromium (Playwright, no browser download) against the real service on a TCP port."""

from __future__ import annotations

import asyncio
import json
import os
import re
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import unquote

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from playwright.async_api import async_playwright, expect

from alertd.app import create_app
from alertd.clock import FakeClock
from alertd.service.enrol_codes import issue_code
from tests.helpers import enrol, offset, seed_responders

pytestmark = pytest.mark.browser

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]
SECRET, PIN, DURESS = "2580", "1234", "9876"
SMS_NUMBER = "+77010009999"
HOME_LAT, HOME_LON = offset(0.5)
MOVED_LAT, MOVED_LON = offset(3.0, 1.0)
KEYS = {"%": "pct", "C": "ac", "<": "back", "*": "*", "=": "="}
# Set ALERTD_PHONE_SCREENSHOTS=docs to refresh the screenshot docs/phone-app.md shows.
SHOTS = Path(os.environ["ALERTD_PHONE_SCREENSHOTS"]) if os.environ.get("ALERTD_PHONE_SCREENSHOTS") else None
OPEN_ACTIVATION = "0000%"  # what her advocate types: the menu says nothing about activation


@dataclass
class Call:
    method: str
    path: str
    status: int
    body: bytes
    seconds: float


@dataclass
class Served:
    url: str
    settings: object
    clock: FakeClock
    calls: list[Call] = field(default_factory=list)

    def posts(self, path_pattern: str) -> list[Call]:
        return [c for c in self.calls if c.method == "POST" and re.fullmatch(path_pattern, c.path)]


@pytest.fixture(scope="module")
async def browser():
    async with async_playwright() as p:
        launched = await p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        yield launched
        await launched.close()


@pytest.fixture
async def served(settings):
    """The whole service on 127.0.0.1 (a secure context for service workers), recording every call."""
    settings = settings.replace(twilio_from_number=SMS_NUMBER)
    clock = FakeClock(datetime.now(UTC))  # the browser stamps fixes with the real time
    app = create_app(settings, clock, run_engine=False)
    served = Served("", settings, clock)

    @web.middleware
    async def record(request, handler):
        started = time.perf_counter()
        resp = await handler(request)
        served.calls.append(Call(request.method, request.path, resp.status, getattr(resp, "body", b"") or b"",
                                 time.perf_counter() - started))
        return resp

    app.middlewares.insert(0, record)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    served.url = str(server.make_url("/app/"))
    yield served
    await server.close()


@pytest.fixture
async def page(browser, served):
    context = await browser.new_context(
        geolocation={"latitude": HOME_LAT, "longitude": HOME_LON, "accuracy": 12}, permissions=["geolocation"],
        locale="ru-RU", viewport={"width": 360, "height": 640})
    page = await context.new_page()
    problems = []
    page.on("pageerror", lambda exc: problems.append(str(exc)))
    page.on("console", lambda m: problems.append(m.text) if "Content Security Policy" in m.text else None)
    await page.goto(served.url)
    await page.wait_for_function("() => navigator.serviceWorker.controller !== null")
    yield page
    await context.close()
    assert problems == []


async def until(check, timeout: float = 10.0):
    """Poll until check() gives something truthy (the browser works on its own time)."""
    deadline = time.monotonic() + timeout
    while True:
        result = await check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"still waiting after {timeout} s")
        await asyncio.sleep(0.05)


async def tap(page, keys: str) -> None:
    for key in keys:
        await page.click(f'#keys [data-k="{KEYS.get(key, key)}"]')


async def enrol_phone(page, db, served, *, cue: str = "dot"):
    """Her advocate enrols her; she types the code into the calculator's activation and sets her secret."""
    person = await enrol(db, served.clock.now(), pin=PIN, duress_pin=DURESS)
    code = await issue_code(db, served.settings, served.clock.now(), person_id=person.person_id)
    await tap(page, OPEN_ACTIVATION)
    await page.fill("#code", code.code)
    await page.click("#code-ok")
    await page.wait_for_selector("#p-setup", state="visible")
    await page.fill("#secret", SECRET)
    await page.select_option("#cue-kind", cue)
    await page.click("#setup-save")
    await page.wait_for_selector("#p-setup", state="hidden")
    return person


async def visible_texts(page, selector: str) -> list[str]:
    return [await e.text_content() for e in await page.query_selector_all(selector) if await e.is_visible()]


async def stored(page, key: str):
    return await page.evaluate("key => CalcStore.get(key)", key)


def check_aml(body: str, lat: float, lon: float, radius: int) -> None:
    """Well-formed AML v1: the field set in order, ml = the message's length, one GSM-7 SMS."""
    assert re.fullmatch(r'A"ML=1(;[a-z]+=[^;]*)+', body), body
    fields = dict(part.split("=", 1) for part in body.split(";")[1:])
    assert list(fields) == ["lt", "lg", "rd", "top", "lc", "pm", "si", "ei", "mcc", "mnc", "ml"]
    assert int(fields["ml"]) == len(body) and len(body) <= 160 and body.isascii()
    assert re.fullmatch(r"[+-]\d{1,2}\.\d{5}", fields["lt"]) and re.fullmatch(r"[+-]\d{1,3}\.\d{5}", fields["lg"])
    assert abs(float(fields["lt"]) - lat) < 1e-5 and abs(float(fields["lg"]) - lon) < 1e-5
    assert fields["rd"] == str(radius) and fields["pm"] == "G" and fields["lc"] == "68"
    when = datetime.strptime(fields["top"], "%Y%m%d%H%M%S").replace(tzinfo=UTC)
    assert abs((datetime.now(UTC) - when).total_seconds()) < 300
    try:  # the SMS channel's own parser, when it is there
        from alertd.channels.sms.location import parse_aml
    except ImportError:
        return
    parsed = parse_aml(body, datetime.now(UTC))
    assert parsed is not None and parsed.aml and parsed.flags == ()
    assert abs(parsed.location.lat - lat) < 1e-5 and abs(parsed.location.lon - lon) < 1e-5


async def test_secret_gesture_raises_an_alert_where_she_is_and_sums_raise_nothing(page, served, db):
    await seed_responders(db)
    await enrol_phone(page, db, served)
    config = await stored(page, "cfg")
    await page.evaluate("c => CalcStore.set('cfg', c)", {**config, "every": 1})  # a fix a second, for the test
    await page.reload()
    await page.wait_for_function("() => navigator.serviceWorker.controller !== null")
    history, url = await page.evaluate("history.length"), page.url

    await tap(page, "12+30=")
    assert await page.text_content("#out") == "42"
    await tap(page, "2580+1=")  # the secret inside a sum is only a sum
    assert await page.text_content("#out") == "2581"
    await tap(page, "25800=")
    await asyncio.sleep(0.5)  # give a wrongly raised alert the time to show itself
    assert await stored(page, "alert") is None and served.posts("/v1/alerts") == []
    assert await page.is_hidden("#cue")

    await tap(page, "2580=")
    assert await page.text_content("#out") == "2580"
    row = await until(lambda: db.fetchrow(
        "SELECT id, channel, location_source, ST_Y(location::geometry) AS lat, ST_X(location::geometry) AS lon, "
        "location_accuracy_m FROM alerts"))
    assert row["channel"] == "app" and row["location_source"] == "gps" and row["location_accuracy_m"] == 12
    assert abs(row["lat"] - HOME_LAT) < 1e-6 and abs(row["lon"] - HOME_LON) < 1e-6
    assert await db.fetchval("SELECT count(*) FROM dispatches WHERE alert_id = $1", row["id"]) == 3
    # nothing shows but the cue she chose: same title, no history entry, no URL change
    assert await page.is_visible("#cue")
    assert await page.title() == "Calculator" and page.url == url
    assert await page.evaluate("history.length") == history

    await page.context.set_geolocation({"latitude": MOVED_LAT, "longitude": MOVED_LON, "accuracy": 8})
    await until(lambda: db.fetchval(
        "SELECT count(*) FROM location_fixes WHERE alert_id = $1 AND accuracy_m = 8", row["id"]))

    await tap(page, PIN + "=")
    await until(lambda: db.fetchval("SELECT status = 'cancelled' FROM alerts WHERE id = $1", row["id"]))
    fixes = await db.fetchval("SELECT count(*) FROM location_fixes WHERE alert_id = $1", row["id"])
    await asyncio.sleep(1.5)  # one and a half fix intervals: tracking has stopped
    assert await db.fetchval("SELECT count(*) FROM location_fixes WHERE alert_id = $1", row["id"]) == fixes
    assert await page.is_hidden("#cue")

    await tap(page, SECRET + "%")  # her secret and % open her settings
    assert await page.is_visible("#p-setup") and await page.input_value("#secret") == SECRET
    await tap(page, "C")  # quick exit
    assert await page.is_hidden("#p-setup") and await page.text_content("#out") == "0"


async def test_offline_alert_goes_once_when_the_network_returns_and_an_aml_sms_is_offered(page, served, db):
    await seed_responders(db)
    await enrol_phone(page, db, served)
    sent_by = []
    page.context.on("request", lambda r: sent_by.append(r.service_worker is not None)
                    if r.url.endswith("/v1/alerts") else None)
    await page.context.set_offline(True)
    await tap(page, "2580=")
    share = page.locator("#share")
    await share.wait_for(state="visible")
    href = await share.get_attribute("href")
    number, _, body = href.partition("?body=")
    assert number == f"sms:{SMS_NUMBER}"
    check_aml(unquote(body), HOME_LAT, HOME_LON, 12)
    assert await page.evaluate("CalcStore.pending()") == 1
    assert await db.fetchval("SELECT count(*) FROM alerts") == 0

    await page.context.set_offline(False)
    await until(lambda: db.fetchval("SELECT count(*) FROM alerts"))
    await until(lambda: page.evaluate("CalcStore.pending().then(n => n === 0)"))
    # every later wake-up (a reload, a nudge to the worker) finds nothing left to send
    await page.reload()
    await page.wait_for_function("() => navigator.serviceWorker.controller !== null")
    await page.evaluate("new Promise(r => { const c = new MessageChannel(); c.port1.onmessage = r;"
                        " navigator.serviceWorker.controller.postMessage('flush', [c.port2]); })")
    assert len(served.posts("/v1/alerts")) == 1 and served.posts("/v1/alerts")[0].status == 201
    assert await db.fetchval("SELECT count(*) FROM alerts") == 1
    assert sent_by[-1] is True  # the service worker sent it
    assert await page.is_hidden("#share")  # delivered: no SMS needed any more

    without_fix = await page.evaluate("amlBody(null)")
    assert int(without_fix.rsplit("ml=", 1)[1]) == len(without_fix) and ";pm=N;" in without_fix


async def test_cancel_and_duress_pin_look_the_same_but_only_duress_keeps_help_coming(page, served, db):
    await seed_responders(db)
    await enrol_phone(page, db, served)
    screens, answers, alert_ids = [], [], []
    for pin in (PIN, DURESS):
        await tap(page, "2580=")
        alert_id = await until(lambda: db.fetchval(
            "SELECT id FROM alerts WHERE status = 'open' AND NOT duress ORDER BY created_at DESC LIMIT 1"))
        await until(lambda: page.evaluate("CalcStore.pending().then(n => n === 0)"))
        assert await page.is_visible("#cue")
        await tap(page, pin + "=")
        assert await page.is_hidden("#cue")  # at once, before any answer, whichever PIN
        await until(lambda: page.evaluate("CalcStore.get('alert').then(a => a === undefined)"))
        screens.append(await page.screenshot(mask=[page.locator("#out")]))
        answers.append(served.posts(r"/v1/alerts/[^/]+/cancel")[-1])
        alert_ids.append(alert_id)

    assert screens[0] == screens[1]
    first, second = (json.loads(a.body) for a in answers)
    assert answers[0].status == answers[1].status == 200
    assert first == {"alert_id": str(alert_ids[0]), "status": "cancelled"}
    assert second == {"alert_id": str(alert_ids[1]), "status": "cancelled"}

    cancelled = await db.fetchrow("SELECT status, duress FROM alerts WHERE id = $1", alert_ids[0])
    duress = await db.fetchrow("SELECT status, duress, priority FROM alerts WHERE id = $1", alert_ids[1])
    assert (cancelled["status"], cancelled["duress"]) == ("cancelled", False)
    assert (duress["status"], duress["duress"], duress["priority"]) == ("open", True, "high")
    statuses = await db.fetch("SELECT alert_id, status FROM dispatches")
    assert {r["status"] for r in statuses if r["alert_id"] == alert_ids[0]} == {"cancelled"}
    assert {r["status"] for r in statuses if r["alert_id"] == alert_ids[1]} == {"pending"}


async def test_offline_cancel_follows_its_alert_and_a_wrong_pin_brings_the_cue_back(page, served, db):
    await seed_responders(db)
    await enrol_phone(page, db, served)
    await page.context.set_offline(True)
    await tap(page, "2580=")
    await tap(page, PIN + "=")  # typed before the alert could leave the phone
    assert await page.is_hidden("#cue")
    await until(lambda: page.evaluate("CalcStore.pending().then(n => n === 2)"))
    await page.context.set_offline(False)
    await until(lambda: db.fetchval("SELECT status = 'cancelled' FROM alerts"))
    # the cancel's answer waits out its floor after the commit: it is recorded once it has been answered
    await until(lambda: asyncio.sleep(0, len(served.posts(r"/v1/alerts.*")) >= 2))
    assert [c.path.rsplit("/", 1)[-1] for c in served.posts(r"/v1/alerts.*")] == ["alerts", "cancel"]

    await tap(page, "2580=")
    alert_id = await until(lambda: db.fetchval("SELECT id FROM alerts WHERE status = 'open'"))
    await tap(page, "5555=")
    assert await page.is_hidden("#cue")
    await page.wait_for_selector("#cue", state="visible")  # refused: the alert is still live, and she sees it
    assert served.posts(r"/v1/alerts/[^/]+/cancel")[-1].status == 403
    assert await db.fetchval("SELECT status FROM alerts WHERE id = $1", alert_id) == "open"
    assert await db.fetchval("SELECT count(*) FROM security_events WHERE kind = 'wrong_pin'") == 1


async def test_wipe_leaves_nothing_in_storage(page, served, db):
    await enrol_phone(page, db, served)
    await page.context.set_offline(True)
    await tap(page, "2580=")
    await until(lambda: page.evaluate("CalcStore.pending()"))

    await page.click("#menu-btn")
    await page.click("#reset")
    assert await page.text_content("#reset") == "Нажмите ещё раз"  # a second tap confirms
    await page.click("#reset")
    await until(lambda: page.evaluate("indexedDB.databases().then(d => d.length === 0)"))
    await page.context.set_offline(False)
    await tap(page, "2580=")  # only a number now
    await asyncio.sleep(0.5)

    left = await page.evaluate("""async () => ({
        idb: (await indexedDB.databases()).map(d => d.name),
        local: localStorage.length, session: sessionStorage.length, cookie: document.cookie,
        cached: (await Promise.all((await caches.keys()).map(async k =>
            (await (await caches.open(k)).keys()).map(r => r.url)))).flat(),
    })""")
    assert left["idb"] == [] and left["local"] == 0 and left["session"] == 0 and left["cookie"] == ""
    assert await page.context.cookies() == []
    # what the cache holds is the calculator itself, the same for everyone
    assert left["cached"] and all(u.startswith(served.url) for u in left["cached"])
    assert served.posts("/v1/alerts") == [] and await db.fetchval("SELECT count(*) FROM alerts") == 0
    assert await page.is_hidden("#cue")
    # a fresh calculator again: its menu has the languages only
    await page.click("#menu-btn")
    assert await visible_texts(page, "#menu button") == ["Қазақша", "Русский", "English"]


async def test_three_languages_and_quick_exit_from_any_screen(page, served):
    await tap(page, OPEN_ACTIVATION)
    assert await page.text_content("#p-code label span") == "Код активации"  # from the phone's language
    for language, label in (("kk", "Белсендіру коды"), ("en", "Activation code")):
        await tap(page, "C")
        await page.click("#menu-btn")
        await page.click(f"[data-lang={language}]")
        await tap(page, OPEN_ACTIVATION)
        assert await page.text_content("#p-code label span") == label
    await page.fill("#code", "WRON-GCOD")
    await page.click("#code-ok")
    await page.wait_for_selector("#code-err:has-text('Code not accepted')")
    await tap(page, "C")
    assert await page.is_hidden("#p-code") and await page.is_visible("#display")
    assert await page.input_value("#code") == ""
    assert await page.evaluate("indexedDB.databases().then(d => d.length)") == 0  # nothing kept before enrolment


async def test_first_load_is_small_installable_and_works_offline(served, tmp_path):
    async with async_playwright() as p:
        # a persistent profile: Chromium reports any incognito context as not installable
        context = await p.chromium.launch_persistent_context(
            str(tmp_path / "profile"), executable_path=CHROMIUM, args=ARGS, headless=True)
        try:
            finished = []
            context.on("requestfinished", lambda r: finished.append(r))
            page = context.pages[0] if context.pages else await context.new_page()
            await page.goto(served.url)
            await page.wait_for_function("() => navigator.serviceWorker.controller !== null")
            await page.wait_for_load_state("networkidle")
            sizes = [await r.sizes() for r in finished]
            transferred = sum(s["responseBodySize"] + s["responseHeadersSize"] for s in sizes)
            print(f"first load: {len(finished)} responses, {transferred} bytes transferred")
            assert transferred < 150_000

            cdp = await context.new_cdp_session(page)
            assert (await cdp.send("Page.getInstallabilityErrors"))["installabilityErrors"] == []
            manifest = await cdp.send("Page.getAppManifest")
            assert manifest["errors"] == [] and manifest["url"].endswith("/app/manifest.webmanifest")
            doc = json.loads(manifest["data"])
            assert doc["name"] == "Calculator" and doc["display"] == "standalone"
            assert {i["sizes"] for i in doc["icons"]} >= {"192x192", "512x512"}

            await context.set_offline(True)
            await page.reload()
            await tap(page, "6*7=")
            assert await page.text_content("#out") == "42"
        finally:
            await context.close()


async def test_first_load_over_an_emulated_2g_link_is_usable_in_seconds(browser, served):
    context = await browser.new_context(locale="kk-KZ", viewport={"width": 360, "height": 640})
    try:
        page = await context.new_page()
        cdp = await context.new_cdp_session(page)
        await cdp.send("Network.enable")
        # a rural 2G/EDGE link: 300 ms round trips, 250 kbit/s down, 50 kbit/s up
        await cdp.send("Network.emulateNetworkConditions", {
            "offline": False, "latency": 300, "downloadThroughput": 250_000 / 8, "uploadThroughput": 50_000 / 8})
        started = time.monotonic()
        await page.goto(served.url, wait_until="commit")
        await page.wait_for_function("() => document.querySelector('#p-code span').textContent === 'Белсендіру коды'")
        usable = time.monotonic() - started
        print(f"first load over emulated 2G: usable after {usable:.2f} s")
        assert usable < 6
        await tap(page, "7*6=")
        assert await page.text_content("#out") == "42"
    finally:
        await context.close()


async def mobile_page(browser, served, *, width: int, height: int, scale: float = 2.0):
    """A phone: touch, the page's own viewport tag applies; the same checks as the `page` fixture."""
    context = await browser.new_context(viewport={"width": width, "height": height}, device_scale_factor=scale,
                                        is_mobile=True, has_touch=True, locale="en-US",
                                        geolocation={"latitude": HOME_LAT, "longitude": HOME_LON, "accuracy": 12},
                                        permissions=["geolocation"])
    page = await context.new_page()
    problems: list[str] = []
    page.on("pageerror", lambda exc: problems.append(str(exc)))
    page.on("console", lambda m: problems.append(m.text) if "Content Security Policy" in m.text else None)
    await page.goto(served.url)
    await page.wait_for_function("() => navigator.serviceWorker.controller !== null")
    return page, problems


async def settled_view(page) -> list[float]:
    """The zoomed view once it stopped moving (a pinch or a pan glides on for a moment)."""
    where = "new Promise(r => requestAnimationFrame(() => requestAnimationFrame(() => " \
            "r([visualViewport.scale, visualViewport.offsetLeft, visualViewport.offsetTop]))))"
    last = await page.evaluate(where)
    while True:
        await asyncio.sleep(0.1)
        now = await page.evaluate(where)
        if now == last:
            return now
        last = now


async def finger_tap(cdp, page, selector: str) -> None:
    """A finger on what is on screen now, wherever she has zoomed to: bring it into view as she would by moving
    the zoomed view, then touch its middle (touch points are in CSS pixels from the visual viewport's corner)."""
    await page.evaluate("s => document.querySelector(s).scrollIntoView({block: 'center', inline: 'center'})",
                        selector)
    await settled_view(page)
    x, y = await page.evaluate("""s => { const r = document.querySelector(s).getBoundingClientRect();
        return [r.x + r.width / 2 - visualViewport.offsetLeft, r.y + r.height / 2 - visualViewport.offsetTop]; }""",
                               selector)
    await cdp.send("Input.dispatchTouchEvent", {"type": "touchStart", "touchPoints": [{"x": x, "y": y}]})
    await cdp.send("Input.dispatchTouchEvent", {"type": "touchEnd", "touchPoints": []})


async def test_she_can_pinch_to_zoom_and_the_zoomed_calculator_still_works(browser, served):
    page, problems = await mobile_page(browser, served, width=360, height=740)
    cdp = await page.context.new_cdp_session(page)
    # two fingers on the display, moving apart
    fingers = lambda d: [{"x": 180 - d, "y": 150}, {"x": 180 + d, "y": 150}]  # noqa: E731
    await cdp.send("Input.dispatchTouchEvent", {"type": "touchStart", "touchPoints": fingers(40)})
    for spread in range(40, 121, 8):
        await cdp.send("Input.dispatchTouchEvent", {"type": "touchMove", "touchPoints": fingers(spread)})
        await asyncio.sleep(0.02)
    await cdp.send("Input.dispatchTouchEvent", {"type": "touchEnd", "touchPoints": []})
    scale = (await settled_view(page))[0]
    print(f"pinch: zoomed to {scale:.1f}x")
    assert scale > 1.5
    for key, shown in zip("7*6=", ("7", "7", "6", "42"), strict=True):
        await finger_tap(cdp, page, f'#keys [data-k="{KEYS.get(key, key)}"]')
        await until(lambda: page.evaluate("s => document.getElementById('out').textContent === s", shown), timeout=3)
    await page.context.close()
    assert problems == []


async def test_at_twice_the_text_size_the_calculator_fits_and_works(browser, served):
    """Chrome's page zoom at 200% on a 360x740 phone leaves 180x370 CSS pixels: every key whole and on screen."""
    page, problems = await mobile_page(browser, served, width=180, height=370, scale=4.0)
    layout = await page.evaluate("""() => ({
        width: document.documentElement.scrollWidth, height: document.documentElement.scrollHeight,
        keys: [...document.querySelectorAll('#keys button')].map(b => {
            const r = b.getBoundingClientRect(); return [b.dataset.k, r.left, r.top, r.right, r.bottom]; }),
        out: document.getElementById('out').getBoundingClientRect().height})""")
    assert layout["width"] <= 180 and layout["height"] <= 370, layout
    widths = {round(right - left) for _, left, _, right, _ in layout["keys"]}
    assert len(widths) == 1, widths  # four equal columns, as on any calculator
    for key, left, top, right, bottom in layout["keys"]:
        assert left >= 0 and top >= 0 and right <= 180 and bottom <= 370 and bottom - top >= 40, key
    await tap(page, "12*3=")
    assert await page.text_content("#out") == "36" and layout["out"] > 0
    await page.context.close()
    assert problems == []


async def test_the_menu_of_a_calculator_before_enrolment_shows_languages_only(page, served, db):
    await page.click("#menu-btn")
    assert await visible_texts(page, "#menu button") == ["Қазақша", "Русский", "English"]
    assert await page.is_hidden("#p-code")
    await page.click("#menu-btn")
    await tap(page, "0000=")  # a sum is a sum
    assert await page.is_hidden("#p-code")
    await enrol_phone(page, db, served)
    await page.click("#menu-btn")
    assert await visible_texts(page, "#menu button") == ["Қазақша", "Русский", "English", "Проверить связь",
                                                         "Сбросить"]
    await page.click("#menu-btn")
    await tap(page, OPEN_ACTIVATION)  # once she is set up, only her secret opens anything
    assert await page.is_hidden("#p-code") and await page.is_hidden("#p-setup")


async def test_set_up_fits_a_360x740_phone_and_says_what_each_choice_does(browser, served, db):
    page, problems = await mobile_page(browser, served, width=360, height=740, scale=2.0)
    person = await enrol(db, served.clock.now(), pin=PIN, duress_pin=DURESS)
    code = await issue_code(db, served.settings, served.clock.now(), person_id=person.person_id)

    async def press_where_it_shows(selector: str) -> None:
        """Her finger on the middle of the button as laid out: nothing may cover it, nothing scrolls first."""
        box = await page.locator(selector).bounding_box()
        assert box and box["y"] >= 0 and box["y"] + box["height"] <= 740, (selector, box)
        x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
        assert await page.evaluate("([s, x, y]) => document.elementFromPoint(x, y) === document.querySelector(s)",
                                   [selector, x, y]), f"{selector} is covered"
        await page.touchscreen.tap(x, y)

    await tap(page, OPEN_ACTIVATION)
    await page.fill("#code", code.code)
    await press_where_it_shows("#code-ok")
    await page.wait_for_selector("#p-setup", state="visible")
    assert await visible_texts(page, "#keys button") == ["AC"]  # quick exit stays one tap away
    await page.fill("#secret", SECRET)
    await page.select_option("#cue-kind", "line")
    await page.select_option("#minutes", "60")
    names = await page.evaluate("""() => ['cue-kind', 'minutes'].map(id => {
        const el = document.getElementById(id);
        return [el.labels[0].querySelector('span').textContent,
                document.getElementById(el.getAttribute('aria-describedby')).textContent]; })""")
    assert names == [
        ["Sign that help was called", "Shown on the display while your alert is live. Only you know what it means."],
        ["Send my location for (minutes)",
         "After an alert, where you are is sent every 30 seconds for this long, while the app is open."]]
    await expect(page.locator("#cue-kind")).to_have_accessible_name("Sign that help was called")
    await expect(page.locator("#minutes")).to_have_accessible_description(re.compile("^After an alert"))
    if SHOTS:
        await page.screenshot(path=str(SHOTS / "phone-setup.png"))
    await press_where_it_shows("#setup-save")
    await page.wait_for_selector("#p-setup", state="hidden")
    config = await stored(page, "cfg")
    assert (config["secret"], config["cue"], config["minutes"]) == (SECRET, "line", 60)
    assert len(await visible_texts(page, "#keys button")) == 20
    await page.context.close()
    assert problems == []


async def test_errors_are_read_out_and_the_calculator_face_says_no_more_than_a_calculator(page, served, db):
    await tap(page, OPEN_ACTIVATION)
    announced = []
    await page.expose_function("announced", lambda text: announced.append(text))
    await page.evaluate("""() => new MutationObserver(records => records.forEach(r => {
        const box = r.target.nodeType === 1 ? r.target : r.target.parentElement;
        if (box.closest('[role=alert]') && box.textContent) announced(box.textContent); }))
        .observe(document.body, {childList: true, subtree: true, characterData: true})""")
    for attempt in (1, 2):  # the same mistake twice is said twice
        await page.fill("#code", "WRON-GCOD")
        await page.click("#code-ok")
        await until(lambda: asyncio.sleep(0, len(announced) >= attempt), timeout=5)
    assert announced == ["Код не принят", "Код не принят"]
    alert = page.get_by_role("alert")
    await expect(alert).to_have_text("Код не принят")
    await expect(page.locator("#code")).to_have_attribute("aria-invalid", "true")
    await expect(page.locator("#code")).to_have_accessible_description("Код не принят")
    tree = await (await page.context.new_cdp_session(page)).send("Accessibility.getFullAXTree")
    live = [n for n in tree["nodes"] if n.get("role", {}).get("value") == "alert"]
    assert [p["value"]["value"] for n in live for p in n.get("properties", []) if p["name"] == "live"] == ["assertive"]

    await tap(page, "C")  # quick exit: the error goes without a word
    assert await page.is_hidden("#p-code") and await page.text_content("#code-err") == ""
    await expect(page.locator("#code")).not_to_have_attribute("aria-invalid", "true")
    await enrol_phone(page, db, served)
    await tap(page, SECRET + "%")
    await page.fill("#secret", "12")
    await page.click("#setup-save")
    await expect(alert).to_have_text("Нужно от 4 до 8 цифр")
    await expect(page.locator("#secret")).to_have_accessible_description("Нужно от 4 до 8 цифр")
    await tap(page, "C")

    # On the calculator face the display is the only thing that speaks, and raising an alert sounds and reads
    # exactly like a sum with the same result.
    await seed_responders(db)
    cdp = await page.context.new_cdp_session(page)

    async def heard() -> list[tuple[str, str]]:
        nodes = (await cdp.send("Accessibility.getFullAXTree"))["nodes"]
        return [(n.get("role", {}).get("value"), n.get("name", {}).get("value")) for n in nodes
                if not n.get("ignored")]

    speaking = await page.evaluate("""() => [...document.querySelectorAll(
        'output, [role=alert], [role=status], [role=log], [aria-live]')]
        .filter(e => e.offsetParent !== null).map(e => e.id)""")
    assert speaking == ["out"]
    await tap(page, "2000+580=")
    sum_face = await heard()
    await tap(page, SECRET + "=")
    await until(lambda: db.fetchval("SELECT count(*) FROM alerts"))
    assert await page.is_visible("#cue")
    alert_face = await heard()
    assert alert_face == sum_face
