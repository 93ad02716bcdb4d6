"""The console's and the phone app's files travel compressed (brotli or gzip), and as they are to clients that
accept neither: over real HTTP, and in chromium. Run with -s to print the bytes per file."""

from __future__ import annotations

import gzip
import re
from pathlib import Path

import brotli
import pytest
from playwright.async_api import async_playwright, expect

from alertd.channels.app.static import APP_DIR
from alertd.channels.console.static import STATIC
from tests.console_support import PASSWORD, add_officer, raise_alert, start_server
from tests.helpers import enrol, seed_responders

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]
TEXT = (".js", ".css", ".html", ".svg", ".webmanifest")
DECODE = {"br": brotli.decompress, "gzip": gzip.decompress}


def text_files() -> list[tuple[str, Path]]:
    """Every text file of both clients, with the URL it is served at."""
    files = [("/console/", STATIC / "index.html"), ("/app/", APP_DIR / "index.html")]
    files += [(f"/console/assets/{p.relative_to(STATIC).as_posix()}", p) for p in sorted(STATIC.rglob("*"))
              if p.suffix in TEXT and p.name != "index.html"]
    files += [(f"/app/{p.name}", p) for p in sorted(APP_DIR.iterdir()) if p.suffix in TEXT and p.name != "index.html"]
    return files


async def fetch(client, path: str, accept: str | None, **headers):
    """One GET with exactly this Accept-Encoding (None: no header at all), the body as it came over the wire."""
    skip = () if accept is not None else ("Accept-Encoding",)
    if accept is not None:
        headers["Accept-Encoding"] = accept
    resp = await client.get(path, headers=headers, auto_decompress=False, skip_auto_headers=skip)
    return resp, await resp.read()


async def test_every_text_file_is_sent_compressed_to_who_accepts_it_and_plain_to_who_does_not(app_client):
    totals = {"identity": 0, "gzip": 0, "br": 0}
    print(f"\n{'file':52} {'plain':>8} {'gzip':>8} {'br':>8}")
    for path, source in text_files():
        wanted = source.read_bytes()
        if path == "/console/":
            wanted = None  # the page links files with ?v=<hash>: compare it with the plain answer below
        plain, body = await fetch(app_client, path, None)
        assert plain.status == 200 and "Content-Encoding" not in plain.headers, path
        assert plain.headers["Vary"] == "Accept-Encoding" and int(plain.headers["Content-Length"]) == len(body)
        assert wanted is None or body == wanted, path
        wanted = body
        sizes, tags = {"identity": len(body)}, {plain.headers["ETag"]}
        for coding in ("gzip", "br"):
            resp, packed = await fetch(app_client, path, coding)
            assert resp.status == 200 and resp.headers["Content-Encoding"] == coding, (path, coding)
            assert resp.headers["Vary"] == "Accept-Encoding" and DECODE[coding](packed) == wanted, (path, coding)
            assert resp.headers["Content-Type"] == plain.headers["Content-Type"], path
            assert resp.headers["Cache-Control"] == plain.headers["Cache-Control"], path
            assert resp.headers["Content-Security-Policy"] == plain.headers["Content-Security-Policy"], path
            sizes[coding] = len(packed)
            tags.add(resp.headers["ETag"])
            # the copy a browser holds, in whichever coding, is still current
            again, nothing = await fetch(app_client, path, coding, **{"If-None-Match": resp.headers["ETag"]})
            assert again.status == 304 and nothing == b"" and again.headers["ETag"] == resp.headers["ETag"], path
        assert len(tags) == 3, path  # each coding is a representation of its own, with its own strong ETag
        assert sizes["br"] <= sizes["gzip"] < sizes["identity"], (path, sizes)
        for coding in totals:
            totals[coding] += sizes[coding]
        print(f"{path:52} {sizes['identity']:8} {sizes['gzip']:8} {sizes['br']:8}")
    print(f"{'all':52} {totals['identity']:8} {totals['gzip']:8} {totals['br']:8}")
    assert totals["br"] < totals["identity"] * 0.3 and totals["gzip"] < totals["identity"] * 0.35


