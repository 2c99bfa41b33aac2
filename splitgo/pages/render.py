"""Rendering a page: a template of templates/ with what every page needs.

`render(request, "home.html", {...})` gives the template, besides its own context:
`viewer` (the signed-in Viewer, or None), `locale` (for money), `section` (which item of
the navigation is current: pass it in the context), `nav`, `flash` (a one-time notice),
`providers` (social sign-in offered), `csrf_token()` and `fresh_key()` (for
`ui.form_guard`), `static(name)` and the filters of ui.py. A page showing a form is
`render_with_form`: the form's status and headers go with it. Pages answer forms with
`redirect` (303, so a reload never posts twice). `named(request, reply)` is an actor's
reply as its JSON route answers it: plain values, with people's names beside their ids.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import aiohttp_jinja2
from aiohttp import web

from splitgo.pages import cookies, csrf
from splitgo.pages.forms import Form
from splitgo.pages.keys import CONFIG, JINJA
from splitgo.pages.money import locale_of
from splitgo.pages.sessions import viewer_of
from splitgo.web.names import NAMES, name_people
from splitgo.web.problems import to_json


@dataclass(frozen=True, slots=True)
class NavItem:
    """One place of the navigation: its section name, words, path and icon."""

    section: str
    label: str
    path: str
    icon: str  # a symbol of templates/icons.html
    # what a phone's bottom bar shows when the label is too long for it (read after it)
    short: str | None = None
    on_phone: bool = True  # in the phone's bottom bar (else reached from the header)


NAV: tuple[NavItem, ...] = (
    NavItem("home", "Home", "/home", "home"),
    NavItem("groups", "Groups", "/groups", "groups"),
    NavItem("wallet", "Wallet", "/wallet", "wallet"),
    NavItem("rides", "Rides", "/rides", "rides"),
    NavItem("messages", "Messages", "/messages", "chat", short="Chat"),
    NavItem("notifications", "Notifications", "/notifications", "bell", short="Alerts"),
    # on a phone, the header's own avatar link is the way to the account
    NavItem("account", "Account", "/account", "person", on_phone=False),
)


async def render(
    request: web.Request,
    template: str,
    context: Mapping[str, Any] | None = None,
    *,
    status: int = 200,
    headers: Mapping[str, str] | None = None,
) -> web.Response:
    """The page `template` rendered for this request (see the module's docstring)."""
    page: dict[str, Any] = {
        "viewer": await viewer_of(request),
        "locale": locale_of(request.headers.get("Accept-Language")),
        "section": None,
        "nav": NAV,
        "flash": cookies.take_flash(request),
        "providers": request.app[CONFIG].providers,
        "csrf_token": functools.partial(csrf.form_token, request),
        **(context or {}),
    }
    text = aiohttp_jinja2.render_string(template, request, page, app_key=JINJA)
    return web.Response(
        text=text, content_type="text/html", status=status, headers=dict(headers or {})
    )


async def render_with_form(
    request: web.Request,
    template: str,
    context: Mapping[str, Any],
    form: Form | None,
    *,
    status: int | None = None,
) -> web.Response:
    """The page `template` showing `form`: with the form's status (its refusal's, 200 for
    a blank form or none) unless `status` is given, and its headers (a refusal's
    Retry-After)."""
    if status is None:
        status = form.status if form is not None else 200
    headers = form.headers if form is not None else None
    return await render(request, template, context, status=status, headers=headers)


def redirect(location: str, *, status: int = 303) -> web.Response:
    """Go to `location` (a local path); 303 makes the browser GET it."""
    return web.Response(status=status, headers={"Location": location})


async def named(request: web.Request, reply: Any) -> Any:
    """An actor's reply as the JSON route answers it: plain values (dicts and lists),
    each user id with its name beside it (`user_id` → `name`, `actor_user_id` →
    `actor_user_name`, …) and activity summaries saying names instead of ids."""
    data = to_json(reply)
    book = request.app.get(NAMES)
    if book is not None:
        await name_people(data, book)
    return data
