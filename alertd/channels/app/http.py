"""The phone app channel: raise an alert, send location fixes, cancel with a PIN."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from aiohttp import web

from alertd import auth
from alertd.core import validate
from alertd.core.model import LOCATION_SOURCES, Location
from alertd.core.validate import Choice, Number, Obj, Text, Timestamp
from alertd.service import cancelling, intake
from alertd.service.intake import NewAlert
from alertd.web.errors import json_body
from alertd.web.keys import BUDGETS, CTX, INTAKE, METRICS, POOL
from alertd.web.security import bearer, client_address, principal, refuse_device

routes = web.RouteTableDef()
MAX_FIXES = 100

FIX = Obj({
    "lat": Number(-90, 90), "lon": Number(-180, 180), "accuracy_m": Number(0, 1_000_000),
    "fix_time": Timestamp(description="when the fix was taken; outside the clock rule's window, the receive time"),
    "source": Choice(LOCATION_SOURCES),
}, required=("lat", "lon"), defaults={"source": "gps"})
NEW_ALERT = Obj({
    "client_alert_id": Text(1, 100),
    "triggered_at": Timestamp(description="when she pressed; outside the clock rule's window, the receive time"),
    "location": FIX,
}, required=("client_alert_id",))
CANCEL = Obj({"pin": Text(0, 64)}, required=("pin",))


class Fixes(validate.Field):
    """One fix, a list of fixes, or {fixes: [...]} (what the app's offline queue sends)."""

    def parse(self, value: Any, name: str = "body") -> list[dict]:
        if isinstance(value, list):
            return self._many(value, name)
        if isinstance(value, dict) and "fixes" in value:
            return self._many(value["fixes"], "fixes")
        return [FIX.parse(value, name)]

    def _many(self, value: Any, name: str) -> list[dict]:
        return validate.ListOf(FIX, 1, MAX_FIXES).parse(value, name)

    def json_schema(self) -> dict:
        many = validate.ListOf(FIX, 1, MAX_FIXES).schema()
        return {"oneOf": [{**FIX.schema(), "not": {"required": ["fixes"]}}, many,
                          {"type": "object", "required": ["fixes"], "properties": {"fixes": many}}]}


FIXES = Fixes()


def to_location(fix: dict, now: datetime) -> Location:
    """A parsed FIX as the core's Location, its time under the clock rule."""
    return Location(lat=fix["lat"], lon=fix["lon"], accuracy_m=fix["accuracy_m"], source=fix["source"],
                    fix_time=validate.believed(fix["fix_time"], now))


def _device_of(request: web.Request) -> str | None:
    """The device a request's token names, if it is a genuinely signed device token (forged ones queue nowhere).
    auth.verify remembers a token that passed, so the handler's principal() does not check it twice."""
    token = bearer(request)
    if token is None:
        return None
    try:
        who = auth.verify(request.app[CTX].settings, token, request.app[CTX].clock.now(), allow_expired_device=True)
    except auth.TokenError:
        return None
    return who.device_id if who.role == "device" else None


@routes.post("/v1/alerts")
async def raise_alert(request: web.Request) -> web.Response:
    # One device's alerts are taken a few at a time: a flood from it waits on its own turns, not in the queues
    # (the database pool) that everyone else's alerts need. Never refused: the rest join her alert in turn.
    async with request.app[BUDGETS].alerts.turn(_device_of(request) if bearer(request) else None):
        return await _raise_alert(request)


async def _raise_alert(request: web.Request) -> web.Response:
    # A stale token still raises her alert. Her device is checked in the transaction that raises it (one
    # statement for the group, instead of a round trip of its own for each request).
    who = await principal(request, "device", allow_expired_device=True, device_checked_later=True)
    ctx = request.app[CTX]
    body = await json_body(request, NEW_ALERT)
    now = ctx.clock.now()
    claimed = body["triggered_at"]
    triggered_at = validate.believed(claimed, now)
    details = {} if claimed is None or claimed == triggered_at else {"client_time": "ignored"}
    location = to_location(body["location"], now) if body["location"] is not None else None
    raised = await request.app[INTAKE].submit(NewAlert(
        person_id=who.person, device_id=who.device, channel="app", client_alert_id=body["client_alert_id"],
        triggered_at=triggered_at, location=location, stale_token=who.expired, details=details,
        device_checked=False))
    if raised.made == "refused":
        raise await refuse_device(request, who)
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
    fixes = [to_location(f, now) for f in FIXES.parse(body)]
    result = await intake.add_locations(request.app[POOL], ctx, alert_id=request.match_info["id"],
                                        person_id=who.person, fixes=fixes, device_id=who.device,
                                        stale_token=who.expired, source=f"http:{client_address(request)}")
    return web.json_response(result)


@routes.post("/v1/alerts/{id}/cancel")
async def cancel(request: web.Request) -> web.Response:
    who = await principal(request, "device", allow_expired_device=True)  # only its own alert (see cancelling)
    pin = (await json_body(request, CANCEL))["pin"]
    result = await cancelling.cancel(request.app[POOL], request.app[CTX], alert_id=request.match_info["id"],
                                     person_id=who.person, pin=pin, source=f"http:{client_address(request)}",
                                     device_id=who.device, stale_token=who.expired)
    return web.json_response(result)