@pytest.mark.parametrize(("accept", "coding"), [
    ("gzip, deflate, br, zstd", "br"),       # chromium
    ("gzip, deflate", "gzip"),               # aiohttp, curl --compressed without brotli
    ("br;q=0.5, gzip", "gzip"),              # her preference wins over ours
    ("gzip;q=0, br;q=0", None),              # q=0 is "not acceptable", not a mention
    ("GZIP", "gzip"),                        # codings are case-insensitive
    ("*", "br"),
    ("br;q=0, *;q=0.1", "gzip"),
    ("identity", None),
    ("", None),
    ("deflate, zstd", None),
    ("br;q=junk, gzip", "gzip"),
])
async def test_the_coding_is_negotiated_by_accept_encoding_weights(app_client, accept, coding):
    resp, body = await fetch(app_client, "/console/assets/vendor/leaflet/leaflet.js", accept)
    assert resp.status == 200 and resp.headers.get("Content-Encoding") == coding
    assert DECODE.get(coding, bytes)(body) == (STATIC / "vendor/leaflet/leaflet.js").read_bytes()


async def test_pictures_are_not_compressed_again_and_a_head_has_no_body(app_client):
    for path in ("/console/assets/vendor/leaflet/images/marker-icon.png", "/app/icon-192.png"):
        resp, body = await fetch(app_client, path, "gzip, br")
        assert resp.status == 200 and "Content-Encoding" not in resp.headers and "Vary" not in resp.headers
        assert resp.headers["Content-Type"] == "image/png" and body[:8] == b"\x89PNG\r\n\x1a\n"
    head = await app_client.head("/app/app.js", headers={"Accept-Encoding": "br"})
    assert head.status == 200 and head.headers["Content-Encoding"] == "br" and await head.read() == b""


async def on_the_wire(page, base: str, finished: list) -> dict[str, tuple[int, int]]:
    """Bytes on the wire and decoded for every text file the page loaded; each must have come brotli-coded."""
    seen = {}
    for request in finished:
        response = await request.response()
        path = request.url.removeprefix(base).split("?")[0]
        if response is None or response.status != 200 or not path.endswith(("/", *TEXT)) or path.endswith(".svg"):
            continue  # the favicon is fetched by the browser itself, which reports no sizes for it
        assert (await response.all_headers()).get("content-encoding") == "br", path
        seen[path] = ((await request.sizes())["responseBodySize"], len(await response.body()))
    return seen


@pytest.mark.browser
async def test_chromium_gets_the_console_and_the_phone_app_compressed_and_both_work(settings, clock, db):
    await seed_responders(db)
    await add_officer(db, clock.now(), "pol1", "pol-1")
    server = await start_server(settings, clock)
    base = str(server.make_url("")).rstrip("/")
    alert_id = await raise_alert(base, settings, await enrol(db, clock.now()), clock.now())
    errors: list[str] = []
    try:
        async with async_playwright() as pw:
            chromium = await pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
            context = await chromium.new_context(viewport={"width": 1280, "height": 800}, locale="en-US")

            async def open_page(path: str):
                page = await context.new_page()
                page.on("pageerror", lambda exc: errors.append(str(exc)))
                page.on("console", lambda msg: msg.type == "error" and errors.append(msg.text))
                finished: list = []
                page.on("requestfinished", lambda r: finished.append(r))
                await page.goto(f"{base}{path}")
                return page, finished

            console, finished = await open_page("/console/")
            await console.fill("#username", "pol1")
            await console.fill("#password", PASSWORD)
            await console.click("#signin-submit")
            await expect(console.locator("#conn")).to_have_class(re.compile("conn-live"))
            await console.evaluate(f"location.hash = '#/alert/{alert_id}'")
            await expect(console.locator("#map path.accuracy")).to_have_count(1)  # leaflet.js ran
            seen = await on_the_wire(console, base, finished)

            phone, finished = await open_page("/app/")
            for key in ("6", "*", "7", "="):
                await phone.click(f'#keys [data-k="{key}"]')
            await expect(phone.locator("#out")).to_have_text("42")
            await phone.wait_for_load_state("networkidle")
            seen.update(await on_the_wire(phone, base, finished))
            await chromium.close()
    finally:
        await server.close()
    print()
    for path, (wire, decoded) in seen.items():
        print(f"chromium {path:50} {wire:8} bytes on the wire, {decoded:8} decoded")
        assert 0 < wire < decoded, path
    wire, decoded = (sum(sizes) for sizes in zip(*seen.values(), strict=True))
    print(f"chromium: {len(seen)} files, {wire} bytes on the wire for {decoded} bytes")
    assert {"/console/", "/console/assets/vendor/leaflet/leaflet.js", "/app/", "/app/app.js"} <= seen.keys()
    assert wire < decoded * 0.3
    assert errors == [], errors
