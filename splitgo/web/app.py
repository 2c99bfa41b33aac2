"""The aiohttp application factory."""

from __future__ import annotations

from collections.abc import Sequence

from aiohttp import web

from splitgo.web import auth, health, notifications, ops, payments, rides, splits
from splitgo.web.keys import LIVE, SERVICES, Services
from splitgo.web.live import LiveHub
from splitgo.web.middlewares import problems, request_context

MAX_BODY_BYTES = 1024 * 1024


def create_app(
    services: Services,
    *,
    live: LiveHub | None = None,
    extra: Sequence[web.RouteTableDef] = (),
) -> web.Application:
    """One application: middlewares outermost first, then every route table. `live` holds
    the node's WebSockets; `extra` are routes of other edges (the bot's webhook)."""
    app = web.Application(middlewares=[request_context, problems], client_max_size=MAX_BODY_BYTES)
    app[SERVICES] = services
    app[LIVE] = live if live is not None else LiveHub()
    app.add_routes(health.routes)
    app.add_routes(ops.routes)
    app.add_routes(auth.routes)
    app.add_routes(payments.routes)
    app.add_routes(splits.routes)
    app.add_routes(rides.routes)
    app.add_routes(notifications.routes)
    for table in extra:
        app.add_routes(table)
    return app
