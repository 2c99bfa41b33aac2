"""The aiohttp edge: app factory, middlewares, problem responses and routes per domain."""

from __future__ import annotations

from splitgo.web.app import Services, create_app

__all__ = ["Services", "create_app"]
