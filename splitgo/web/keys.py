"""What the app factory hands the routes: typed application keys."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from aiohttp import web

from actors.runtime import ActorSystem

Probe = Callable[[], Awaitable[bool]]


@dataclass(slots=True)
class Services:
    """The node's parts the edge may use: the actor system and readiness probes, no SQL."""

    system: ActorSystem
    node_id: str
    ops_token: str
    # name -> probe; /readyz is 200 only when every probe answers True
    probes: dict[str, Probe] = field(default_factory=dict)


SERVICES = web.AppKey("services", Services)
