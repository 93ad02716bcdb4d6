"""The console in Debian's chromium, driven by Playwright against a real alertd on a real port."""

from __future__ import annotations

import os
import re
import time
import uuid
from pathlib import Path

import aiohttp
import pytest
from playwright.async_api import async_playwright, expect

from alertd.web.keys import ENGINE
from tests.console_support import PASSWORD, add_officer, raise_alert, start_server
from tests.helpers import device_token, enrol, fix, offset, seed_responders

pytestmark = pytest.mark.browser

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]
# Set ALERTD_CONSOLE_SCREENSHOTS=docs to refresh the screenshots the README shows.
SHOTS = os.environ.get("ALERTD_CONSOLE_SCREENSHOTS")


@pytest.fixture(scope="session")
async def browser():
    if not Path(CHROMIUM).exists():
        pytest.fail("chromium is not installed: run scripts/setup.sh")
    async with async_playwright() as pw:
        chromium = await pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield chromium
        await chromium.close()


@pytest.fixture
async def live(settings, clock, db):
    await seed_responders(db)
    server = await start_server(settings, clock)
    yield server
    await server.close()


@pytest.fixture
async def console(browser, live):
    """Open a signed-in console page: `page = await console("username")`."""
    contexts = []

    async def open_console(username: str, password: str = PASSWORD, *, signed_in: bool = True):
        context = await browser.new_context(viewport={"width": 1280, "height": 800}, locale="en-US")
        contexts.append(context)
        page = await context.new_page()
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        # API refusals (401, 404) are what some tests expect; a console file that fails to load is a bug.
        page.on("console", lambda msg: msg.type == "error" and not msg.text.startswith(
            "Failed to load resource: the server responded with a status of 4") and errors.append(msg.text))
        page.on("response", lambda r: r.status >= 400 and "/api/" not in r.url and "/v1/" not in r.url
                and errors.append(f"{r.status} {r.url}"))
        await page.goto(str(live.make_url("/console/")))
        await page.fill("#username", username)
        await page.fill("#password", password)
        await page.click("#signin-submit")
        if signed_in:
            await expect(page.locator("#conn")).to_have_class(re.compile("conn-live"))
        return page

    errors: list[str] = []
    yield open_console
    for context in contexts:
        await context.close()
    assert errors == [], errors  # no script errors, no CSP violations


async def shot(page, name: str) -> None:
    await page.screenshot(path=str(Path(SHOTS) / name) if SHOTS else None, full_page=False)


def url(server) -> str:
    return str(server.make_url("")).rstrip("/")


async def test_dispatch_appears_is_acknowledged_and_the_timeline_follows(live, console, settings, clock, db):
    await add_officer(db, clock.now(), "pol1", "pol-1")
    page = await console("pol1")
    await expect(page.locator("#dispatch-empty")).to_be_visible()
    person = await enrol(db, clock.now(), phone="+77015550199")
    started = time.monotonic()
    alert_id = await raise_alert(url(live), settings, person, clock.now())
    card = page.locator(".card[data-status=pending]")
    await expect(card).to_be_visible(timeout=2000)
    assert time.monotonic() - started < 2.0
    await expect(page.locator("#alarm")).to_be_visible()
    await expect(card.locator(".countdown")).to_have_text(re.compile(r"acknowledge within [01]:\d\d"))
    await expect(card.locator(".kind")).to_have_text("Police post")
    await shot(page, "console-dispatches.png")
    for width, height in ((768, 1024), (1024, 600)):  # a tablet, a small laptop: nothing scrolls sideways
        await page.set_viewport_size({"width": width, "height": height})
        assert await page.evaluate("document.documentElement.scrollWidth") <= width
        await expect(card.locator(".act-ack")).to_be_in_viewport()
    await page.set_viewport_size({"width": 1280, "height": 800})
    assert "+77015550199" not in await page.content()

    await card.locator(".act-ack").click()
    acked = page.locator(".card[data-status=acknowledged]")
    await expect(acked).to_be_visible()
    await expect(acked.locator(".countdown")).to_have_text(re.compile(r"^acknowledged 0:0\d ago$"))
    await expect(page.locator("#alarm")).to_be_hidden()
    assert await db.fetchval("SELECT status FROM dispatches WHERE responder_id = 'pol-1'") == "acknowledged"

    await acked.locator(".act-open").click()
    await expect(page).to_have_url(re.compile(f"#/alert/{alert_id}$"))
    await expect(page.locator("#timeline li[data-type=acknowledged]")).to_have_count(1)
    await expect(page.locator("#timeline li[data-type=dispatched]")).to_have_count(3)
    await expect(page.locator("#map path.accuracy")).to_have_count(1)
    await expect(page.locator("#map path.responder")).to_have_count(3)
    await expect(page.locator("#map-note")).to_contain_text("coordinate grid")
    reads = "SELECT count(*) FROM audit_log WHERE action = 'read_alert' AND actor = $1"
    assert await db.fetchval(reads, "officer:pol1") >= 1

    # One click on "en route" from the list shows up in the open alert's timeline through the live feed.
    await page.keyboard.press("Escape")
    await page.locator(".card .act-en_route").click()
    await expect(page.locator(".card[data-status=en_route]")).to_be_visible()
    await page.goto(f"{url(live)}/console/#/alert/{alert_id}")
    await expect(page.locator("#timeline li[data-type=status]")).to_contain_text("En route")
    await shot(page, "console-alert.png")
    assert "+77015550199" not in await page.content()


