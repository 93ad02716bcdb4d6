"""The officer API: their dispatches, acknowledge, status, and an audited read of an alert."""

from __future__ import annotations

from aiohttp import web

from alertd.core.model import DISPATCH_STATUSES, OFFICER_STATUSES
from alertd.http.errors import ApiError, json_body
from alertd.http.keys import CTX, POOL
from alertd.http.security import client_address, principal
from alertd.service import officer

routes = web.RouteTableDef()
OFFICERS = ("officer", "supervisor")


@routes.get("/v1/dispatches")
async def list_dispatches(request: web.Request) -> web.Response:
    who = await principal(request, *OFFICERS)
    status = request.query.get("status")
    if status is not None and status not in DISPATCH_STATUSES:
        raise ApiError(400, "malformed", f"status must be one of {', '.join(DISPATCH_STATUSES)}")
    items = await officer.list_dispatches(request.app[POOL], who.responder_id, status)
    return web.json_response({"items": items})


@routes.post("/v1/dispatches/{id}/ack")
async def acknowledge(request: web.Request) -> web.Response:
    who = await principal(request, *OFFICERS)
    result = await officer.acknowledge(request.app[POOL], request.app[CTX], request.match_info["id"],
                                       responder_id=who.responder_id, actor=who.actor)
    return web.json_response(result)


@routes.post("/v1/dispatches/{id}/status")
async def set_status(request: web.Request) -> web.Response:
    who = await principal(request, *OFFICERS)
    body = await json_body(request)
    status = body.get("status") if isinstance(body, dict) else None
    note = body.get("note") if isinstance(body, dict) else None
    if status not in OFFICER_STATUSES:
        raise ApiError(400, "malformed", f"status must be one of {', '.join(OFFICER_STATUSES)}")
    if note is not None and (not isinstance(note, str) or len(note) > 2000):
        raise ApiError(400, "malformed", "note must be a string of at most 2000 characters")
    result = await officer.set_status(request.app[POOL], request.app[CTX], request.match_info["id"], status,
                                      responder_id=who.responder_id, actor=who.actor, note=note)
    return web.json_response(result)


@routes.get("/v1/alerts/{id}")
async def get_alert(request: web.Request) -> web.Response:
    who = await principal(request, *OFFICERS, "admin")
    scope = None if who.role == "admin" else who.responder_id
    result = await officer.get_alert(request.app[POOL], request.app[CTX], request.match_info["id"],
                                     actor=who.actor, responder_id=scope, source=f"http:{client_address(request)}")
    return web.json_response(result)
