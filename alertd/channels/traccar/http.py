"""POST /v1/gateways/traccar/events: a Traccar server's forwarded events and positions.

Traccar posts each event once and never retries it, so the answer comes at once: the SOS is committed (through
the same core path as every channel) before the answer, nothing else is done inline, and nothing waits on any
network but the database. A gateway's non-SOS traffic spends a request budget (keyed on the gateway); an SOS
never does, and is never refused for volume.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from alertd.channels.traccar import protocol
from alertd.core import validate
from alertd.service import gateways, trackers
from alertd.service.timeline import security_event
from alertd.web.budgets import source_of, spend
from alertd.web.errors import ApiError
from alertd.web.keys import BUDGETS, CTX, METRICS, POOL
from alertd.web.security import bearer, client_address

PATH = "/v1/gateways/traccar/events"
routes = web.RouteTableDef()


async def authenticated(request: web.Request) -> gateways.Gateway:
    """The gateway whose bearer token this is, or 401, recorded as a security event. A sender without a valid
    token spends its address's budget (the route spends none otherwise, for the SOS it may carry)."""
    token = bearer(request)
    gateway = None
    if token:
        async with request.app[POOL].acquire() as conn:
            gateway = await gateways.authenticate(conn, token)
    if gateway is not None and not gateway.revoked:
        return gateway
    await spend(request, request.app[BUDGETS].source, source_of(request), "source")
    reason = "missing" if not token else "revoked" if gateway is not None else "unknown"
    ctx = request.app[CTX]
    async with request.app[POOL].acquire() as conn:
        await security_event(conn, ctx.clock.now(), "bad_gateway_token", f"http:{client_address(request)}",
                             path=request.path, reason=reason, **({"gateway": gateway.name} if gateway else {}))
    raise ApiError(401, "unauthorized", "a valid gateway token is required (alertd gateways add NAME)"
                   if reason != "revoked" else "this gateway is revoked")


@routes.post(PATH)
async def forwarded(request: web.Request) -> web.Response:
    gateway = await authenticated(request)
    forward = protocol.parse(await request.read())
    ctx, pool, metrics = request.app[CTX], request.app[POOL], request.app[METRICS]
    now = ctx.clock.now()
    where = forward.position.location(now) if forward.position is not None else None
    if forward.sos:
        details: dict[str, Any] = {"alarm": protocol.SOS}
        if forward.event_time is not None and validate.believed(forward.event_time, now) != forward.event_time:
            details["client_time"] = "ignored"
        if forward.unusable:
            details["unusable"] = list(forward.unusable)
        outcome = await trackers.receive_sos(pool, ctx, gateway, trackers.Sos(
            unique_id=forward.unique_id, event_id=forward.event_id,
            triggered_at=validate.believed(forward.event_time, now), location=where, details=details))
        if outcome.alert_id is not None:
            metrics.alerts_received.labels("traccar", outcome.made).inc()
    else:
        # Everything but an SOS spends the gateway's budget (a Traccar server is one source, however many
        # trackers it serves); only then is the position looked at.
        await spend(request, request.app[BUDGETS].source, f"gateway:{gateway.name}", "gateway")
        outcome = trackers.Outcome("ignored", reason="no_position")
        if where is not None:
            outcome = await trackers.add_position(pool, ctx, gateway, forward.unique_id, where)
        if outcome.made == "location":
            metrics.traccar_locations.inc()
        elif forward.event_type is not None:  # an event is ignored for what it is, whatever its position
            outcome = trackers.Outcome("ignored", reason="not_sos" if forward.event_type == "alarm" else
                                       "not_alarm")
    if outcome.alert_id is None:
        metrics.traccar_ignored.labels(outcome.reason).inc()
        return web.json_response({"ignored": outcome.reason}, status=202)
    return web.json_response({"alert_id": outcome.alert_id, "outcome": outcome.made})
