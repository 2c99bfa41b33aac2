"""Fixtures for tests in a real browser: Debian's chromium, driven by Playwright's sync API,
against a real node with a real SMTP server.

Write browser tests as plain `def` functions (never `async def`), in modules under
tests/browser; each is marked `browser` here, so `-m browser` / `-m "not browser"` pick
them. The fixtures:

- `browser` (package scope) — a `playwright.sync_api.Browser`: chromium launched headless
  from /usr/bin/chromium (`playwright install` is never used). No chromium: with CI=true
  the tests fail, elsewhere they are skipped, and the run's summary says how to install
  it (`apt-get install -y chromium`).
- `site` (module scope) — a `harness.Site`: a node on a database of its own, its mail going
  to a real SMTP server. `site.url`; `site.api` (`tests.support.api.Api`) and the
  shortcuts `site.register(name, email=None) -> User` and `site.call(method, path, user,
  body, headers) -> Reply`; `site.run(coroutine)` awaits any coroutine (an `site.api`
  call, aiohttp) on the background loop; `site.mails(to=None)`,
  `site.wait_for_mail(to, count=1)`, `site.last_link(to, path="/verify-email")` (the
  mail's `…{path}?token=…` link, waited for); `site.ops_token`; `site.output()` (the
  node's log). A module adds settings to its node by overriding `site_env` (module
  scope, a dict of SPLITGO_* variables).
- `page` (function scope) — a `playwright.sync_api.Page` in a fresh context (its own
  cookies and storage), `base_url` the node (so `page.goto("/api/docs")`), locale en-US,
  10 s default timeout.
- `new_page` (function scope) — `new_page(**context_options) -> Page`: another person, in
  a fresh context of their own (e.g. `new_page(java_script_enabled=False)` or
  `new_page(viewport={"width": 360, "height": 740})`); options go to
  `Browser.new_context` over the defaults above.
- `watch` (function scope) — the `harness.Watch` over every context of the test, `page`'s
  and `new_page`'s: the test FAILS at its end when any page logged a console error, threw
  an uncaught error, or sent a request (or opened a WebSocket) to a host other than the
  node's. `watch.allow_console_error(regex)` lets an expected one through.
- `background` (package scope) — the `harness.BackgroundLoop` the site lives on;
  `background.run(coroutine)` for fakes a module starts before its node.

On a failure, a screenshot of every open page goes to the test's temporary folder and its
path into the report.

Why sync Playwright: the project runs pytest-asyncio in auto mode with a loop per test
(`asyncio_default_fixture_loop_scope = "function"`). Async Playwright would tie the browser
to one event loop, so a browser shared between tests would need every browser test (and
fixture) pinned to a session-wide loop by a marker each author must remember. The sync API
needs no marker; but while it lives it marks its own loop as running in the test thread,
so nothing else may run an event loop in that thread meanwhile: the browser is therefore
package-scoped (closed before any test outside tests/browser runs: the async e2e tests
after it are unaffected), and the node, the SMTP server and the aiohttp client run on a
`BackgroundLoop` thread, reached with `site.run(...)`.
"""

from __future__ import annotations

from collections.abc import Generator, Iterator
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import Browser, Page, sync_playwright

from tests.browser.harness import (
    INSTALL_HINT,
    BackgroundLoop,
    Site,
    Watch,
    chromium,
    in_ci,
    start_site,
    stop_site,
)

BROWSER_DIR = Path(__file__).resolve().parent
TIMEOUT_MS = 10_000
CONTEXT_DEFAULTS: dict[str, Any] = {"locale": "en-US"}
_REPORTS = pytest.StashKey[dict[str, pytest.TestReport]]()


class NewPage(Protocol):
    def __call__(self, **context_options: Any) -> Page: ...


# ── hooks: the marker, the watch's verdict, screenshots, the summary ─────────────────


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "browser: drives Debian's chromium through Playwright")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if BROWSER_DIR in Path(str(item.path)).resolve().parents:
            item.add_marker(pytest.mark.browser)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Generator[None, object, object]:
    """After a browser test passed: fail it when its pages logged errors or left the node."""
    result = yield
    watch = getattr(item, "funcargs", {}).get("watch")
    if isinstance(watch, Watch):
        watch.settle()
        problems = watch.problems()
        if problems:
            pytest.fail("the browser saw:\n" + "\n".join(f"  {p}" for p in problems))
    return result


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    item.stash.setdefault(_REPORTS, {})[report.when] = report
    return report


def pytest_terminal_summary(terminalreporter: Any) -> None:
    skipped = [
        report
        for report in terminalreporter.stats.get("skipped", [])
        if "apt-get install -y chromium" in str(getattr(report, "longrepr", ""))
    ]
    if skipped:
        terminalreporter.write_sep("-", "browser tests")
        terminalreporter.write_line(f"{len(skipped)} browser tests were SKIPPED: {INSTALL_HINT}")


# ── fixtures ─────────────────────────────────────────────────────────────────────────


@pytest.fixture(scope="package")
def browser() -> Iterator[Browser]:
    """Debian's chromium, headless, for every browser test of the run."""
    path = chromium()
    if path is None:
        if in_ci():
            pytest.fail(f"CI=true: the browser tests must run, but {INSTALL_HINT}")
        pytest.skip(INSTALL_HINT)
    with sync_playwright() as driver:
        launched = driver.chromium.launch(executable_path=path, headless=True)
        yield launched
        launched.close()


@pytest.fixture(scope="package")
def background() -> Iterator[BackgroundLoop]:
    loop = BackgroundLoop()
    yield loop
    loop.close()


@pytest.fixture(scope="module")
def site_env() -> dict[str, str]:
    """Extra SPLITGO_* settings of the module's node: override it in a module."""
    return {}


@pytest.fixture(scope="module")
def site(
    tmp_path_factory: pytest.TempPathFactory,
    background: BackgroundLoop,
    site_env: dict[str, str],
) -> Iterator[Site]:
    folder = tmp_path_factory.mktemp("browser-node")
    running = background.run(start_site(folder, background, site_env))
    yield running
    background.run(stop_site(running))


@pytest.fixture
def watch(site: Site) -> Watch:
    parts = urlsplit(site.url)
    return Watch(origin=f"{parts.scheme}://{parts.netloc}")


@pytest.fixture
def new_page(
    request: pytest.FixtureRequest,
    browser: Browser,
    site: Site,
    watch: Watch,
    tmp_path: Path,
) -> Iterator[NewPage]:
    def make(**context_options: Any) -> Page:
        context = browser.new_context(
            **{**CONTEXT_DEFAULTS, "base_url": site.url, **context_options}
        )
        context.set_default_timeout(TIMEOUT_MS)
        watch.attach(context)
        return context.new_page()

    yield make
    reports = request.node.stash.get(_REPORTS, {})
    failed = any(report.failed for report in reports.values())
    for number, context in enumerate(watch.contexts):
        if failed:
            for index, open_page in enumerate(context.pages):
                shot = tmp_path / f"context{number}-page{index}.png"
                try:
                    open_page.screenshot(path=shot, full_page=True)
                except Exception:  # a screenshot is a courtesy: never a second failure
                    continue
                print(f"screenshot of {open_page.url}: {shot}")
        context.close()


@pytest.fixture
def page(new_page: NewPage) -> Page:
    return new_page()
