"""The duty officer console: static files under a strict CSP, sign-in and sessions, supervisor and admin APIs."""

from __future__ import annotations

import hashlib
import re
from functools import lru_cache
from pathlib import Path

from aiohttp import web

from alertd.core import validate
from alertd.core.validate import Boolean, Choice, Obj, Text
from alertd.service import dispatch_actions, officer_accounts, places, proofs
from alertd.store import queries
from alertd.web import static
from alertd.web.errors import ApiError, error_response, json_body
from alertd.web.keys import CTX, POOL
from alertd.web.security import client_address, principal

routes = web.RouteTableDef()
STATIC = Path(__file__).resolve().parent / "site"

# Everything the console needs comes from alertd itself: no CDN, no inline script or style, no framing.
CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
       "font-src 'self'; media-src 'self'; manifest-src 'self'; base-uri 'none'; form-action 'none'; "
       "frame-ancestors 'none'")
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
    "Permissions-Policy": "geolocation=(), camera=(), microphone=()",
}
NO_STORE = {"Cache-Control": "no-store"}
_ASSET = re.compile(r"^[a-z0-9_-]+(/[a-z0-9_-]+)*(\.[a-z0-9]+)+$", re.IGNORECASE)
_TILE = re.compile(r"^\d{1,2}/\d{1,7}/\d{1,7}\.png$")

SIGN_IN = Obj({"username": Text(0, 256), "password": Text(0, 1024)}, required=("username", "password"))
LANGUAGE = Obj({"language": Choice(officer_accounts.LANGUAGES)}, required=("language",))
# A reason is 3 to 500 characters, at least one of them not blank: it is read in the audit log.
REVEAL = Obj({"reason": Text(3, 500, pattern=r"[^\u0000]*[^\u0000 \t\n\r][^\u0000]*")}, required=("reason",))
REGION = Text(1, 100)
# A map's bounds as Leaflet's toBBoxString() writes them: west,south,east,north in degrees.
_DEGREES = r"-?\d{1,3}(?:\.\d{1,12})?"
BBOX = Text(7, 120, pattern=rf"{_DEGREES}(?:,{_DEGREES}){{3}}")
MAP_LABELS = 150  # the most populous places of a view: more would cover the map
_ACCOUNT = {"password": Text(10, 256), "responder_id": Text(1, 100), "role": Choice(officer_accounts.ROLES),
            "language": Choice(officer_accounts.LANGUAGES)}
NEW_ACCOUNT = Obj({"username": Text(2, 63, pattern=r"[A-Za-z0-9][A-Za-z0-9._@-]{1,62}"), **_ACCOUNT},
                  required=("username", "password", "responder_id"))
ACCOUNT_CHANGE = Obj({**_ACCOUNT, "disabled": Boolean()})


