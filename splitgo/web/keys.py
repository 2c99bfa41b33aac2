"""What the app factory hands the routes: typed application keys."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from aiohttp import web

from actors.auth.messages import AccessTokenVerifier
from actors.runtime import ActorSystem
from splitgo.metrics import Metrics
from splitgo.web.live import LiveHub

Probe = Callable[[], Awaitable[bool]]


@dataclass(slots=True)
class Services:
    """The node's parts the edge may use: the actor system and readiness probes, no SQL."""

    system: ActorSystem
    node_id: str
    ops_token: str
    # name -> probe; /readyz is 200 only when every probe answers True
    probes: dict[str, Probe] = field(default_factory=dict)
    # checks access tokens at the edge; None on a node that serves no user routes
    verifier: AccessTokenVerifier | None = None
    public_url: str = "http://127.0.0.1:8080"
    # the Prometheus registry GET /metrics serves; None: no /metrics, no HTTP timing
    metrics: Metrics | None = None
    # admins need a session that passed a second factor (SPLITGO_MFA_REQUIRED_FOR_ADMINS)
    mfa_required_for_admins: bool = False


SERVICES = web.AppKey("services", Services)
LIVE = web.AppKey("live", LiveHub)
