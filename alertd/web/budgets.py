"""Request budgets: every request has a budget per source address, and a device's requests one per device too.
Over budget: 429 `rate_limited` with Retry-After, recorded as a security event once per episode.

Alerts are never refused for volume (a repeat joins her open alert instead, see service/repeats.py), so
`POST /v1/alerts` spends no budget; nor do Twilio's webhooks (they carry her SMS alerts, from Twilio's shared
addresses) or the health checks a load balancer polls. Traccar's forwards spend their gateway's budget in the
channel itself (channels/traccar/http.py), once it knows the forward is not an SOS.
"""

from __future__ import annotations

import logging

from aiohttp import web

from alertd.core.budgets import Budgets, Turns, retry_after
from alertd.service.timeline import security_event
from alertd.web.errors import ApiError
from alertd.web.keys import BUDGETS, CTX, METRICS, POOL

log = logging.getLogger("alertd.http")

# (method, route) that never spend a budget: her alerts, Twilio's webhooks, load balancers' health checks.
UNLIMITED = {("POST", "/v1/alerts"), ("POST", "/v1/sms/inbound"), ("POST", "/v1/sms/status"),
             ("POST", "/v1/gateways/traccar/events"), ("GET", "/healthz"), ("GET", "/readyz")}


class RequestBudgets:
    """The two budgets of one alertd process (each instance keeps its own), and the turns of one device's alerts
    (its alerts spend no budget, but are answered a few at a time)."""

    def __init__(self, source: Budgets, device: Budgets, alerts: Turns) -> None:
        self.source, self.device, self.alerts = source, device, alerts

    @classmethod
    def of(cls, ctx) -> RequestBudgets:
        s, now = ctx.settings, (lambda: ctx.clock.now().timestamp())
        return cls(Budgets(s.budget_source_rate, s.budget_source_burst, now),
                   Budgets(s.budget_device_rate, s.budget_device_burst, now), Turns(s.device_alerts_at_once))


def limited(request: web.Request) -> bool:
    """Whether this request spends budget (see UNLIMITED)."""
    route = request.match_info.route.resource
    return route is None or (request.method, route.canonical) not in UNLIMITED


def source_of(request: web.Request) -> str:
    """The address a request came from: the peer, or the client a trusted proxy names (security.client_address)."""
    from alertd.web.security import client_address  # security spends the device budget: imported here, not above

    return client_address(request)


@web.middleware
async def budget_middleware(request: web.Request, handler):
    if limited(request):
        await spend(request, request.app[BUDGETS].source, source_of(request), "source")
    return await handler(request)


async def spend(request: web.Request, budgets: Budgets, key: str, budget: str) -> None:
    """Spend one request of `key`'s budget, or refuse the request: 429 with Retry-After."""
    wait = budgets.take(key)
    if not wait:
        return
    request.app[METRICS].requests_refused.labels(budget).inc()
    if budgets.new_episode(key):  # the first refusal of a minute is recorded; a flood is not, request by request
        ctx = request.app[CTX]
        async with request.app[POOL].acquire() as conn:
            await security_event(conn, ctx.clock.now(), "rate_limited", f"http:{source_of(request)}",
                                 budget=budget, path=request.path, **({"device_id": key} if budget == "device" else {}))
        log.warning("request budget spent", extra={"fields": {"budget": budget, "path": request.path}})
    seconds = retry_after(wait)
    raise ApiError(429, "rate_limited", f"too many requests; retry after {seconds} s",
                   headers={"Retry-After": str(seconds)})
