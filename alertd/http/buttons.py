"""Engineers provision, rotate and revoke buttons (and unit terminals) over HTTP; secrets are in the answer only."""

from __future__ import annotations

from aiohttp import web

from alertd.core.validate import Obj, Text
from alertd.http.errors import ApiError, json_body
from alertd.http.keys import CTX, POOL
from alertd.http.security import principal
from alertd.mqtt.dynsec import BrokerError
from alertd.service import provisioning

routes = web.RouteTableDef()
ENGINEERS = ("engineer", "admin")
NEW_BUTTON = Obj({"person_id": Text(1, 100), "caseworker_id": Text(1, 100)}, required=("person_id",))


async def _with_broker(request: web.Request, action, *args, **kwargs) -> dict:
    ctx = request.app[CTX]
    broker = provisioning.broker_accounts(ctx.settings)
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
    creds = await _with_broker(request, provisioning.rotate_button, request.match_info["id"])
    return web.json_response(creds.as_json(), headers={"Cache-Control": "no-store"})


@routes.post("/v1/buttons/{id}/revoke")
async def revoke(request: web.Request) -> web.Response:
    await principal(request, *ENGINEERS)
    return web.json_response(await _with_broker(request, provisioning.revoke, request.match_info["id"]))


_CREDENTIALS = {"content": {"application/json": {"schema": {"type": "object", "properties": {
    name: {"type": "string"} for name in ("device_id", "username", "password", "client_id", "hmac_secret",
                                          "person_id", "kind")} | {"topics": {"type": "object"}}}}}}
_DEVICE_ID = [{"name": "id", "in": "path", "required": True, "schema": {"type": "string"}}]

# The buttons' part of /openapi.json (docs/buttons.md tells the whole story; the MQTT side is there too).
BUTTON_PATHS = {
    "/v1/buttons": {"post": {
        "summary": "Engineer: provision a button for a person; its MQTT password and HMAC secret are shown once",
        "requestBody": {"required": True, "content": {"application/json": {"schema": {
            "type": "object", "required": ["person_id"],
            "properties": {"person_id": {"type": "string"}, "caseworker_id": {"type": "string"}}}}}},
        "responses": {"201": {"description": "provisioned", **_CREDENTIALS},
                      "503": {"description": "the broker refused; nothing was kept"}}}},
    "/v1/buttons/{id}/rotate": {"post": {
        "summary": "Engineer: a new MQTT password and HMAC secret; the old ones stop working at once",
        "parameters": _DEVICE_ID, "responses": {"200": {"description": "rotated", **_CREDENTIALS}}}},
    "/v1/buttons/{id}/revoke": {"post": {
        "summary": "Engineer: revoke a button (or unit terminal); the broker disconnects it at once",
        "parameters": _DEVICE_ID, "responses": {"200": {"description": "revoked"}}}},
}
