"""The console in Debian's chromium shows where an alert is in words and labels its offline map: named places from
the gazetteer and a coordinate grid with its degrees, so a map without tiles is still readable."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from playwright.async_api import expect

from alertd.service import places
from tests.console_support import add_officer, raise_alert
from tests.helpers import enrol
from tests.integration.test_console_browser import browser, console, live, shot, url  # noqa: F401  (fixtures)

pytestmark = pytest.mark.browser
SAMPLE = next(p for p in Path(__file__).resolve().parents if p.name == "tests") / "data" / "geonames_sample.txt"


async def test_cards_and_alert_view_name_the_place_and_the_map_labels_places_and_grid(live, console, settings,
                                                                                      clock, db):
    with SAMPLE.open("rb") as lines:
        await places.import_dump(db, lines, clock.now())
    await add_officer(db, clock.now(), "pol1", "pol-1")
    person = await enrol(db, clock.now())
    alert_id = await raise_alert(url(live), settings, person, clock.now(), km_north=0.5)
    page = await console("pol1")
    card = page.locator(".card")
    await expect(card.locator(".card-place")).to_have_text("Near: 14 km NE of Karaozek")

    await card.locator(".act-open").click()
    await expect(page).to_have_url(re.compile(f"#/alert/{alert_id}$"))
    await expect(page.locator("#alert-place")).to_have_text("14 km NE of Karaozek")
    await expect(page.locator("#map path.responder")).to_have_count(3)
    # the grid carries its degrees along the edges (the view spans a few km: steps of 0.01 or 0.02 degrees)
    await expect(page.locator("#map .grid-lat").first).to_have_text(re.compile(r"^50\.0\d°N$"))
    await expect(page.locator("#map .grid-lon").first).to_have_text(re.compile(r"^(69\.9\d|70\.0\d)°E$"))
    assert await page.locator("#map .grid-lat").count() >= 2 and await page.locator("#map .grid-lon").count() >= 2

    # zoomed out to the district: the villages are labelled, never the stream or the abandoned village
    await page.evaluate("window.Views.map.setView([50.0, 70.0], 9)")
    labels = page.locator("#map .place-label")
    await expect(labels.filter(has_text="Karaozek")).to_have_count(1)  # an English reader gets the ASCII name
    await expect(labels.filter(has_text="Zhana Zhol")).to_have_count(1)
    await expect(labels.filter(has_text="Tasbulak")).to_have_count(1)
    assert not await labels.filter(has_text=re.compile("Sarysu|Eski")).count()
    await expect(page.locator("#map .grid-lat").first).to_have_text(re.compile(r"^\d+\.\d°N$"))
    await expect(page.locator("#map-credit")).to_contain_text("GeoNames")
    await shot(page, "console-places.png")
    # a label's box sits over its place: the map is readable without tiles
    box = await labels.filter(has_text="Karaozek").bounding_box()
    assert box and box["width"] > 20

    # in Russian: the card, the summary and the labels
    await page.select_option("#lang", "ru")
    await expect(page.locator("#alert-place")).to_have_text("14 км к СВ от н.п. Караозек")
    await page.evaluate("window.Views.map.setView([50.0, 70.0], 9)")
    await expect(labels.filter(has_text="Караозек")).to_have_count(1)
