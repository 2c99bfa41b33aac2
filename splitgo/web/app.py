"""The aiohttp application factory."""

from __future__ import annotations

from collections.abc import Sequence

from aiohttp import web

from splitgo.tracing import Tracing
from splitgo.web import (
    auth,
    chat,
    chat_files,
    health,
    me_data,
    mfa,
    notifications,
    oidc,
    oidc_clients,
    oidc_limits,
    openapi,
    ops,
    passkeys,
    payments,
    push,
    rides,
    splits,
)
from splitgo.web.hardening import Hardening, install
from splitgo.web.keys import LIVE, SERVICES, Services
from splitgo.web.live import LiveHub
from splitgo.web.metrics import http_metrics
from splitgo.web.metrics import routes as metrics_routes
from splitgo.web.middlewares import TRACING, problems, request_context
from splitgo.web.names import NAMES, NameBook, named

MAX_BODY_BYTES = 1024 * 1024


def create_app(
    services: Services,
    *,
    live: LiveHub | None = None,
    extra: Sequence[web.RouteTableDef] = (),
    hardening: Hardening | None = None,
    tracing: Tracing | None = None,
    names: NameBook | None = None,
) -> web.Application:
    """One application: middlewares outermost first, then every route table. `live` holds
    the node's WebSockets; `extra` are routes of other edges (the bot's webhook);
    `hardening` the guards' settings (CORS, rate limit); `tracing` exports spans; `names` the
    node's NameBook (None: replies carry ids only)."""
    app = web.Application(middlewares=[request_context, problems], client_max_size=MAX_BODY_BYTES)
    app[SERVICES] = services
    app[LIVE] = live if live is not None else LiveHub()
    app.middlewares.append(named)  # names beside ids in every JSON reply
    if names is not None:
        app[NAMES] = names
    install(app, hardening or Hardening())  # innermost middleware: CORS, rate limit
    oidc_limits.install(app)  # the token endpoint's own limits, scaled from the edge's
    if tracing is not None:
        app[TRACING] = tracing
    if services.metrics is not None:
        # outermost, so a problem response is counted with its final status
        app.middlewares.insert(0, http_metrics(services.metrics))
        app.add_routes(metrics_routes)
    app.add_routes(health.routes)
    app.add_routes(ops.routes)
    app.add_routes(auth.routes)
    app.add_routes(me_data.routes)  # issue 19: your data (export, delete)
    app.add_routes(mfa.routes)  # issue 19: two-factor sign-in (TOTP, recovery codes)
    app.add_routes(oidc.routes)  # OpenID Connect provider (issue 19)
    app.add_routes(oidc_clients.routes)
    app.add_routes(passkeys.routes)
    app.add_routes(payments.routes)
    app.add_routes(splits.routes)
    # an import running when the node stops is cancelled (what it wrote stays; confirming
    # again finishes it)
    app.on_shutdown.append(splits.imports.stop_jobs)
    app.add_routes(rides.routes)
    app.add_routes(chat.routes)
    app.add_routes(chat_files.routes)
    app.add_routes(notifications.routes)
    app.add_routes(push.routes)
    app.add_routes(openapi.routes)
    for table in extra:
        app.add_routes(table)
    # the web app for people: its routes and middleware (imported here, as the pages
    # import the edge's modules, which import this package)
    from splitgo.pages.setup import setup_pages

    setup_pages(app)
    return app
