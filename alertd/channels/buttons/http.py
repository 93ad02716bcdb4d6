"""Engineers provision, rotate and revoke buttons (and unit terminals) over HTTP; secrets are in the answer only."""

from __future__ import annotations

from aiohttp import web

from alertd.core.validate import Malformed, Obj, Text
from alertd.service import provisioning
from alertd.service.ports import BrokerError
from alertd.web.errors import ApiError, json_body
from alertd.web.keys import ACCOUNTS, CTX, POOL
from alertd.web.security import principal

routes = web.RouteTableDef()
ENGINEERS = ("engineer", "admin")
NEW_BUTTON = Obj({"person_id": Text(1, 100), "caseworker_id": Text(1, 100)}, required=("person_id",))
DEVICE_ID = Text(1, 64)


def _device_id(request: web.Request) -> str:
    """The device id in the path; one that cannot exist is 'no such button', like an unknown one."""
    try:
        return DEVICE_ID.parse(request.match_info["id"], "id")
    except Malformed:
        raise ApiError(404, "not_found", "no such button") from None


async def _with_broker(request: web.Request, action, *args, **kwargs):
    ctx = request.app[CTX]
    broker = request.app[ACCOUNTS]
    try:
        async with request.app[POOL].acquire() as conn:
            return await action(conn, broker, ctx.clock.now(), *args, **kwargs)
    except BrokerError as exc:
        raise ApiError(503, "broker_unavailable", str(exc)) from None


@routes.post("/v1/buttons")
async def provision(request: web.Request) -> web.Response:
    await principal(request, *ENGINEERS)
    body = await json_body(request, NEW_BUTTON)
    creds = await _with_broker(request, provisioning.provision_button, person_id=body["person_id"],
                               caseworker_id=body["caseworker_id"])
    return web.json_response(creds.as_json(), status=201, headers={"Cache-Control": "no-store"})


@routes.post("/v1/buttons/{id}/rotate")
async def rotate(request: web.Request) -> web.Response:
    await principal(request, *ENGINEERS)
    creds = await _with_broker(request, provisioning.rotate_button, _device_id(request))
    return web.json_response(creds.as_json(), headers={"Cache-Control": "no-store"})


@routes.post("/v1/buttons/{id}/revoke")
async def revoke(request: web.Request) -> web.Response:
    await principal(request, *ENGINEERS)
    return web.json_response(await _with_broker(request, provisioning.revoke, _device_id(request)))
