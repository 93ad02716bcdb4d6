"""The phone app's self-test: proves the app's path to alertd works, and dispatches nothing."""

from __future__ import annotations

from aiohttp import web

from alertd.core.validate import Choice, Obj, Text
from alertd.service import proofs
from alertd.web.errors import json_body
from alertd.web.keys import CTX, POOL
from alertd.web.security import principal

routes = web.RouteTableDef()
# `language`: of the confirmation SMS, sent only if she opted in to SMS.
NEW_TEST = Obj({"client_test_id": Text(1, 100), "language": Choice(("kk", "ru", "en"))},
               required=("client_test_id",))


@routes.post("/v1/tests")
async def self_test(request: web.Request) -> web.Response:
    """Record the proof (once per client_test_id: the same id again answers the same, 200), tell her caseworker,
    and text her a neutral confirmation if she opted in to SMS."""
    who = await principal(request, "device")
    body = await json_body(request, NEW_TEST)
    proof = await proofs.app_self_test(request.app[POOL], request.app[CTX], person_id=who.person,
                                       device_id=who.device, client_test_id=body["client_test_id"],
                                       language=body["language"])
    return web.json_response({"test_id": proof.test_id, "status": "ok"}, status=201 if proof.fresh else 200)
