"""GET /metrics in the Prometheus text format, and the middleware that times HTTP requests.

/metrics takes no token, as Prometheus endpoints usually don't: it shows counts and
timings by actor, route template and SQL keyword, never a path, a query or a user's data.
Keep it off the public internet (a reverse proxy rule) if that matters for a deployment.
"""

from __future__ import annotations

import time

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from splitgo.metrics import UNMATCHED_ROUTE, Metrics
from splitgo.web.keys import SERVICES
from splitgo.web.problems import ProblemError

METRICS_PATH = "/metrics"

routes = web.RouteTableDef()


@routes.get(METRICS_PATH)
async def metrics(request: web.Request) -> web.Response:
    """The node's metrics in the Prometheus text format: actors per shard, HTTP requests,
    database queries, event-loop lag, the process. Open like most Prometheus endpoints."""
    registry = request.app[SERVICES].metrics
    if registry is None:
        raise ProblemError(404, "not_found", "this node exports no metrics")
    response = web.Response(
        body=generate_latest(registry.registry), headers={"Content-Type": CONTENT_TYPE_LATEST}
    )
    response.enable_compression()  # when the scraper accepts it: Prometheus does
    return response


def route_of(request: web.Request) -> str:
    """The matched route's template (`/api/v1/groups/{id}`), or "unmatched" (404, 405)."""
    resource = request.match_info.route.resource
    return resource.canonical if resource is not None else UNMATCHED_ROUTE


def http_metrics(metrics: Metrics) -> Middleware:
    """A middleware timing every request but /metrics, by method, route template and the
    final status; put it outermost, so problem responses count with their real status."""

    @web.middleware
    async def timed(request: web.Request, handler: Handler) -> web.StreamResponse:
        route = route_of(request)
        if route == METRICS_PATH:
            return await handler(request)
        started = time.perf_counter()
        try:
            response = await handler(request)
        except web.HTTPException as error:  # redirects pass the problem middleware raised
            metrics.observe_http(request.method, route, error.status, time.perf_counter() - started)
            raise
        except Exception:
            metrics.observe_http(request.method, route, 500, time.perf_counter() - started)
            raise
        metrics.observe_http(request.method, route, response.status, time.perf_counter() - started)
        return response

    return timed