async def test_escalation_appears_on_the_next_responders_console(live, console, settings, clock, db):
    await add_officer(db, clock.now(), "pol1", "pol-1")
    await add_officer(db, clock.now(), "pol2", "pol-2")
    first, second = await console("pol1"), await console("pol2")
    person = await enrol(db, clock.now())
    await raise_alert(url(live), settings, person, clock.now())
    await expect(first.locator(".card[data-status=pending]")).to_be_visible(timeout=2000)
    await expect(second.locator("#dispatch-empty")).to_be_visible()

    clock.advance(61)
    live.app[ENGINE].wake()
    escalated = second.locator(".card[data-status=pending]")
    await expect(escalated).to_be_visible(timeout=2000)
    await expect(escalated.locator(".badge")).to_contain_text("escalation #1")
    await expect(second.locator("#alarm")).to_be_visible()
    await expect(first.locator(".card[data-status=expired] .countdown")).to_have_text(re.compile("overdue by"))

    # Keyboard only: j moves to the first dispatch, a acknowledges it.
    await second.keyboard.press("j")
    await expect(escalated).to_be_focused()
    await second.keyboard.press("a")
    await expect(second.locator(".card[data-status=acknowledged]")).to_be_visible()
    await expect(second.locator(".card[data-status=acknowledged]")).to_be_focused()


async def test_a_second_instance_feeds_the_same_console(live, console, settings, clock, db):
    await add_officer(db, clock.now(), "pol1", "pol-1")
    other = await start_server(settings, clock, run_engine=False)
    try:
        page = await console("pol1")
        person = await enrol(db, clock.now())
        await raise_alert(url(other), settings, person, clock.now(), cid="via-b")
        await expect(page.locator(".card")).to_have_count(1, timeout=2000)

        # The socket drops (a load balancer restarts, Wi-Fi blinks): the page reconnects and catches up.
        await page.evaluate("window.Live.dropSocket()")
        await expect(page.locator("#conn")).not_to_have_class(re.compile("conn-live"))
        another = await enrol(db, clock.now())
        await raise_alert(url(other), settings, another, clock.now(), cid="while-away")
        await expect(page.locator("#conn")).to_have_class(re.compile("conn-live"), timeout=5000)
        await expect(page.locator(".card")).to_have_count(2, timeout=2000)
    finally:
        await other.close()


async def test_wrong_password_and_unknown_user_are_refused_alike(live, console, clock, db):
    await add_officer(db, clock.now(), "pol1", "pol-1")
    messages = []
    for username, password in (("pol1", "wrong password!"), ("nobody", PASSWORD)):
        page = await console(username, password, signed_in=False)
        await expect(page.locator("#signin-error")).to_have_text("Wrong username or password.")
        await expect(page.locator("#bar")).to_be_hidden()
        assert await page.evaluate("sessionStorage.length") == 0
        messages.append(await page.locator("#signin-error").text_content())
    assert messages[0] == messages[1]


