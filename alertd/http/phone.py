"""The phone app channel: raise an alert, send location fixes, cancel with a PIN."""

from __future__ import annotations

from datetime import UTC, datetime

from aiohttp import web

from alertd.core.model import LOCATION_SOURCES, Invalid, Location
from alertd.http.errors import ApiError, json_body
from alertd.http.keys import CTX, INTAKE, METRICS, POOL
from alertd.http.security import client_address, principal
from alertd.service import cancelling, intake
from alertd.service.intake import NewAlert

routes = web.RouteTableDef()
MAX_FIXES = 100


def _time(value, name: str, default: datetime | None = None) -> datetime:
    if value is None and default is not None:
        return default
    if not isinstance(value, str):
        raise ApiError(400, "malformed", f"{name} must be an ISO 8601 timestamp")
    try:
        when = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise ApiError(400, "malformed", f"{name} is not an ISO 8601 timestamp") from None
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def _number(doc: dict, name: str, required: bool = True) -> float | None:
    value = doc.get(name)
    if value is None and not required:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ApiError(400, "malformed", f"location.{name} must be a number")
    return float(value)


def parse_location(doc, now: datetime) -> Location:
    if not isinstance(doc, dict):
        raise ApiError(400, "malformed", "location must be an object")
    source = doc.get("source", "gps")
    if source not in LOCATION_SOURCES:
        raise ApiError(400, "malformed", f"location.source must be one of {', '.join(LOCATION_SOURCES)}")
    try:
        return Location(lat=_number(doc, "lat"), lon=_number(doc, "lon"),
                        accuracy_m=_number(doc, "accuracy_m", required=False), source=source,
                        fix_time=_time(doc.get("fix_time"), "location.fix_time", default=now))
    except Invalid as exc:
        raise ApiError(400, "malformed", exc.message) from None


@routes.post("/v1/alerts")
async def raise_alert(request: web.Request) -> web.Response:
    who = await principal(request, "device", allow_expired_device=True)  # a stale token still raises her alert
    ctx = request.app[CTX]
    body = await json_body(request)
    now = ctx.clock.now()
    if not isinstance(body, dict):
        raise ApiError(400, "malformed", "body must be a JSON object")
    client_alert_id = body.get("client_alert_id")
    if not isinstance(client_alert_id, str) or not 1 <= len(client_alert_id) <= 100:
        raise ApiError(400, "malformed", "client_alert_id must be a string of 1 to 100 characters")
    triggered_at = _time(body.get("triggered_at"), "triggered_at", default=now)
    location = parse_location(body["location"], now) if body.get("location") is not None else None
    raised = await request.app[INTAKE].submit(NewAlert(
        person_id=who.person_id, device_id=who.device_id, channel="app", client_alert_id=client_alert_id,
        triggered_at=triggered_at, location=location, stale_token=who.expired))
    request.app[METRICS].alerts_received.labels("app", raised.made).inc()
    # A repeat joining her open alert is answered as an alert (201, that alert's id): her alert is never refused.
    return web.json_response({"alert_id": raised.alert_id, "status": raised.status},
                             status=200 if raised.made == "duplicate" else 201)


@routes.post("/v1/alerts/{id}/locations")
async def add_locations(request: web.Request) -> web.Response:
    who = await principal(request, "device", allow_expired_device=True)  # only to its own alert (see intake)
    ctx = request.app[CTX]
    body = await json_body(request)
    now = ctx.clock.now()
    docs = body if isinstance(body, list) else body.get("fixes", [body]) if isinstance(body, dict) else None
    if not isinstance(docs, list) or not 1 <= len(docs) <= MAX_FIXES:
        raise ApiError(400, "malformed", f"send one fix or a list of 1 to {MAX_FIXES} fixes")
    fixes = [parse_location(d, now) for d in docs]
    result = await intake.add_locations(request.app[POOL], ctx, alert_id=request.match_info["id"],
                                        person_id=who.person_id, fixes=fixes, device_id=who.device_id,
                                        stale_token=who.expired, source=f"http:{client_address(request)}")
    return web.json_response(result)


@routes.post("/v1/alerts/{id}/cancel")
async def cancel(request: web.Request) -> web.Response:
    who = await principal(request, "device", allow_expired_device=True)  # only its own alert (see cancelling)
    body = await json_body(request)
    pin = body.get("pin") if isinstance(body, dict) else None
    if not isinstance(pin, str) or not 1 <= len(pin) <= 64:
        raise ApiError(400, "malformed", "pin must be a string")
    result = await cancelling.cancel(request.app[POOL], request.app[CTX], alert_id=request.match_info["id"],
                                     person_id=who.person_id, pin=pin, source=f"http:{client_address(request)}",
                                     device_id=who.device_id, stale_token=who.expired)
    return web.json_response(result)
