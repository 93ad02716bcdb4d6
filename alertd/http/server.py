"""The HTTP side: middleware, every channel's routes, the static files. Serves and routes; builds nothing else."""

from __future__ import annotations

from aiohttp import web

from alertd.channels.app import http as app_http
from alertd.channels.app import selftest as app_selftest
from alertd.channels.app import static as app_static
from alertd.channels.app import timers as app_timers
from alertd.channels.buttons import http as buttons_http
from alertd.channels.console import drills, events, officer
from alertd.channels.console import static as console_static
from alertd.channels.sms import http as sms_http
from alertd.channels.traccar import http as traccar_http
from alertd.http import ops
from alertd.web import static
from alertd.web.budgets import budget_middleware
from alertd.web.errors import error_middleware

MAX_BODY = 256 * 1024


def application() -> web.Application:
    """An aiohttp application with every route; alertd.app.create_app gives it its resources."""
    app = web.Application(middlewares=[error_middleware, budget_middleware], client_max_size=MAX_BODY)
    for module in (app_http, app_timers, officer, drills, events, ops, console_static, app_static, buttons_http,
                   traccar_http):
        app.add_routes(module.routes)
    app.add_routes(app_selftest.routes)  # the phone app's self-test (POST /v1/tests)
    sms_http.setup(app)
    static.setup(app, console_static.assets, console_static.index, app_static.assets)
    return app
