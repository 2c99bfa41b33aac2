"""What the pages keep on the application and on each request: typed keys in one place."""

from __future__ import annotations

from dataclasses import dataclass

import jinja2
from aiohttp import web

from splitgo.pages.refreshing import Refreshes
from splitgo.pages.static import Assets


@dataclass(frozen=True, slots=True)
class PagesConfig:
    """How the pages are set up on this node: the social sign-in providers it offers, and
    the names people see for them (`labels`, by provider; the name capitalised if absent)."""

    providers: tuple[str, ...] = ()
    labels: tuple[tuple[str, str], ...] = ()

    def label(self, provider: str) -> str:
        """How people see `provider` ("Google", "Acme SSO")."""
        return dict(self.labels).get(provider) or provider.capitalize()

    def offered(self) -> list[tuple[str, str]]:
        """(name, label) of each provider offered, in order: one button each."""
        return [(name, self.label(name)) for name in self.providers]


CONFIG = web.AppKey("pages_config", PagesConfig)
ASSETS = web.AppKey("pages_assets", Assets)
REFRESHES = web.AppKey("pages_refreshes", Refreshes)
JINJA = web.AppKey("pages_jinja", jinja2.Environment)

# the attribute that marks a handler as one of the pages (not part of the JSON API)
PAGE_ATTR = "__splitgo_page__"


def is_page(handler: object) -> bool:
    """Whether a route's handler is one of the pages (left out of the API document)."""
    return bool(getattr(handler, PAGE_ATTR, False))
