"""Static files served from memory: each compressed once (brotli and gzip), the coding chosen by Accept-Encoding.

The console and the phone app are a few hundred kilobytes that change only with a release, so each process reads
and compresses them once, in a worker thread as it starts (about 0.7 s of one core), and never per request. A
client that accepts neither coding gets the file as it is. Every coding of a file has its own strong ETag (the same
bytes always give the same tag, on every instance); a client holding any coding of the current file gets a 304.
"""

from __future__ import annotations

import asyncio
import gzip
import hashlib
import mimetypes
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import brotli
from aiohttp import hdrs, web
from aiohttp.helpers import ETAG_ANY

TYPES = {".html": "text/html", ".js": "text/javascript", ".css": "text/css", ".svg": "image/svg+xml",
         ".webmanifest": "application/manifest+json", ".json": "application/json", ".png": "image/png"}
# Text compresses to a quarter or a third; PNG is compressed already.
COMPRESSIBLE = {".html", ".js", ".css", ".svg", ".webmanifest", ".json"}
# At equal preference the smaller coding wins: brotli, then gzip. Quality 11 costs about 0.6 s for leaflet.js,
# once per process in a worker thread, and saves 14% on gzip -9.
CODINGS: dict[str, Callable[[bytes], bytes]] = {
    "br": lambda body: brotli.compress(body, quality=11),
    "gzip": lambda body: gzip.compress(body, 9, mtime=0),
}
ETAG_SUFFIX = {"identity": "", "br": "-br", "gzip": "-gz"}


@dataclass(frozen=True)
class Asset:
    """One file, as it is and in each coding that makes it smaller."""

    content_type: str
    bodies: Mapping[str, bytes]  # "identity", and "br" / "gzip" where they are smaller
    etags: Mapping[str, str]

    @classmethod
    def of(cls, body: bytes, suffix: str) -> Asset:
        kind = TYPES.get(suffix) or mimetypes.guess_type("x" + suffix)[0] or "application/octet-stream"
        text = suffix in COMPRESSIBLE
        bodies = {"identity": body}
        if text:
            for coding, compress in CODINGS.items():
                packed = compress(body)
                if len(packed) < len(body):
                    bodies[coding] = packed
        tag = hashlib.sha256(body).hexdigest()[:20]
        return cls(content_type=kind + ("; charset=utf-8" if text and kind.startswith("text/") else ""),
                   bodies=bodies, etags={coding: f'"{tag}{ETAG_SUFFIX[coding]}"' for coding in bodies})


def accepted(header: str) -> dict[str, float]:
    """The codings an Accept-Encoding header names, with their weights (RFC 9110 §12.5.3); junk weighs 0."""
    weights: dict[str, float] = {}
    for item in header.lower().split(","):
        coding, *params = (part.strip() for part in item.split(";"))
        if not coding:
            continue
        q = 1.0
        for param in params:
            name, _, value = param.partition("=")
            if name.strip() == "q":
                try:
                    q = min(max(float(value), 0.0), 1.0)
                except ValueError:
                    q = 0.0
        weights[coding] = q
    return weights


def choose(asset: Asset, accept_encoding: str) -> str:
    """The coding to send: the client's most preferred one this file has; the file as it is when none."""
    weights = accepted(accept_encoding)
    best, best_q = "identity", 0.0
    for coding in CODINGS:
        q = weights.get(coding, weights.get("*", 0.0))
        if coding in asset.bodies and q > best_q:
            best, best_q = coding, q
    return best


def respond(request: web.Request, asset: Asset, headers: Mapping[str, str]) -> web.Response:
    """The asset for this request: 304 when the client holds any coding of it, else the best coding."""
    out = dict(headers)
    if len(asset.bodies) > 1:
        out[hdrs.VARY] = hdrs.ACCEPT_ENCODING
    coding = choose(asset, request.headers.get(hdrs.ACCEPT_ENCODING, ""))
    held = {tag.value for tag in (request.if_none_match or ())}
    if ETAG_ANY in held:
        held.add(asset.etags[coding].strip('"'))
    for etag in asset.etags.values():
        if etag.strip('"') in held:  # every coding decodes to the same bytes: the copy held is current
            out[hdrs.ETAG] = etag
            return web.Response(status=304, headers=out)
    out[hdrs.ETAG] = asset.etags[coding]
    out[hdrs.CONTENT_TYPE] = asset.content_type
    if coding != "identity":
        out[hdrs.CONTENT_ENCODING] = coding
    return web.Response(body=asset.bodies[coding], headers=out)


READY = web.AppKey("static_ready", asyncio.Future)


def setup(app: web.Application, *loaders: Callable[[], object]) -> None:
    """Fill the cached file tables in a worker thread as the app starts, without holding up its start (alerts
    are taken at once); a request for a file waits for them instead of compressing on the event loop."""

    async def start(app: web.Application) -> None:
        app[READY] = asyncio.get_running_loop().run_in_executor(None, lambda: [load() for load in loaders])

    app.on_startup.append(start)


async def ready(request: web.Request) -> None:
    """Wait until the file tables are filled (at once after the first second of a process)."""
    filled = request.app.get(READY)
    if filled is not None and not filled.done():
        await asyncio.shield(filled)
