"""Drills for supervisors and admins (docs/drills.md): start one at a point or a person, list them, read a report,
end one. A supervisor acts only in their own region; an officer may not drill at all."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from alertd.auth import Principal
from alertd.core import validate
from alertd.core.validate import Number, Obj, Text, Timestamp
from alertd.service import drills
from alertd.web.errors import json_body
from alertd.web.keys import CTX, METRICS, POOL
from alertd.web.security import client_address, principal

routes = web.RouteTableDef()
ROLES = ("supervisor", "admin")
POINT = Obj({"lat": Number(-90, 90, description="where the drill alert is"), "lon": Number(-180, 180)},
            required=("lat", "lon"))
PERSON = Obj({"person_id": Text(1, 100, description="a drill at her last known fix, else her home; she is never "
                                                     "contacted")}, required=("person_id",))


class DrillTarget(validate.Field):
    """`{lat, lon}` or `{person_id}`, never both."""

    def parse(self, value: Any, name: str = "body") -> dict[str, Any]:
        if isinstance(value, dict) and value.get("person_id") is not None:
            if value.get("lat") is not None or value.get("lon") is not None:
                raise validate.Malformed(name, "gives lat and lon, or person_id, not both")
            return {"lat": None, "lon": None, **PERSON.parse(value, name)}
        return {**POINT.parse(value, name), "person_id": None}

    def json_schema(self) -> dict:
        point, person = POINT.json_schema(), PERSON.json_schema()
        point["properties"]["person_id"] = {"type": "null"}
        person["properties"].update(lat={"type": "null"}, lon={"type": "null"})
        return {"oneOf": [point, person]}


NEW_DRILL = DrillTarget()
PERIOD = {"since": Timestamp(description="drills started from then (default: 30 days ago)"),
          "until": Timestamp(description="drills started before then (default: now)"),
          "region": Text(1, 100, description="an admin's choice of region; a supervisor always sees their own")}
NO_STORE = {"Cache-Control": "no-store"}


def _scope(request: web.Request, who: Principal) -> drills.Scope:
    """An admin anywhere; a supervisor in their region only (one without a region: nowhere)."""
    region = None if who.role == "admin" else (who.region or "")
    return drills.Scope(who.actor, region, f"http:{client_address(request)}")


@routes.post("/v1/drills")
async def start(request: web.Request) -> web.Response:
    who = await principal(request, *ROLES)
    body = NEW_DRILL.parse(await json_body(request))
    started = await drills.start(request.app[POOL], request.app[CTX], _scope(request, who), lat=body["lat"],
                                 lon=body["lon"], person_id=body["person_id"])
    request.app[METRICS].drills_started.inc()
    return web.json_response(started, status=201, headers=NO_STORE)


@routes.get("/v1/drills")
async def period(request: web.Request) -> web.Response:
    who = await principal(request, *ROLES)
    asked = validate.query(request.query, PERIOD)
    ctx = request.app[CTX]
    since = asked["since"] or ctx.clock.now() - drills.DEFAULT_PERIOD
    result = await drills.period(request.app[POOL], ctx, _scope(request, who), since=since, until=asked["until"],
                                 region=asked["region"])
    return web.json_response(result, headers=NO_STORE)


@routes.get("/v1/drills/{id}")
async def report(request: web.Request) -> web.Response:
    who = await principal(request, *ROLES)
    result = await drills.report(request.app[POOL], request.app[CTX], _scope(request, who), request.match_info["id"])
    return web.json_response(result, headers=NO_STORE)


@routes.post("/v1/drills/{id}/end")
async def end(request: web.Request) -> web.Response:
    who = await principal(request, *ROLES)
    result = await drills.end(request.app[POOL], request.app[CTX], _scope(request, who), request.match_info["id"])
    return web.json_response(result, headers=NO_STORE)
