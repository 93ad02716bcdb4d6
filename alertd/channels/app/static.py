"""The survivor phone app (site/ beside this file) at /app/, and the enrolment code exchange behind it."""

from __future__ import annotations

import functools
from pathlib import Path

from aiohttp import web

from alertd.core.validate import Obj, Text
from alertd.service import enrol_codes
from alertd.service.timeline import security_event
from alertd.web import static
from alertd.web.errors import ApiError, json_body
from alertd.web.keys import CTX, POOL
from alertd.web.security import client_address

routes = web.RouteTableDef()
ENROL = Obj({"code": Text(1, 32)}, required=("code",))
APP_DIR = Path(__file__).resolve().parent / "site"

CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; "
       "manifest-src 'self'; worker-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Permissions-Policy": "geolocation=(self), camera=(), microphone=(), payment=(), usb=()",
}
# The service worker keeps its own cache, so the browser cache only revalidates (ETag) the text files: a new
# release reaches the phone on its next start. Icons never change under the same name.
REVALIDATE = "no-cache"
LONG = "public, max-age=604800"


@functools.cache
def assets(directory: Path = APP_DIR) -> dict[str, static.Asset]:
    """Every file of the app, read and compressed once; a name not in here is a 404."""
    return {path.name: static.Asset.of(path.read_bytes(), path.suffix)
            for path in sorted(directory.iterdir())
            if path.is_file() and not path.name.startswith(".") and path.suffix in static.TYPES}


async def _serve(request: web.Request, name: str) -> web.Response:
    await static.ready(request)
    asset = assets().get(name)
    if asset is None:
        raise web.HTTPNotFound()
    cache = LONG if asset.content_type.startswith("image/png") else REVALIDATE
    return static.respond(request, asset, {**SECURITY_HEADERS, "Cache-Control": cache})


@routes.get("/app")
async def app_root(_request: web.Request) -> web.Response:
    raise web.HTTPMovedPermanently("/app/")


@routes.get("/app/")
async def app_index(request: web.Request) -> web.Response:
    return await _serve(request, "index.html")


@routes.get("/app/{name}")
async def app_file(request: web.Request) -> web.Response:
    return await _serve(request, request.match_info["name"])


@routes.post("/v1/enrol")
async def enrol(request: web.Request) -> web.Response:
    """Exchange a one-time enrolment code for the phone's device token (no bearer token needed)."""
    ctx = request.app[CTX]
    code = (await json_body(request, ENROL))["code"]
    now = ctx.clock.now()
    async with request.app[POOL].acquire() as conn:
        redeemed = await enrol_codes.redeem(conn, ctx.settings, now, code)
        if redeemed is None:
            await security_event(conn, now, "bad_enrolment_code", f"http:{client_address(request)}", path=request.path)
            raise ApiError(401, "unauthorized", "this code is unknown, used or expired")
    return web.json_response({"device_id": redeemed.device_id, "token": redeemed.token,
                              "sms_number": ctx.settings.twilio_from_number or None},
                             headers={"Cache-Control": "no-store"})
