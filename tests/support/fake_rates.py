"""A fake ECB rates server the tests run themselves: a real HTTP server on 127.0.0.1.

It serves the three eurofxref files under `/stats/eurofxref/` in the ECB's own format
(`gesmes:Envelope` / `Cube` / `Cube time=` / `Cube currency= rate=`, newest day first),
built from the days a test sets: `eurofxref-daily.xml` holds the newest day,
`eurofxref-hist-90d.xml` the days within 90 of `today` (default: the newest day set),
`eurofxref-hist.xml` every day.

Switches for the unhappy paths: `go_down(status=500)` answers every file with that status,
`go_down(hang=True)` answers nothing until the client gives up (a timeout), `come_up()`
undoes either; `raw` serves those bytes instead of any file (malformed documents);
`delay` holds every answer that long (to make asks overlap). `requests` lists the files
asked for, in order.

    async with FakeRates() as ecb:
        ecb.set_day("2024-05-10", {"USD": "1.0772", "GBP": "0.8612"})
        feed = EcbFeed(http, ecb.url)
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal
from xml.sax.saxutils import quoteattr

from aiohttp import web

DAILY = "eurofxref-daily.xml"
RECENT = "eurofxref-hist-90d.xml"
HISTORY = "eurofxref-hist.xml"
PATH = "/stats/eurofxref/"
_HEAD = (
    '<?xml version="1.0" encoding="UTF-8"?>\n'
    '<gesmes:Envelope xmlns:gesmes="http://www.gesmes.org/xml/2002-08-01" '
    'xmlns="http://www.ecb.int/vocabulary/2002-08-01/eurofxref">\n'
    "\t<gesmes:subject>Reference rates</gesmes:subject>\n"
    "\t<gesmes:Sender>\n\t\t<gesmes:name>European Central Bank</gesmes:name>\n"
    "\t</gesmes:Sender>\n\t<Cube>\n"
)
_TAIL = "\t</Cube>\n</gesmes:Envelope>\n"


def ecb_document(days: Mapping[date, Mapping[str, str]]) -> bytes:
    """An ECB rates file holding `days` (newest first, as the ECB writes them)."""
    lines = [_HEAD]
    for day in sorted(days, reverse=True):
        lines.append(f"\t\t<Cube time='{day.isoformat()}'>\n")
        for currency, rate in days[day].items():
            lines.append(f"\t\t\t<Cube currency={quoteattr(currency)} rate={quoteattr(rate)}/>\n")
        lines.append("\t\t</Cube>\n")
    lines.append(_TAIL)
    return "".join(lines).encode()


@dataclass
class FakeRates:
    """The ECB's eurofxref folder, stood in for; see the module docstring."""

    days: dict[date, dict[str, str]] = field(default_factory=dict)
    today: date | None = None  # where the 90-day file ends (default: the newest day set)
    status: int | None = None  # down: every file answers this status
    hang: bool = False  # down: no answer until the client gives up
    delay: float = 0.0  # seconds every answer waits first
    raw: bytes | None = None  # served instead of any file
    requests: list[str] = field(default_factory=list)
    _runner: web.AppRunner | None = None
    _url: str | None = None
    _released: asyncio.Event = field(default_factory=asyncio.Event)

    # ── lifecycle ──────────────────────────────────────────────────────────────────────

    @property
    def url(self) -> str:
        """The folder's URL, e.g. http://127.0.0.1:54321/stats/eurofxref/ (after `start()`)."""
        if self._url is None:
            raise RuntimeError("the fake rates server is not started")
        return self._url

    async def start(self) -> None:
        app = web.Application()
        app.router.add_get(PATH + "{name}", self._serve)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        host, port = self._runner.addresses[0][:2]
        self._url = f"http://{host}:{port}{PATH}"

    async def stop(self) -> None:
        self._released.set()  # a hanging answer ends now, not at its own pace
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> FakeRates:
        await self.start()
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await self.stop()

    # ── test controls ──────────────────────────────────────────────────────────────────

    def set_day(self, day: date | str, rates: Mapping[str, str | Decimal]) -> None:
        """Publish `rates` (units per 1 EUR) for `day`, replacing what it had."""
        when = date.fromisoformat(day) if isinstance(day, str) else day
        self.days[when] = {currency: str(rate) for currency, rate in rates.items()}

    def go_down(self, *, status: int = 500, hang: bool = False) -> None:
        """Answer every file with `status`, or (`hang`) with nothing at all."""
        self.status, self.hang = (None, True) if hang else (status, False)
        self._released.clear()

    def come_up(self) -> None:
        self.status, self.hang, self.raw = None, False, None
        self._released.set()

    def count(self, document: str | None = None) -> int:
        """How many requests came (for `document` only, if given)."""
        return sum(1 for name in self.requests if document is None or name == document)

    def document(self, name: str) -> bytes:
        """The file `name` as it stands now."""
        if not self.days:
            return ecb_document({})
        newest = max(self.days)
        if name == DAILY:
            chosen = {newest: self.days[newest]}
        elif name == RECENT:
            since = (self.today or newest) - timedelta(days=90)
            chosen = {day: rates for day, rates in self.days.items() if day > since}
        else:
            chosen = dict(self.days)
        return ecb_document(chosen)

    # ── the handler ────────────────────────────────────────────────────────────────────

    async def _serve(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        self.requests.append(name)
        if self.hang:
            await self._released.wait()
        if self.delay:
            await asyncio.sleep(self.delay)
        if self.status is not None:
            return web.Response(status=self.status, text="the fake was told to fail")
        if self.raw is not None:
            return web.Response(body=self.raw, content_type="text/xml")
        if name not in (DAILY, RECENT, HISTORY):
            return web.Response(status=404)
        return web.Response(body=self.document(name), content_type="text/xml")
