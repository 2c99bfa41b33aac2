"""Putting the pages on the node's application (called once from `create_app`)."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterable, Mapping
from pathlib import Path

import aiohttp_jinja2
import jinja2
from aiohttp import web

from splitgo.config import ConfigError, load
from splitgo.pages import (
    account,
    account_data,
    accounts,
    alerts,
    attachments,
    authorize,
    chat,
    chat_files,
    connected_apps,
    console,
    console_clients,
    conversations,
    entry,
    expenses,
    groups,
    home,
    imports,
    insight,
    invites,
    mfa,
    passkeys,
    pwa,
    recurring,
    rides,
    settle,
    wallet,
)
from splitgo.pages.keys import ASSETS, CONFIG, JINJA, PAGE_ATTR, REFRESHES, PagesConfig
from splitgo.pages.middleware import pages_middleware
from splitgo.pages.refreshing import Refreshes
from splitgo.pages.static import Assets, served
from splitgo.pages.ui import FILTERS, GLOBALS

TEMPLATES = Path(__file__).parent / "templates"
# every route table of the pages, in the order they are added
TABLES: tuple[web.RouteTableDef, ...] = (
    entry.routes,
    accounts.routes,
    home.routes,
    groups.routes,
    invites.routes,
    expenses.routes,
    settle.routes,
    wallet.routes,
    rides.routes,
    alerts.routes,
    conversations.routes,
    chat.routes,
    account.routes,
    console.routes,
    console_clients.routes,  # OpenID Connect provider (issue 19)
    authorize.routes,
    connected_apps.routes,
    passkeys.routes,  # passkeys (issue 19)
    mfa.routes,  # two-factor sign-in: TOTP, recovery codes (issue 19)
    account_data.routes,  # your data: export, delete (issue 19)
    attachments.routes,
    chat_files.routes,
    insight.routes,
    recurring.routes,
    imports.routes,
    pwa.routes,
)


def configured_providers(environ: Mapping[str, str]) -> tuple[tuple[str, str], ...]:
    """The social sign-in providers the node offers, as (name, label): those with a client
    id and secret (composition.oauth_providers makes them from the same settings)."""
    # imported here: composition imports the edge, whose app module sets the pages up
    from splitgo.composition import oauth_providers

    try:
        providers = oauth_providers(load(environ))
    except ConfigError:  # the node refuses to start on these: offer nothing
        return ()
    return tuple((name, provider.label) for name, provider in providers.items())


def mark_pages(tables: Iterable[web.RouteTableDef]) -> None:
    """Mark every handler of `tables` as a page (the middleware and the API's document
    tell pages from the JSON API by it)."""
    for table in tables:
        for route in table:
            if isinstance(route, web.RouteDef):
                setattr(route.handler, PAGE_ATTR, True)


def setup_pages(
    app: web.Application, *, providers: Iterable[str | tuple[str, str]] | None = None
) -> None:
    """Templates (autoescaped), static files, the pages' routes and their middleware.

    `providers` are the social sign-in providers to offer (names, or (name, label)
    pairs); None reads the node's settings from the environment."""
    env = aiohttp_jinja2.setup(
        app,
        app_key=JINJA,
        loader=jinja2.FileSystemLoader(TEMPLATES),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        default_helpers=False,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    assets = Assets()
    env.filters.update(FILTERS)
    env.globals.update(GLOBALS)
    env.globals.update(static=assets.url, fresh_key=lambda: str(uuid.uuid4()))
    chosen = configured_providers(os.environ) if providers is None else tuple(providers)
    named = tuple((item, "") if isinstance(item, str) else item for item in chosen)
    app[CONFIG] = PagesConfig(
        providers=tuple(name for name, _ in named),
        labels=tuple((name, label) for name, label in named if label),
    )
    app[ASSETS] = assets
    app[REFRESHES] = Refreshes()
    tables = (served(assets), *TABLES)
    mark_pages(tables)
    for table in tables:
        app.add_routes(table)
    app.middlewares.append(pages_middleware)