async def test_an_officer_cannot_open_another_responders_dispatch(live, console, settings, clock, db):
    await add_officer(db, clock.now(), "pol4", "pol-4")
    person = await enrol(db, clock.now())
    alert_id = await raise_alert(url(live), settings, person, clock.now())
    dispatch_id = await db.fetchval("SELECT id FROM dispatches WHERE responder_id = 'pol-1'")
    page = await console("pol4")
    await page.goto(f"{url(live)}/console/#/alert/{alert_id}")
    await expect(page.locator("#alert-error")).to_have_text("No such alert, or not yours.")
    await expect(page.locator("#timeline li")).to_have_count(0)
    statuses = await page.evaluate("""async ([alertId, dispatchId]) => {
        const auth = {Authorization: "Bearer " + window.Live.session.token};
        const read = await fetch(`/v1/alerts/${alertId}`, {headers: auth});
        const view = await fetch(`/console/api/alerts/${alertId}`, {headers: auth});
        const ack = await fetch(`/v1/dispatches/${dispatchId}/ack`, {method: "POST", headers: auth});
        const unknown = await fetch(`/v1/alerts/${crypto.randomUUID()}`, {headers: auth});
        return [read.status, view.status, ack.status, unknown.status];
    }""", [alert_id, str(dispatch_id)])
    assert statuses == [404, 404, 404, 404]
    assert await db.fetchval("SELECT status FROM dispatches WHERE id = $1", dispatch_id) == "pending"


async def test_supervisor_region_view_and_languages(live, console, settings, clock, db):
    await add_officer(db, clock.now(), "boss", "pol-3", role="supervisor", language="kk")
    person = await enrol(db, clock.now())
    alert_id = await raise_alert(url(live), settings, person, clock.now())
    lost = await enrol(db, clock.now())
    await raise_alert(url(live), settings, lost, clock.now(), cid="no-fix", location=False)
    await db.execute("INSERT INTO outbox (channel, recipient, template, payload, next_attempt_at, created_at, "
                     "status) VALUES ('console', 'supervisor:north', 'supervision', $1, $2, $2, 'sent')",
                     {"device_id": "B-7", "issue": "silent"}, clock.now())
    page = await console("boss")
    await expect(page.locator("#nav-dispatches")).to_have_text("Шақырулар")
    await page.keyboard.press("r")
    await expect(page.locator("#region-title")).to_contain_text("north")
    await expect(page.locator("#panel-open li")).to_have_count(1)
    await expect(page.locator("#panel-triage li")).to_have_count(1)
    await expect(page.locator("#panel-supervision li")).to_contain_text("B-7")

    clock.advance(61)
    live.app[ENGINE].wake()
    await expect(page.locator("#panel-deadlines li").first).to_contain_text("pol-1", timeout=3000)
    await expect(page.locator("#panel-escalations li").first).to_be_visible()

    def saved(language: str):  # the PATCH that saves this language (the previous one may still be answering)
        return lambda r: (r.url.endswith("/console/api/me") and r.request.method == "PATCH"
                          and f'"{language}"' in (r.request.post_data or ""))

    async with page.expect_response(saved("ru")):
        await page.select_option("#lang", "ru")
    await expect(page.locator("#nav-region")).to_have_text("Регион")
    async with page.expect_response(saved("en")):
        await page.select_option("#lang", "en")
    await expect(page.locator("#panel-open h2")).to_contain_text("Open alerts")
    assert await db.fetchval("SELECT language FROM officers WHERE username = 'boss'") == "en"
    await shot(page, "console-supervisor.png")

    await page.locator(f'#panel-open a[href="#/alert/{alert_id}"]').click()
    await expect(page.locator("#timeline li[data-type=expired]")).to_have_count(1)
    assert "(no-fix)" not in await page.content()


async def test_sign_out_returns_to_sign_in_and_the_token_stops_working(live, console, clock, db):
    await add_officer(db, clock.now(), "cc1", "cc-1")
    await db.execute("INSERT INTO outbox (channel, recipient, template, payload, next_attempt_at, created_at) "
                     "VALUES ('console', 'cc-1', 'button_low_battery', $1, $2, $2)",
                     {"device_id": "B-9", "battery": 0.1}, clock.now())
    page = await console("cc1")
    await expect(page.locator("#notice-list li")).to_contain_text("Button battery low")
    await expect(page.locator("#notice-list li")).to_contain_text("B-9")
    token = await page.evaluate("window.Live.session.token")
    await page.click("#signout")
    await expect(page.locator("#signin")).to_be_visible()
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{url(live)}/console/api/me", headers={"Authorization": f"Bearer {token}"}) as resp:
            assert resp.status == 401
    assert uuid.UUID(await page.evaluate("crypto.randomUUID()"))  # the page still works, signed out