@lru_cache(maxsize=1)
def asset_version() -> str:
    """A hash of every console file: index.html links assets with ?v=<hash>, so they may be cached for long."""
    digest = hashlib.sha256()
    for path in sorted(STATIC.rglob("*")):
        if path.is_file():
            digest.update(path.relative_to(STATIC).as_posix().encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


@lru_cache(maxsize=1)
def assets() -> dict[str, static.Asset]:
    """Every console file by its path under the console folder, read and compressed once; index.html apart."""
    return {name: static.Asset.of(path.read_bytes(), path.suffix)
            for path in sorted(STATIC.rglob("*"))
            if path.is_file() and _ASSET.match(name := path.relative_to(STATIC).as_posix())
            and name != "index.html"}


@lru_cache(maxsize=1)
def index() -> static.Asset:
    """The page, linking every file with the current ?v=, compressed once."""
    return static.Asset.of((STATIC / "index.html").read_text().replace("{{v}}", asset_version()).encode(), ".html")


def _json(data, status: int = 200) -> web.Response:
    return web.json_response(data, status=status, headers=NO_STORE)


@routes.get("/console")
async def console_redirect(_request: web.Request) -> web.Response:
    raise web.HTTPPermanentRedirect("/console/")


@routes.get("/console/")
async def console_index(request: web.Request) -> web.Response:
    await static.ready(request)
    return static.respond(request, index(), {**SECURITY_HEADERS, "Cache-Control": "no-cache"})


@routes.get("/console/assets/{path:.+}")
async def console_asset(request: web.Request) -> web.Response:
    """A console file; with the current ?v= it is immutable for a year, otherwise revalidated (ETag)."""
    await static.ready(request)
    asset = assets().get(request.match_info["path"])
    if asset is None:
        raise web.HTTPNotFound()
    cache = ("public, max-age=31536000, immutable" if request.query.get("v") == asset_version()
             else "no-cache")
    return static.respond(request, asset, {**SECURITY_HEADERS, "Cache-Control": cache})


@routes.get("/console/tiles/{path:.+}")
async def console_tile(request: web.Request) -> web.StreamResponse:
    """Map tiles from <data dir>/tiles/{z}/{x}/{y}.png when an operator put some there (nothing from the internet)."""
    name = request.match_info["path"]
    path = Path(request.app[CTX].settings.data_dir) / "tiles" / name
    if not _TILE.match(name) or not path.is_file():
        raise web.HTTPNotFound()
    return web.FileResponse(path, headers={"Cache-Control": "public, max-age=86400",
                                           "X-Content-Type-Options": "nosniff"})


def _signed_in(result: officer_accounts.SignedIn, now) -> web.Response:
    return _json({"token": result.token, "expires_at": result.expires_at.isoformat(),
                  "session_expires_at": result.session_expires_at.isoformat(),
                  "now": now.isoformat(), "officer": result.officer})


@routes.post("/console/api/session")
async def sign_in(request: web.Request) -> web.Response:
    body = await json_body(request, SIGN_IN)
    username, password = body["username"], body["password"]
    ctx = request.app[CTX]
    try:
        result = await officer_accounts.sign_in(request.app[POOL], ctx, username, password, client_address(request))
    except officer_accounts.TooManyAttempts as exc:
        response = error_response(429, exc.code, exc.message)
        response.headers["Retry-After"] = str(exc.retry_after_s)
        return response
    return _signed_in(result, ctx.clock.now())


@routes.post("/console/api/session/renew")
async def renew(request: web.Request) -> web.Response:
    who = await principal(request, *officer_accounts.ROLES)
    ctx = request.app[CTX]
    result = await officer_accounts.renew(request.app[POOL], ctx, who.session_id)
    return _signed_in(result, ctx.clock.now())


@routes.delete("/console/api/session")
async def sign_out(request: web.Request) -> web.Response:
    who = await principal(request, *officer_accounts.ROLES)
    await officer_accounts.sign_out(request.app[POOL], request.app[CTX], who.session_id)
    return _json({"signed_out": True})


@routes.get("/console/api/me")
async def me(request: web.Request) -> web.Response:
    """Who is signed in, and the server's clock (countdowns run on it, not on the officer's PC clock)."""
    who = await principal(request, *officer_accounts.ROLES, "admin")
    ctx = request.app[CTX]
    async with request.app[POOL].acquire() as conn:
        row = await conn.fetchrow(queries.get_officer, who.sub)
    account = officer_accounts.profile(row) if row is not None else {
        "username": who.sub, "role": who.role, "responder_id": who.responder_id, "region": who.region,
        "language": "ru"}
    account.update(role=who.role, responder_id=who.responder_id, region=who.region)
    tiles = (Path(ctx.settings.data_dir) / "tiles").is_dir()
    return _json({"now": ctx.clock.now().isoformat(), "officer": account, "tiles": tiles})


@routes.patch("/console/api/me")
async def set_language(request: web.Request) -> web.Response:
    who = await principal(request, *officer_accounts.ROLES)
    language = (await json_body(request, LANGUAGE))["language"]
    async with request.app[POOL].acquire() as conn:
        account = await officer_accounts.update(conn, request.app[CTX].clock.now(), who.sub, language=language)
    return _json({"officer": account})


@routes.get("/console/api/alerts/{id}")
async def alert(request: web.Request) -> web.Response:
    """The alert view (an audited read): an officer sees alerts dispatched to them, a supervisor their region's."""
    who = await principal(request, *officer_accounts.ROLES, "admin")
    alert_id = request.match_info["id"]
    pool, ctx = request.app[POOL], request.app[CTX]
    result = await dispatch_actions.get_alert(pool, ctx, alert_id, actor=who.actor,
                                     responder_id=None if who.role == "admin" else who.responder_id,
                                     region=who.region if who.role == "supervisor" else None,
                                     source=f"http:{client_address(request)}")
    result["responders"] = await officer_accounts.dispatched_responders(pool, result["alert_id"])
    async with pool.acquire() as conn:
        result["channels"] = await proofs.of_person(conn, result["person_id"])  # when each last worked
    result["now"] = ctx.clock.now().isoformat()
    return _json(result)


@routes.get("/console/api/notices")
async def notices(request: web.Request) -> web.Response:
    """Button supervision notices addressed to the caller's responder (as a survivor's caseworker)."""
    who = await principal(request, *officer_accounts.ROLES)
    items = await officer_accounts.responder_notices(request.app[POOL], request.app[CTX].clock.now(), who.responder)
    return _json({"items": items})


@routes.get("/console/api/caseload")
async def caseload(request: web.Request) -> web.Response:
    """The people whose buttons name the caller's responder as caseworker: when each of her channels last worked."""
    who = await principal(request, *officer_accounts.ROLES)
    return _json({"items": await proofs.caseload(request.app[POOL], who.responder)})


@routes.get("/console/api/region")
async def region(request: web.Request) -> web.Response:
    who = await principal(request, "supervisor", "admin")
    asked = validate.query(request.query, {"region": REGION})["region"]
    name = who.region if who.role == "supervisor" else asked
    if not name:  # an admin names one; a supervisor without a region has none to see
        raise ApiError(404, "not_found", "no region given (?region=NAME)")
    return _json(await officer_accounts.region_view(request.app[POOL], request.app[CTX].clock.now(), name))


@routes.get("/console/api/places")
async def map_places(request: web.Request) -> web.Response:
    """Named places inside a map view (?bbox=west,south,east,north), the most populous first: labels for the offline
    map. Public gazetteer data; a box beyond the globe is clipped to it, never refused."""
    await principal(request, *officer_accounts.ROLES, "admin")
    bbox = validate.query(request.query, {"bbox": BBOX})["bbox"]
    if bbox is None:
        raise validate.Malformed("bbox", "is required (west,south,east,north)")
    west, south, east, north = (float(v) for v in bbox.split(","))
    west, east = (max(-180.0, min(180.0, v)) for v in sorted((west, east)))
    south, north = (max(-90.0, min(90.0, v)) for v in sorted((south, north)))
    async with request.app[POOL].acquire() as conn:
        items = await places.within(conn, west, south, east, north, MAP_LABELS)
    return _json({"items": items, "attribution": "GeoNames (geonames.org), CC BY 4.0"})


@routes.post("/console/api/alerts/{id}/reveal")
async def reveal(request: web.Request) -> web.Response:
    """Admin only: the survivor's phone numbers, with a reason; the reveal is in the audit log."""
    who = await principal(request, "admin")
    reason = (await json_body(request, REVEAL))["reason"]
    result = await officer_accounts.reveal_contact(request.app[POOL], request.app[CTX].clock.now(), actor=who.actor,
                                           alert_id=request.match_info["id"], reason=reason.strip())
    return _json(result)


@routes.get("/console/api/officers")
async def list_officers(request: web.Request) -> web.Response:
    await principal(request, "admin")
    async with request.app[POOL].acquire() as conn:
        return _json({"items": await officer_accounts.list_all(conn)})


def _given(fields: dict) -> dict:
    return {name: value for name, value in fields.items() if value is not None}


@routes.post("/console/api/officers")
async def add_officer(request: web.Request) -> web.Response:
    who = await principal(request, "admin")
    fields = _given(await json_body(request, NEW_ACCOUNT))
    now = request.app[CTX].clock.now()
    async with request.app[POOL].acquire() as conn:
        account = await officer_accounts.add(conn, now, **fields)
        await conn.execute(queries.insert_audit, now, who.actor, "officer_added", None,
                           {"username": account["username"], "role": account["role"],
                            "responder_id": account["responder_id"]})
    return _json(account, status=201)


@routes.patch("/console/api/officers/{username}")
async def change_officer(request: web.Request) -> web.Response:
    who = await principal(request, "admin")
    fields = _given(await json_body(request, ACCOUNT_CHANGE))
    now = request.app[CTX].clock.now()
    username = request.match_info["username"]
    async with request.app[POOL].acquire() as conn:
        account = await officer_accounts.update(conn, now, username, **fields)
        await conn.execute(queries.insert_audit, now, who.actor, "officer_changed", None,
                           {"username": username, "fields": sorted(k for k in fields if k != "password"),
                            "password_changed": "password" in fields})
    return _json(account)
