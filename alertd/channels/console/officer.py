"""The officer API: their dispatches, acknowledge, status, and an audited read of an alert."""

from __future__ import annotations

from aiohttp import web

from alertd.core import validate
from alertd.core.model import DISPATCH_STATUSES, OFFICER_STATUSES
from alertd.core.validate import Choice, Obj, Text
from alertd.service import dispatch_actions
from alertd.web.errors import json_body
from alertd.web.keys import CTX, POOL
from alertd.web.security import client_address, principal

routes = web.RouteTableDef()
OFFICERS = ("officer", "supervisor")
STATUS_FILTER = Choice(DISPATCH_STATUSES)
NEW_STATUS = Obj({"status": Choice(OFFICER_STATUSES), "note": Text(0, 2000)}, required=("status",))


@routes.get("/v1/dispatches")
async def list_dispatches(request: web.Request) -> web.Response:
    who = await principal(request, *OFFICERS)
    status = validate.query(request.query, {"status": STATUS_FILTER})["status"]
    items = await dispatch_actions.list_dispatches(request.app[POOL], who.responder, status)
    return web.json_response({"items": items})


@routes.post("/v1/dispatches/{id}/ack")
async def acknowledge(request: web.Request) -> web.Response:
    who = await principal(request, *OFFICERS)
    result = await dispatch_actions.acknowledge(request.app[POOL], request.app[CTX], request.match_info["id"],
                                       responder_id=who.responder_id, actor=who.actor)
    return web.json_response(result)


@routes.post("/v1/dispatches/{id}/status")
async def set_status(request: web.Request) -> web.Response:
    who = await principal(request, *OFFICERS)
    body = await json_body(request, NEW_STATUS)
    result = await dispatch_actions.set_status(request.app[POOL], request.app[CTX], request.match_info["id"],
                                      body["status"], responder_id=who.responder_id, actor=who.actor,
                                      note=body["note"])
    return web.json_response(result)


@routes.get("/v1/alerts/{id}")
async def get_alert(request: web.Request) -> web.Response:
    who = await principal(request, *OFFICERS, "admin")
    scope = None if who.role == "admin" else who.responder_id
    result = await dispatch_actions.get_alert(request.app[POOL], request.app[CTX], request.match_info["id"],
                                     actor=who.actor, responder_id=scope, source=f"http:{client_address(request)}")
    return web.json_response(result)
