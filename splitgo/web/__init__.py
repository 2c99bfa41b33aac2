"""The aiohttp edge: app factory, middlewares, problem responses and routes per domain."""

from __future__ import annotations

from splitgo.web.app import create_app
from splitgo.web.keys import Services

__all__ = ["Services", "create_app"]
