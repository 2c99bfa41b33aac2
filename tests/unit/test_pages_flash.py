"""A flash is shown once, on the next page the browser navigates to: a script's fetch of
a live fragment in between neither shows it nor uses it up."""

from __future__ import annotations

from aiohttp.test_utils import make_mocked_request

from splitgo.pages import cookies


def test_a_navigation_takes_the_flash_and_deletes_its_cookie() -> None:
    """A page navigation shows the notice and queues the cookie's deletion."""
    request = make_mocked_request(
        "GET",
        "/driver",
        headers={"Cookie": f"{cookies.FLASH_COOKIE}=signed_out", "Sec-Fetch-Mode": "navigate"},
    )
    assert cookies.take_flash(request) == "You are signed out."
    assert request[cookies.PENDING][cookies.FLASH_COOKIE] == (None, None)


def test_a_browser_that_does_not_say_how_it_fetches_gets_the_flash() -> None:
    """Without `Sec-Fetch-Mode` (an older browser, a test client) a GET counts as a page."""
    request = make_mocked_request(
        "GET", "/driver", headers={"Cookie": f"{cookies.FLASH_COOKIE}=signed_out"}
    )
    assert cookies.take_flash(request) == "You are signed out."


def test_a_scripts_fetch_leaves_the_flash_for_the_page() -> None:
    """A fetch of a live fragment (mode cors or same-origin) shows no notice and keeps it."""
    for mode in ("cors", "same-origin", "no-cors"):
        request = make_mocked_request(
            "GET",
            "/driver/live",
            headers={"Cookie": f"{cookies.FLASH_COOKIE}=signed_out", "Sec-Fetch-Mode": mode},
        )
        assert cookies.take_flash(request) is None
        assert cookies.PENDING not in request