async def test_a_refresh_never_destroys_a_note_being_typed_nor_turns_its_letters_into_actions(live, console, settings,
                                                                                              clock, db):
    """The safety bug: a list refresh rebuilt the cards, the note form vanished, focus went back to the card and the
    letters typed next ran the single-key shortcuts ("see" moved a dispatch to on scene)."""
    await add_officer(db, clock.now(), "pol1", "pol-1")
    page = await console("pol1")
    person = await enrol(db, clock.now())
    alert_id = await raise_alert(url(live), settings, person, clock.now())
    card = page.locator(".card[data-status=pending]")
    await card.locator(".act-ack").click()
    acked = page.locator(".card[data-status=acknowledged]")
    await expect(acked).to_be_visible()
    await acked.locator(".act-resolve").click()
    note = acked.locator("textarea")
    await expect(note).to_be_focused()
    await page.keyboard.type("Calm now, ")

    # Everything that redraws the list while she types: a new dispatch for another person (it sorts above hers),
    # a new fix on this very alert (her card's data changes), and the periodic refresh, several times over.
    other = await enrol(db, clock.now())
    await raise_alert(url(live), settings, other, clock.now(), cid="other")
    await expect(page.locator(".card[data-status=pending]")).to_have_count(1, timeout=2000)
    await page.keyboard.type("see ")
    clock.advance(5)
    newer = fix(*offset(0.7), accuracy_m=15.0, when=clock.now())
    async with aiohttp.ClientSession() as http:
        async with http.post(f"{url(live)}/v1/alerts/{alert_id}/locations", json=newer,
                             headers={"Authorization": f"Bearer {device_token(settings, person, clock.now())}"}) as r:
            assert r.status in (200, 201, 202), await r.text()
    await page.evaluate("window.Console.refresh()")
    await expect(acked.locator(".card-loc")).to_contain_text("±15", timeout=2000)
    for _ in range(3):
        await page.evaluate("window.Console.refresh()")
        await page.keyboard.type("sea")
    await expect(note).to_be_focused()
    await expect(note).to_have_value("Calm now, see seaseasea")
    assert await db.fetchval("SELECT status FROM dispatches WHERE responder_id = 'pol-1' AND alert_id = $1",
                             uuid.UUID(alert_id)) == "acknowledged"

    await page.locator(".card[data-status=acknowledged] button[type=submit]").click()
    await expect(page.locator("#closed-list .card[data-status=resolved]")).to_have_count(1)
    assert await db.fetchval("SELECT note FROM dispatches WHERE responder_id = 'pol-1' AND alert_id = $1",
                             uuid.UUID(alert_id)) == "Calm now, see seaseasea"


async def test_single_key_actions_need_a_focused_card_and_can_be_turned_off(live, console, settings, clock, db):
    await add_officer(db, clock.now(), "pol1", "pol-1")
    page = await console("pol1")
    person = await enrol(db, clock.now())
    await raise_alert(url(live), settings, person, clock.now())
    card = page.locator(".card[data-status=pending]")
    await expect(card).to_be_visible(timeout=2000)
    status = "SELECT status FROM dispatches WHERE responder_id = 'pol-1'"

    # Letters typed with nothing focused, or on a button inside the card, change nothing.
    await page.evaluate("document.activeElement.blur()")
    await page.keyboard.type("aes")
    await card.locator(".act-open").focus()
    await page.keyboard.type("aes")
    await page.evaluate("window.Console.refresh()")
    await expect(card).to_be_visible()
    assert await db.fetchval(status) == "pending"

    # Turned off, a focused card ignores them too; the choice survives a reload.
    await page.locator("#keys-on").uncheck()
    await expect(page.locator("#keys-hint")).to_be_hidden()
    await card.focus()
    await page.keyboard.press("a")
    await page.evaluate("window.Console.refresh()")
    await page.reload()
    await expect(page.locator("#keys-on")).not_to_be_checked()
    await page.locator(".card[data-status=pending]").focus()
    await page.keyboard.press("a")
    await page.evaluate("window.Console.refresh()")
    await expect(page.locator(".card[data-status=pending]")).to_be_visible()
    assert await db.fetchval(status) == "pending"

    # On, with the card itself focused, one key acknowledges.
    await page.locator("#keys-on").check()
    await page.locator(".card[data-status=pending]").focus()
    await page.keyboard.press("a")
    await expect(page.locator(".card[data-status=acknowledged]")).to_be_focused()
    assert await db.fetchval(status) == "acknowledged"


