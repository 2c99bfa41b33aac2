"""What the pages show: money in the reader's language from integer minor units (and read
back as typed), a person's fixed colour class and initials, times, and our static files
under content-hashed names with long cache lifetimes (the favicon too)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from splitgo.pages.money import format_money, locale_of, parse_money
from splitgo.pages.static import FOREVER, Assets, served
from splitgo.pages.ui import AVATAR_COLOURS, avatar_class, initials, input_id, when

Client = TestClient[web.Request, web.Application]


@pytest.mark.parametrize(
    ("amount", "currency", "locale", "shown"),
    [
        (1250, "EUR", "en", "€12.50"),
        (1250, "EUR", "de", "12,50\u00a0€"),
        (1250, "EUR", "nl", "€\u00a012,50"),
        (123456789, "EUR", "fr", "1\u202f234\u202f567,89\u00a0€"),
        (1250, "USD", "en", "$12.50"),
        (125000, "JPY", "en", "¥125,000"),
        (-1250, "EUR", "en", "\u2212€12.50"),
        (300, "CHF", "en", "CHF\u00a03.00"),
        (1234, "KWD", "en", "KWD\u00a01.234"),
        (5, "EUR", "en", "€0.05"),
        (0, "GBP", "en", "£0.00"),
    ],
)
def test_money_is_written_as_the_reader_writes_it(
    amount: int, currency: str, locale: str, shown: str
) -> None:
    """Minor units in the currency's decimals and the language's separators and sign."""
    assert format_money(amount, currency, locale) == shown


@pytest.mark.parametrize(
    ("header", "locale"),
    [
        ("de-DE,de;q=0.9,en;q=0.8", "de"),
        ("xx, fr;q=0.5", "fr"),
        ("en;q=0.1, nl", "nl"),
        ("", "en"),
        (None, "en"),
        ("de;q=0", "en"),
        ("*;q=0.5", "en"),
    ],
)
def test_the_language_comes_from_accept_language(header: str | None, locale: str) -> None:
    """The most wanted language that has a style; English otherwise."""
    assert locale_of(header) == locale


@pytest.mark.parametrize(
    ("typed", "currency", "locale", "minor"),
    [
        ("12,50", "EUR", "en", 1250),
        ("12.50", "EUR", "de", 1250),
        ("1.234,50", "EUR", "de", 123450),
        ("1,234.50", "EUR", "en", 123450),
        ("1,234", "EUR", "en", 123400),
        ("1 234,5", "EUR", "fr", 123450),
        ("12", "EUR", "en", 1200),
        ("1250", "JPY", "en", 1250),
        ("1.234", "KWD", "en", 1234),
    ],
)
def test_amounts_are_read_as_typed(typed: str, currency: str, locale: str, minor: int) -> None:
    """Either separator, groups of thousands, no decimals: minor units by integer math."""
    assert parse_money(typed, currency, locale) == minor


@pytest.mark.parametrize(
    ("typed", "currency", "words"),
    [
        ("12.5", "JPY", "JPY has no decimals"),
        ("12.505", "EUR", "at most 2 decimals"),
        ("twelve", "EUR", "an amount such as 12.50"),
        ("-5", "EUR", "an amount such as"),
        ("", "EUR", "an amount such as"),
    ],
)
def test_what_is_no_amount_is_refused_with_what_to_type(
    typed: str, currency: str, words: str
) -> None:
    """A refusal says what to type instead."""
    with pytest.raises(ValueError, match=words):
        parse_money(typed, currency, "en")


def test_a_person_keeps_one_colour_of_a_fixed_set() -> None:
    """The colour class depends on the id alone and is one of the fixed classes; ids spread
    over all of them."""
    ids = [f"user-{n}" for n in range(200)]
    classes = {avatar_class(user_id) for user_id in ids}
    assert classes == {f"avatar-{n}" for n in range(AVATAR_COLOURS)}
    assert avatar_class("user-7") == avatar_class("user-7")


@pytest.mark.parametrize(
    ("name", "letters"),
    [("Ada Lovelace", "AL"), ("bo", "B"), ("Ana María de la Cruz", "AC"), ("", "?"), (None, "?")],
)
def test_initials(name: str | None, letters: str) -> None:
    """One or two letters: the first and last words' first letters."""
    assert initials(name) == letters


def test_times_and_input_ids() -> None:
    """Times read in UTC words (what cannot be read as it came); input ids from dotted names."""
    assert when("2025-03-03T14:05:09Z") == "3 Mar 2025, 14:05 UTC"
    assert when("not a time") == "not a time"
    assert input_id("split.shares.0.amount") == "f-split-shares-0-amount"


@pytest.fixture
async def static_client(tmp_path: Path) -> AsyncIterator[tuple[Client, Assets]]:
    (tmp_path / "app.css").write_text("body { color: teal; }")
    (tmp_path / "favicon.svg").write_text("<svg xmlns='http://www.w3.org/2000/svg'/>")
    (tmp_path / "notes.txt").write_text("not served")
    assets = Assets(tmp_path)
    app = web.Application()
    app.add_routes(served(assets))
    async with TestClient(TestServer(app)) as client:
        yield client, assets


async def test_static_files_have_hashed_names_and_a_long_life(
    static_client: tuple[Client, Assets],
) -> None:
    """A file's URL carries its content's hash and is cached for a year; its ETag answers
    304; the plain name is revalidated; other kinds of files are not served."""
    client, assets = static_client
    url = assets.url("app.css")
    assert url.startswith("/static/app.")
    assert url.endswith(".css")
    response = await client.get(url)
    assert response.status == 200
    assert response.content_type == "text/css"
    assert response.headers["Cache-Control"] == FOREVER
    assert await response.text() == "body { color: teal; }"
    again = await client.get(url, headers={"If-None-Match": response.headers["ETag"]})
    assert again.status == 304
    plain = await client.get("/static/app.css")
    assert "immutable" not in plain.headers["Cache-Control"]
    assert (await client.get("/static/notes.txt")).status == 404
    with pytest.raises(LookupError):
        assets.url("missing.js")


async def test_the_favicon_answers(static_client: tuple[Client, Assets]) -> None:
    """/favicon.ico answers with the SVG icon (a missing favicon is a browser console error)."""
    client, _ = static_client
    response = await client.get("/favicon.ico")
    assert response.status == 200
    assert response.content_type == "image/svg+xml"


def test_the_real_static_files_are_all_there() -> None:
    """The stylesheet, the scripts and the icon the templates name are in the package."""
    assets = Assets()
    for name in ("app.css", "app.js", "password.js", "favicon.svg"):
        assert assets.url(name).startswith("/static/")
