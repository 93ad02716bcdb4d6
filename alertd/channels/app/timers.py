"""The phone app's check-in timers: start, extend, check in with the PIN, read (device token of her phone)."""

from __future__ import annotations

from aiohttp import web

from alertd.channels.app.http import FIX, to_location
from alertd.core.validate import Integer, Obj, Text
from alertd.service import timers
from alertd.web.errors import json_body
from alertd.web.keys import CTX, POOL
from alertd.web.security import client_address, principal

routes = web.RouteTableDef()

DURATION = Integer(timers.MIN_DURATION_S, timers.MAX_DURATION_S,
                   description="seconds: 60 (1 min) to 86400 (24 h)")
NEW_TIMER = Obj({
    "client_timer_id": Text(1, 100),
    "duration_s": DURATION,
    "location": FIX,
}, required=("client_timer_id", "duration_s"))
EXTEND = Obj({"duration_s": DURATION, "location": FIX}, required=("duration_s",))
CHECK_IN = Obj({"pin": Text(0, 64)}, required=("pin",))


@routes.post("/v1/timers")
async def start(request: web.Request) -> web.Response:
    who = await principal(request, "device")
    ctx = request.app[CTX]
    body = await json_body(request, NEW_TIMER)
    location = to_location(body["location"], ctx.clock.now()) if body["location"] is not None else None
    started = await timers.start(request.app[POOL], ctx, person_id=who.person, device_id=who.device, channel="app",
                                 client_timer_id=body["client_timer_id"], duration_s=body["duration_s"],
                                 location=location)
    return web.json_response(started.answer, status=201 if started.created else 200)


@routes.post("/v1/timers/{id}/extend")
async def extend(request: web.Request) -> web.Response:
    who = await principal(request, "device")
    ctx = request.app[CTX]
    body = await json_body(request, EXTEND)
    location = to_location(body["location"], ctx.clock.now()) if body["location"] is not None else None
    return web.json_response(await timers.extend(request.app[POOL], ctx, timer_id=request.match_info["id"],
                                                 person_id=who.person, duration_s=body["duration_s"],
                                                 location=location))


@routes.post("/v1/timers/{id}/checkin")
async def check_in(request: web.Request) -> web.Response:
    who = await principal(request, "device")
    pin = (await json_body(request, CHECK_IN))["pin"]
    return web.json_response(await timers.check_in(request.app[POOL], request.app[CTX],
                                                   timer_id=request.match_info["id"], person_id=who.person, pin=pin,
                                                   source=f"http:{client_address(request)}"))


@routes.get("/v1/timers/{id}")
async def read(request: web.Request) -> web.Response:
    who = await principal(request, "device")
    return web.json_response(await timers.get(request.app[POOL], timer_id=request.match_info["id"],
                                              person_id=who.person))
