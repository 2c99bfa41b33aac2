"""CSRF on the pages: every form carries this browser's secret under a fresh mask, a POST
is admitted only with a token of the secret its cookie holds, and a refusal is a 403 page
that changed nothing; the cookie is HttpOnly, SameSite=Lax, and Secure over https."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer, make_mocked_request

from actors.runtime import ActorSystem
from splitgo.pages import cookies, csrf
from splitgo.pages.forms import read_form
from splitgo.pages.render import render
from splitgo.pages.setup import mark_pages
from splitgo.web import Services, create_app
from splitgo.web.hardening import PAGES_CSP

Client = TestClient[web.Request, web.Application]
TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')


def browser_request(cookie: str | None = None, method: str = "GET") -> web.Request:
    """A request from a browser holding `cookie` as its CSRF secret (or none)."""
    headers = {"Cookie": f"{csrf.COOKIE}={cookie}"} if cookie else {}
    return make_mocked_request(method, "/", headers=headers)


def secret_of(request: web.Request) -> str:
    """The secret a request queued for its browser (the value of the new cookie)."""
    value, _max_age = request[cookies.PENDING][csrf.COOKIE]
    assert value is not None
    return value


def test_a_form_token_unmasks_to_the_browsers_secret() -> None:
    """A token made for a browser is admitted with that browser's cookie; every form gets
    a different token (a fresh mask), and each of them is admitted."""
    first = browser_request()
    tokens = [csrf.form_token(first) for _ in range(3)]
    secret = secret_of(first)
    assert len(set(tokens)) == 3
    for token in tokens:
        csrf.check(browser_request(secret, "POST"), token)


@pytest.mark.parametrize("case", ["no cookie", "no token", "other secret", "garbage", "cut"])
def test_a_post_without_this_browsers_token_is_refused(case: str) -> None:
    """Missing cookie or token, a token of another browser's secret, or a damaged token:
    csrf_failed, a 403."""
    mine = browser_request()
    token = csrf.form_token(mine)
    theirs = browser_request()
    csrf.form_token(theirs)
    cookie, submitted = {
        "no cookie": (None, token),
        "no token": (secret_of(mine), None),
        "other secret": (secret_of(theirs), token),
        "garbage": (secret_of(mine), "not a token at all"),
        "cut": (secret_of(mine), token[:-4]),
    }[case]
    with pytest.raises(csrf.CsrfRefused) as refused:
        csrf.check(browser_request(cookie, "POST"), submitted)
    assert (refused.value.status, refused.value.code) == (403, "csrf_failed")


def test_a_browser_keeps_its_secret_until_it_is_rotated() -> None:
    """A browser that has a secret keeps it (no new cookie); rotating gives a new one, which
    the tokens made after it follow."""
    first = browser_request()
    csrf.form_token(first)
    secret = secret_of(first)
    again = browser_request(secret)
    token = csrf.form_token(again)
    assert cookies.PENDING not in again
    csrf.rotate(again)
    rotated = secret_of(again)
    assert rotated != secret
    with pytest.raises(csrf.CsrfRefused):
        csrf.check(browser_request(rotated, "POST"), token)
    csrf.check(browser_request(rotated, "POST"), csrf.form_token(again))


@dataclass
class Probe:
    """The real app with one more page, and what that page's form was sent."""

    client: Client
    done: list[str]


@pytest.fixture
async def probe(system: ActorSystem) -> AsyncIterator[Probe]:
    """The real app with one more page: a form that keeps what it was sent."""
    routes = web.RouteTableDef()
    done: list[str] = []

    @routes.get("/probe/form")
    async def show(request: web.Request) -> web.Response:
        return await render(request, "verify_email.html", {"title": "Probe", "form": _Blank()})

    @routes.post("/probe/form")
    async def take(request: web.Request) -> web.Response:
        form = await read_form(request)
        done.append(form.value("thing"))
        return web.Response(text="taken")

    mark_pages([routes])
    app = create_app(Services(system=system, node_id="pages", ops_token="t"), extra=[routes])
    async with TestClient(TestServer(app)) as test_client:
        yield Probe(test_client, done)


class _Blank:
    """A form with nothing typed (what verify_email.html reads of one)."""

    def value(self, name: str) -> str:
        return ""


async def test_a_rendered_form_posts_and_a_forged_one_is_a_403_page(probe: Probe) -> None:
    """The page sets the HttpOnly, SameSite=Lax cookie and its form's token is admitted; a
    POST without it is a 403 page under the pages' CSP, and the handler never ran."""
    client = probe.client
    page = await client.get("/probe/form")
    cookie = page.cookies[csrf.COOKIE]
    assert cookie["httponly"]
    assert cookie["samesite"] == "Lax"
    assert not cookie["secure"]
    token = TOKEN.findall(await page.text())[0]
    accepted = await client.post("/probe/form", data={"csrf_token": token, "thing": "one"})
    assert (accepted.status, await accepted.text()) == (200, "taken")
    refused = await client.post("/probe/form", data={"thing": "two"})
    assert refused.status == 403
    assert refused.content_type == "text/html"
    assert refused.headers["Content-Security-Policy"] == PAGES_CSP
    assert "reload the page" in await refused.text()
    assert probe.done == ["one"]


async def test_the_sign_in_form_checks_its_token_before_anything(probe: Probe) -> None:
    """The real sign-in form refuses a POST without its token with a 403 (no actor is even
    asked: this app runs none)."""
    refused = await probe.client.post("/sign-in", data={"email": "a@example.com", "password": "x"})
    assert refused.status == 403


async def test_cookies_are_secure_over_https(probe: Probe) -> None:
    """Behind a proxy saying the browser speaks https, the cookie is Secure."""
    page = await probe.client.get("/probe/form", headers={"X-Forwarded-Proto": "https"})
    assert page.cookies[csrf.COOKIE]["secure"]
