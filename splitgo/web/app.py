"""The aiohttp application factory."""

from __future__ import annotations

from aiohttp import web

from splitgo.web import auth, health, ops, payments, splits
from splitgo.web.keys import SERVICES, Services
from splitgo.web.middlewares import problems, request_context

MAX_BODY_BYTES = 1024 * 1024


def create_app(services: Services) -> web.Application:
    """One application: middlewares outermost first, then every route table."""
    app = web.Application(middlewares=[request_context, problems], client_max_size=MAX_BODY_BYTES)
    app[SERVICES] = services
    app.add_routes(health.routes)
    app.add_routes(ops.routes)
    app.add_routes(auth.routes)
    app.add_routes(payments.routes)
    app.add_routes(splits.routes)
    return app
