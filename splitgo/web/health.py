"""Liveness and readiness: /healthz and /readyz."""

from __future__ import annotations

import asyncio
from typing import Literal

import msgspec
from aiohttp import web

from splitgo.web.declare import documented
from splitgo.web.keys import SERVICES
from splitgo.web.problems import json_response

routes = web.RouteTableDef()


class Liveness(msgspec.Struct):
    """What /healthz answers."""

    status: Literal["ok"]
    node: str


class Readiness(msgspec.Struct):
    """What /readyz answers: each probe (database, transport, ...) and the local actors."""

    status: Literal["ready", "not_ready"]
    node: str
    checks: dict[str, bool]


@routes.get("/healthz")
@documented(summary="Liveness", tags=["ops"], auth="none", actor=False, responses={200: Liveness})
async def healthz(request: web.Request) -> web.Response:
    """200 while the process runs and its event loop answers."""
    return json_response({"status": "ok", "node": request.app[SERVICES].node_id})


@routes.get("/readyz")
@documented(
    summary="Readiness",
    tags=["ops"],
    auth="none",
    actor=False,
    responses={200: Readiness, 503: Readiness},
)
async def readyz(request: web.Request) -> web.Response:
    """200 once the database, the transport, every local actor and the revoked sessions
    (this node refuses bearer requests until it knows them) are up; 503 otherwise."""
    services = request.app[SERVICES]
    names = list(services.probes)
    results = await asyncio.gather(*(services.probes[name]() for name in names))
    checks = dict(zip(names, results, strict=True))
    checks["actors"] = services.system.ready
    ready = all(checks.values())
    body = {"status": "ready" if ready else "not_ready", "node": services.node_id, "checks": checks}
    return json_response(body, status=200 if ready else 503)