def contrast(a: str, b: str) -> float:
    """WCAG contrast ratio of two CSS rgb()/rgba() colours."""
    def luminance(css: str) -> float:
        r, g, b = (int(float(x)) / 255 for x in re.findall(r"[\d.]+", css)[:3])
        lin = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in (r, g, b)]
        return 0.2126 * lin[0] + 0.7152 * lin[1] + 0.0722 * lin[2]
    hi, lo = sorted((luminance(a), luminance(b)), reverse=True)
    return (hi + 0.05) / (lo + 0.05)


async def test_focus_stays_in_view_and_lands_where_the_officers_work_continues(live, console, settings, clock, db):
    await add_officer(db, clock.now(), "pol1", "pol-1")
    people = [await enrol(db, clock.now()) for _ in range(6)]
    for i, person in enumerate(people):
        await raise_alert(url(live), settings, person, clock.now(), cid=f"c-{i}", km_north=0.1 * i)
    page = await console("pol1")
    await expect(page.locator("#dispatches-title")).to_be_focused()  # not the body: her place is the list
    await expect(page.locator(".card")).to_have_count(6)
    await page.set_viewport_size({"width": 1024, "height": 600})
    await expect(page.locator("#alarm")).to_be_visible()  # the tallest header there is

    async def clear_of_header() -> None:
        header = await page.evaluate("document.getElementById('bar').getBoundingClientRect().bottom")
        top = await page.evaluate("document.activeElement.getBoundingClientRect().top")
        assert top >= header, (top, header)

    for _ in range(6):
        await page.keyboard.press("j")
        await clear_of_header()
    for _ in range(6):
        await page.keyboard.press("k")
        await clear_of_header()

    # The ring is visible on the light page: 3:1 or more against the background behind it.
    ring = await page.evaluate("getComputedStyle(document.activeElement).outlineColor")
    background = await page.evaluate("getComputedStyle(document.body).backgroundColor")
    assert contrast(ring, background) >= 3.0, (ring, background)
    # A card is announced as seen: badge-less status, kind, code, countdown and who.
    name = page.locator(".card:focus")
    await expect(name).to_have_accessible_name(re.compile(r"Police post Code \w+ Waiting for acknowledgement .*"
                                                          r"acknowledge within \d:\d\d .*Channel: Phone app"))

    # Enter opens the alert with focus on its heading; back to the list, focus is on the card she opened.
    opened = await page.evaluate("document.activeElement.dataset.alertId")
    await page.keyboard.press("Enter")
    await expect(page.locator("#alert-title")).to_be_focused()
    await expect(page.locator("#map path.responder[role=img][aria-label]")).to_have_count(3)
    await expect(page.locator("#map path.responder[aria-label^='Police post: ']")).to_have_count(1)
    await expect(page.locator("#map path[role=img][aria-label^='Best location']")).to_have_count(1)
    # The skip link moves focus to the content and leaves the route alone.
    await page.locator("#alert-back").focus()
    await page.locator("a.skip").focus()
    await page.keyboard.press("Enter")
    await expect(page).to_have_url(re.compile(f"#/alert/{opened}$"))
    await expect(page.locator("#alert-title")).to_be_focused()
    await page.locator("#alert-back").click()
    await expect(page.locator(f".card[data-alert-id='{opened}']")).to_be_focused()


async def test_the_map_library_loads_only_where_a_map_is_shown(live, console, settings, clock, db):
    await add_officer(db, clock.now(), "pol1", "pol-1")
    person = await enrol(db, clock.now())
    alert_id = await raise_alert(url(live), settings, person, clock.now())
    page = await console("pol1")
    requested = []
    page.on("request", lambda r: requested.append(r.url))
    await expect(page.locator(".card")).to_have_count(1)
    assert await page.evaluate("typeof window.L") == "undefined"
    assert not [u for u in requested if "leaflet" in u]
    await page.locator(".card .act-open").click()
    await expect(page.locator("#map path.responder")).to_have_count(3)
    assert [u for u in requested if "leaflet.js" in u]
    assert alert_id in page.url


async def test_the_alert_view_has_the_officers_actions(live, console, settings, clock, db):
    await add_officer(db, clock.now(), "pol1", "pol-1")
    person = await enrol(db, clock.now())
    alert_id = await raise_alert(url(live), settings, person, clock.now())
    page = await console("pol1")
    await page.goto(f"{url(live)}/console/#/alert/{alert_id}")
    mine = page.locator("#alert-dispatches li[data-status]").filter(has_text="pol-1")
    await expect(mine.locator("button:visible")).to_have_count(4)  # acknowledge, en route, on scene, resolved…
    # Only her own responder's dispatch can be acted on.
    await expect(page.locator("#alert-dispatches li").filter(has_text="cc-1").locator("button")).to_have_count(0)
    status = "SELECT status FROM dispatches WHERE responder_id = 'pol-1'"
    await mine.locator(".act-ack").click()
    await expect(page.locator("#alert-dispatches li[data-status=acknowledged]")).to_have_count(1)
    assert await db.fetchval(status) == "acknowledged"
    await expect(page.locator("#alert-dispatches li[data-status=acknowledged]")).to_be_focused()
    await page.locator("#alert-dispatches li[data-status=acknowledged] .act-en_route").click()
    await expect(page.locator("#alert-dispatches li[data-status=en_route]")).to_have_count(1)
    await page.locator("#alert-dispatches li[data-status=en_route] .act-resolve").click()
    await page.keyboard.type("Safe with her sister")
    await page.evaluate("window.Console.refresh()")
    await page.locator("#alert-dispatches li[data-status=en_route] button[type=submit]").click()
    await expect(page.locator("#alert-dispatches li[data-status=resolved]")).to_have_count(1)
    assert await db.fetchval("SELECT note FROM dispatches WHERE responder_id = 'pol-1'") == "Safe with her sister"
    await expect(page.locator("#timeline li[data-type=status]").last).to_contain_text("Safe with her sister")


async def test_notices_channels_and_header_read_right_in_every_language(live, console, settings, clock, db):
    await add_officer(db, clock.now(), "boss", "pol-3", role="supervisor", language="ru")
    person = await enrol(db, clock.now())
    alert_id = await raise_alert(url(live), settings, person, clock.now())
    clock.advance(61)
    live.app[ENGINE].wake()
    page = await console("boss")
    await page.keyboard.press("r")
    notices = page.locator("#panel-notices li")
    await expect(notices.first).to_contain_text("Пост полиции", timeout=3000)
    for text in await notices.all_text_contents():
        assert "=" not in text and "responder_id" not in text and "kind" not in text, text
    await page.goto(f"{url(live)}/console/#/alert/{alert_id}")
    channel = page.locator("#alert-summary dd").nth(3)
    await expect(channel).to_have_text("Приложение")
    for language, word in (("kk", "Қосымша"), ("en", "Phone app")):
        await page.select_option("#lang", language)
        await expect(channel).to_have_text(word)
    for language in ("ru", "kk", "en"):
        await page.select_option("#lang", language)
        rows = await page.evaluate("[...document.querySelectorAll('#bar > :not(#alarm):not([hidden]):not(.spacer)')]"
                                   ".map((e) => [e.getBoundingClientRect().top, e.getBoundingClientRect().bottom])")
        # one row at 1280 px: every part of the header overlaps every other vertically
        assert max(top for top, _ in rows) < min(bottom for _, bottom in rows), (language, rows)


async def test_her_repeated_alerts_read_as_one_alert_with_her_channel_and_person(live, console, settings, clock, db):
    await add_officer(db, clock.now(), "pol1", "pol-1")
    page = await console("pol1")
    person = await enrol(db, clock.now())
    first = await raise_alert(url(live), settings, person, clock.now(), cid="first")
    again = await raise_alert(url(live), settings, person, clock.now(), cid="again", km_north=0.6)
    assert again == first  # a repeat joins her open alert
    card = page.locator(".card")
    await expect(card).to_have_count(1)
    await expect(card.locator(".repeats")).to_have_text("repeated ×1", timeout=3000)
    await expect(card.locator(".card-who")).to_have_text(f"Channel: Phone app · Person {person.person_id}")
    await card.locator(".act-open").click()
    await expect(page.locator("#timeline li[data-type=repeated]")).to_contain_text("Raised again")
    await expect(page.locator("#timeline li[data-type=repeated]")).to_contain_text("Phone app")
    await page.select_option("#lang", "ru")
    await expect(page.locator("#timeline li[data-type=repeated]")).to_contain_text("Повторный сигнал")
