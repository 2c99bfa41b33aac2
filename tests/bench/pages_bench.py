"""The web app's group page and home, served by a real node over HTTP, against the JSON
API's reads of the same data from the same node, in one run.

The requirement (issue 16, item 9): a group page of a 1,000-member, 100,000-expense group
(2-8 people an expense) renders its first page of expenses and the viewer's balance with
p99 < 50 ms; home for a user in 20 groups with p99 < 30 ms; side by side with the JSON
API for the same data.

The node: `splitgo.node.Node` started in this process (every actor, the HTTP edge with the
pages, the name book, the memory transport, an embedded PostgreSQL in a temporary folder),
listening on 127.0.0.1 on a free port, logging at warning; the edge's rate limit is off,
as in the e2e tests, since every client signs in from one address (the GETs measured are
not rate limited anyway). The clients are in this process too (asyncio tasks on the
node's event loop, one request or one set of requests at a time each), so a request's
time includes the client's own sending and reading, and the clients' work shares the
loop with the node's.

Seeding (not measured):

* the big group as the splits bench makes it (`splits_bench._seed_big_group`: CreateGroup
  through the Splits actor, then `members` members, `expenses` expenses with one payer and
  2-8 people sharing each equally, their lines and the kept balances by COPY);
* a `users` row with a display name for every member (`names_bench._seed_users`, COPY),
  and for `concurrency` home users; the first `concurrency` members and the home users get
  a password (one argon2id hash) and a verified address;
* for each home user, `home_groups` groups (default 20) of `home_group_members` members
  (the home user and members of the big group) with `home_group_expenses` expenses each,
  all through the Splits actor (CreateGroup, AddMember, AddExpense): kept balances,
  activity and the in-app notifications those make are real. Then the actors' mailboxes
  are waited empty and the collector settled as a started node settles it.

Each client is a person signed in twice: a browser session (a cookie jar; GET /sign-in,
then the form POSTed with its CSRF token, as a browser without JavaScript does) and a
JSON client (POST /api/v1/auth/login, the bearer token). Client i is the big group's
member i for the group page and home user i for home.

Read systems, each from `concurrency` clients (default 8) and the two pages and their
JSON counterparts also from 1 client:

* group page: `GET /groups/{id}` (the Expenses tab: the group with its members named,
  the viewer's balance, the newest page of 50 expenses, rendered by Jinja2);
* JSON for the same data: `GET /api/v1/groups/{id}`, `GET /api/v1/groups/{id}/expenses`
  (first page, 50) and `GET /api/v1/groups/{id}/balances` sent at once (a client fetching
  them together), timed until the last body is read; and each of the three alone;
* home: `GET /home`;
* JSON for home: `GET /api/v1/me/summary` and `GET /api/v1/groups` at once; each alone.

Every answer must be 200 (else the section stops). Method as in names_bench: one warm-up
round of each (a quarter of the reads), then `rounds` interleaved rounds (rotating order);
rates and percentiles are medians over rounds, the page-against-JSON ratios medians of
per-round ratios. These closed-loop rounds keep the node saturated: each client asks again
the moment it is answered, so a read's latency is mostly its wait behind the other
clients' reads (about `concurrency` times one read's work on a one-thread node) and
measures throughput more than a page's latency.

Then the latency as a person meets it, paced: each page, and one JSON read of its data,
offered at PACED_SHARE (half) of the page's closed-loop read rate just measured, for
PACED_SECONDS, by tests/bench/loadgen.py in a process of its own (the browser sessions'
cookies and the bearer tokens in files, `concurrency` workers taking turns), latency
counted from when each read was due (a stalled node cannot hide). Judged: the group page's
and home's paced p99 against 50 ms and 30 ms; the JSON reads paced alike and the
closed-loop p99s are shown against the same numbers, not judged.

Checked before timing: the group page lists the same 50 expenses, in the same order, as
the JSON's first page and states the viewer's net from the JSON balances in words and
money; the JSON group names all members; home links every group of the JSON summary (20).
After timing: no actor shard failed a message or dead-lettered one.

With `profile_reads` (`--pages-profile N`), after timing, N sequential reads of each page
from one client run under cProfile (the node and the client together, so slower than
unprofiled): the time per read split into Jinja2 rendering, turning replies into plain
values with names (`pages.render.named`), the Splits actor's handlers, the session check
and the rest (HTTP server and client, event loop, transport), and the functions with the
most own time. Shown and written with the results; nothing is judged on it.

Not measured: a browser's own work (parsing, CSS, the JavaScript modules), static files,
the live updates over the WebSocket, TLS, a separate load-generating process.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import cProfile
import json
import os
import pstats
import random
import re
import shutil
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg

from actors.auth.passwords import Passwords
from actors.runtime import ActorRef
from actors.splits.messages import (
    AddExpense,
    AddMember,
    CreateGroup,
    ExpenseView,
    GroupView,
    Payer,
    ShareLine,
)
from splitgo import heap
from splitgo.composition import ACTORS
from splitgo.config import load
from splitgo.node import Node
from splitgo.pages.expenses import PAGE_SIZE
from splitgo.pages.money import format_money
from tests.bench.http_bench import loadgen
from tests.bench.names_bench import _names, _seed_users
from tests.bench.splits_bench import (
    CURRENCY,
    RoundResult,
    SplitsBenchConfig,
    SystemResult,
    Target,
    _drive,
    _Node,
    _ok,
    _ratios,
    _seed_big_group,
    read_rows,
)

Progress = Callable[[str], None]
Read = Callable[[int], Awaitable[None]]

PROJECT_ROOT = Path(__file__).resolve().parents[2]

GROUP_P99_TARGET_MS = 50.0  # GET /groups/{id}, p99
HOME_P99_TARGET_MS = 30.0  # GET /home, p99
PASSWORD = "bench-pages-password-1"
QUIET_TIMEOUT_S = 120.0  # longest wait for the actors' mailboxes to empty after seeding
SEED_CONCURRENCY = 16  # home groups made at once (more overruns the node's 5 s asks)
_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
_EXPENSE_ROW = re.compile(r'data-expense-id="([^"]+)"')
_BALANCE = re.compile(r'<p class="group-balance"[^>]*>(.*?)</p>', re.S)
_TAGS = re.compile(r"<[^>]+>")
_STDLIB = re.compile(r"^.*/lib/python3\.\d+/")
PACED_SHARE = 0.5  # the paced runs offer this share of the node's closed-loop read rate
PACED_SECONDS = 10.0
PACED_WARMUP_S = 1.0
_PLACES = ("Lisbon", "Flat", "Ski trip", "Dinners", "Office", "Climbing", "Band", "Book club")


@dataclass
class PagesBenchConfig:
    """The big group's size, the home users' groups, and the reads per round."""

    members: int = 1_000
    expenses: int = 100_000
    reads: int = 200  # per round, each group system at `concurrency` clients
    home_reads: int = 400  # per round, each home system at `concurrency` clients
    rounds: int = 3
    concurrency: int = 8
    home_groups: int = 20
    home_group_members: int = 5
    home_group_expenses: int = 5
    pool_size: int = 20
    seed: int = 17
    profile_reads: int = 0  # after timing, cProfile this many reads of each page (0: none)

    def __post_init__(self) -> None:
        if self.profile_reads < 0:
            raise ValueError("profile_reads must be 0 (no profile) or more")
        if min(self.reads, self.home_reads, self.rounds, self.concurrency, self.pool_size) < 1:
            raise ValueError("reads, rounds, concurrency and pool_size must be at least 1")
        if not 8 <= self.members <= 1_000:
            raise ValueError("the big group has 8 to 1,000 members (MAX_MEMBERS)")
        if self.concurrency > self.members:
            raise ValueError("every client signs in as a member of the big group")
        if self.expenses < PAGE_SIZE + 1:
            raise ValueError(f"the big group needs more than one page ({PAGE_SIZE}) of expenses")
        if self.home_groups < 1 or not 2 <= self.home_group_members <= self.members:
            raise ValueError("home users need groups of 2 or more members")
        if self.home_group_expenses < 1:
            raise ValueError("each home group needs at least one expense")

    @property
    def single_reads(self) -> int:
        """Reads per round of the group systems from 1 client."""
        return max(self.reads // 2, 1)

    @property
    def single_home_reads(self) -> int:
        """Reads per round of the home systems from 1 client."""
        return max(self.home_reads // 2, 1)


@dataclass
class PacedResult:
    """One paced run (tests/bench/loadgen.py in a process of its own): reads offered at
    `rate` a second, latency counted from when each read was due."""

    key: str
    label: str
    rate: float
    reads_per_s: float
    p50_ms: float
    p99_ms: float
    errors: int

    def as_json(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "label": self.label,
            "offered_per_s": round(self.rate, 1),
            "reads_per_s": self.reads_per_s,
            "p50_ms": self.p50_ms,
            "p99_ms": self.p99_ms,
            "errors": self.errors,
        }


@dataclass
class PagesReport:
    """Everything one run measured, the ratios, the verdicts and the checks."""

    config: PagesBenchConfig
    seeding: dict[str, Any]
    reads: dict[str, SystemResult]
    ratios: dict[str, dict[str, float]]
    checks: dict[str, Any]
    sizes: dict[str, int]
    seconds: float
    load_average: tuple[float, float, float] | None = None
    actors: dict[str, int] = field(default_factory=dict)
    profiles: list[Profile] = field(default_factory=list)
    paced: dict[str, PacedResult] = field(default_factory=dict)

    @property
    def targets(self) -> list[Target]:
        """The two pages at a paced half of the node's capacity (judged), then their JSON
        counterparts paced alike and the saturated closed-loop figures (shown, not judged)."""
        clients = self.config.concurrency
        paced = [
            Target(f"{self.paced[key].label} p99, paced", self.paced[key].p99_ms, limit, "ms")
            for key, limit in (
                ("group_page", GROUP_P99_TARGET_MS),
                ("home", HOME_P99_TARGET_MS),
                ("api_expenses", GROUP_P99_TARGET_MS),
                ("api_summary", HOME_P99_TARGET_MS),
            )
            if key in self.paced
        ]
        return [
            *paced,
            Target(
                f"group page p99, {clients} clients",
                self.reads["group_page"].p99_ms,
                GROUP_P99_TARGET_MS,
                "ms",
            ),
            Target(
                f"home p99, {clients} clients", self.reads["home"].p99_ms, HOME_P99_TARGET_MS, "ms"
            ),
            Target(
                f"group JSON (3 GETs) p99, {clients} cl.",
                self.reads["group_json"].p99_ms,
                GROUP_P99_TARGET_MS,
                "ms",
            ),
            Target(
                f"home JSON (2 GETs) p99, {clients} cl.",
                self.reads["home_json"].p99_ms,
                HOME_P99_TARGET_MS,
                "ms",
            ),
        ]

    @property
    def judged(self) -> list[Target]:
        return [t for t in self.targets if t.name.endswith("(page) p99, paced")]

    @property
    def checks_passed(self) -> bool:
        return all(bool(value) for key, value in self.checks.items() if key.endswith("_ok"))

    @property
    def all_passed(self) -> bool:
        return all(t.passed for t in self.judged) and self.checks_passed

    def as_json(self) -> dict[str, Any]:
        c = self.config
        return {
            "config": {
                "members": c.members,
                "expenses": c.expenses,
                "reads": c.reads,
                "home_reads": c.home_reads,
                "single_client_reads": c.single_reads,
                "single_client_home_reads": c.single_home_reads,
                "rounds": c.rounds,
                "warm_up_rounds": 1,
                "concurrency": c.concurrency,
                "home_groups": c.home_groups,
                "home_group_members": c.home_group_members,
                "home_group_expenses": c.home_group_expenses,
                "page_size": PAGE_SIZE,
                "pool_size": c.pool_size,
                "splits_shards": ACTORS["splits"].shards,
                "statistic": "median",
                "interleaved": True,
                "node": "splitgo.node.Node in this process: every actor, memory transport, "
                "embedded PostgreSQL, HTTP on 127.0.0.1",
                "clients": "aiohttp in the same process and event loop, keep-alive; a "
                "browser session cookie (signed in through /sign-in) or a bearer token",
            },
            "seeding": self.seeding,
            "reads": {key: result.as_json("reads_per_s") for key, result in self.reads.items()},
            "page_vs_json": {
                key: {
                    "p50": round(r["p50"], 3),
                    "p99": round(r["p99"], 3),
                    "reads_per_s_drop": round(r["rate"], 3),
                }
                for key, r in self.ratios.items()
            },
            "response_bytes": self.sizes,
            "targets": [{**t.as_json(), "judged": t in self.judged} for t in self.targets],
            "checks": self.checks,
            "actor_shards": self.actors,
            "load_average": list(self.load_average) if self.load_average else None,
            "profiles": [profile.as_json() for profile in self.profiles],
            "paced": {key: result.as_json() for key, result in self.paced.items()},
            "paced_share_of_capacity": PACED_SHARE,
            "all_passed": self.all_passed,
            "seconds": round(self.seconds, 2),
        }

    def format(self) -> str:
        c = self.config
        lines = read_rows(
            f"read ({c.members:,} members, {c.expenses:,} exp.)",
            (self.reads[key] for key in GROUP_SYSTEMS),
        )
        lines += read_rows(
            f"read (home, {c.home_groups} groups)", (self.reads[key] for key in HOME_SYSTEMS)
        )[1:]
        lines += [
            f"(medians of {c.rounds} interleaved rounds; per round {c.reads:,} group reads and "
            f"{c.home_reads:,} home reads from {c.concurrency} clients, {c.single_reads:,} and "
            f"{c.single_home_reads:,} from 1 client; over HTTP from clients in the node's process)",
            "",
            f"{'page against JSON (x slower)':<34} {'clients':>7} {'p50':>9} {'p99':>9} "
            f"{'reads/s drop':>13}",
            "-" * 91,
        ]
        for key, r in self.ratios.items():
            label, clients = RATIO_LABELS[key]
            clients_shown = c.concurrency if clients is None else clients
            lines.append(
                f"{label:<34} {clients_shown:>7} {r['p50']:>8.2f}x {r['p99']:>8.2f}x "
                f"{r['rate']:>12.2f}x"
            )
        if self.paced:
            lines += [
                "",
                f"paced: each read offered at {PACED_SHARE:.0%} of the page's {c.concurrency}-"
                f"client closed-loop rate above, for {PACED_SECONDS:g} s, from a load generator "
                "process",
                f"{'read':<34} {'offered/s':>9} {'reads/s':>9} {'p50 ms':>9} {'p99 ms':>9} "
                f"{'errors':>7}",
                "-" * 91,
            ]
            for run in self.paced.values():
                lines.append(
                    f"{run.label:<34} {run.rate:>9.1f} {run.reads_per_s:>9.1f} "
                    f"{run.p50_ms:>9.2f} {run.p99_ms:>9.2f} {run.errors:>7}"
                )
        s = self.sizes
        lines += [
            "",
            f"bytes: group page {s['group_page']:,}, its JSON {s['group_json']:,} (group "
            f"{s['api_group']:,}, expenses {s['api_expenses']:,}, balances "
            f"{s['api_balances']:,}); home {s['home']:,}, its JSON {s['home_json']:,}",
            "",
            f"{'target':<34} {'measured':>10} {'target':>10}  result",
            "-" * 91,
        ]
        for t in self.targets:
            verdict = "PASS" if t.passed else "FAIL"
            if t not in self.judged:
                verdict = ("below" if t.passed else "above") + " (reference, not judged)"
            lines.append(
                f"{t.name:<34} {t.value:>7.2f} ms {'< ' + format(t.target, 'g') + ' ms':>10}"
                f"  {verdict}"
            )
        seeding, k = self.seeding, self.checks
        lines += [
            "",
            f"seeding: big group in {seeding['big_group_seconds']:.1f} s, {seeding['users']:,} "
            f"users in {seeding['users_seconds']:.2f} s, {seeding['home_groups']:,} home groups "
            f"with {seeding['home_expenses']:,} expenses through the actor in "
            f"{seeding['home_seconds']:.1f} s, quiet after {seeding['quiet_seconds']:.1f} s",
            f"checks: page lists the JSON's first {PAGE_SIZE} expenses "
            f"{_ok(k['page_expenses_ok'])}; "
            f"page states the JSON balance ({k['balance_words']}) {_ok(k['page_balance_ok'])}; "
            f"JSON names all {c.members:,} members {_ok(k['json_members_named_ok'])}; home links "
            f"all {k['home_groups_listed']} groups {_ok(k['home_groups_ok'])}; no actor failures "
            f"{_ok(k['no_actor_failures_ok'])}; paced reads all 200 "
            f"{_ok(k.get('paced_no_errors_ok', True))}",
        ]
        if self.load_average is not None:
            one, five, fifteen = self.load_average
            lines.append(f"load average at the end: {one:.2f} {five:.2f} {fifteen:.2f}")
        for profile in self.profiles:
            lines += ["", profile.format()]
        return "\n".join(lines)


GROUP_SYSTEMS = (
    "group_page",
    "group_json",
    "api_group",
    "api_expenses",
    "api_balances",
    "group_page_1",
    "group_json_1",
)
HOME_SYSTEMS = ("home", "home_json", "api_summary", "api_groups", "home_1", "home_json_1")
RATIO_LABELS: dict[str, tuple[str, int | None]] = {
    "group": ("GET /groups/{id} vs its 3 JSON GETs", None),
    "group_1": ("GET /groups/{id} vs its 3 JSON GETs", 1),
    "home": ("GET /home vs its 2 JSON GETs", None),
    "home_1": ("GET /home vs its 2 JSON GETs", 1),
}


# ── the node, seeded ───────────────────────────────────────────────────────────────────


@dataclass
class _Person:
    """One client: a browser signed in with a cookie, and a JSON client with a token."""

    user_id: str
    email: str
    browser: aiohttp.ClientSession
    api: aiohttp.ClientSession


async def _quiet(node: Node, timeout: float) -> float:
    """Wait until every actor's mailbox has stayed empty for half a second; seconds taken."""
    assert node.system is not None
    started = time.perf_counter()
    quiet_since: float | None = None
    while time.perf_counter() - started < timeout:
        busy = any(shard.mailbox for shard in node.system.live_shards())
        now = time.perf_counter()
        if busy:
            quiet_since = None
        elif quiet_since is None:
            quiet_since = now
        elif now - quiet_since >= 0.5:
            return now - started
        await asyncio.sleep(0.05)
    raise RuntimeError(f"the actors were still busy {timeout:g} s after seeding")


async def _seed_home_groups(
    splits: ActorRef, config: PagesBenchConfig, home_users: list[str], others: list[str]
) -> tuple[int, int]:
    """Each home user's groups, members and expenses through the Splits actor; (groups,
    expenses) made."""
    rng = random.Random(config.seed + 1)
    plans: list[tuple[str, str, list[str], str]] = []
    for h, user in enumerate(home_users):
        for g in range(config.home_groups):
            members = [user, *rng.sample(others, config.home_group_members - 1)]
            name = f"{_PLACES[g % len(_PLACES)]} {g + 1}"
            plans.append((f"bench-home-{h:02d}-{g:02d}", user, members, name))

    async def make(group_id: str, owner: str, members: list[str], name: str) -> int:
        view = await splits.ask(
            CreateGroup(group_id=group_id, user_id=owner, name=name, currency=CURRENCY)
        )
        if type(view) is not GroupView:
            raise RuntimeError(f"CreateGroup answered {view!r:.200}")
        for member in members[1:]:
            await splits.ask(AddMember(group_id=group_id, user_id=owner, member_user_id=member))
        local = random.Random(group_id)
        for e in range(config.home_group_expenses):
            payer = local.choice(members)
            sharers = local.sample(members, local.randint(2, len(members)))
            amount = local.randint(100, 20_000)
            reply = await splits.ask(
                AddExpense(
                    group_id=group_id,
                    user_id=payer,
                    expense_id=f"{group_id}-e{e}",
                    description=f"{name} expense {e + 1}",
                    amount=amount,
                    currency=CURRENCY,
                    paid_by=[Payer(user_id=payer, amount=amount)],
                    split_mode="equal",
                    shares=[ShareLine(user_id=sharer) for sharer in sharers],
                )
            )
            if type(reply) is not ExpenseView:
                raise RuntimeError(f"AddExpense answered {reply!r:.200}")
        return config.home_group_expenses

    gate = asyncio.Semaphore(SEED_CONCURRENCY)

    async def gated(plan: tuple[str, str, list[str], str]) -> int:
        async with gate:
            return await make(*plan)

    made = await asyncio.gather(*(gated(plan) for plan in plans))
    return len(plans), sum(made)


async def _give_passwords(pool: asyncpg.Pool, users: list[str]) -> None:
    """A password (one argon2id hash for all) and a verified address for `users`."""
    hashed = await Passwords().hash(PASSWORD)
    await pool.execute(
        "UPDATE users SET password_hash = $1, email_verified = true WHERE id = ANY($2::text[])",
        hashed,
        users,
    )


async def _sign_in(url: str, user_id: str, email: str) -> _Person:
    """A browser signed in through the form, and a JSON client through the login route."""
    browser = aiohttp.ClientSession(
        cookie_jar=aiohttp.CookieJar(unsafe=True), headers={"Accept": "text/html"}
    )
    api = aiohttp.ClientSession()
    try:
        async with browser.get(f"{url}/sign-in") as response:
            form = await response.text()
        found = _CSRF.search(form)
        if response.status != 200 or found is None:
            raise RuntimeError(f"GET /sign-in answered {response.status} without a CSRF token")
        data = {"csrf_token": found[1], "email": email, "password": PASSWORD, "next": "/home"}
        async with browser.post(f"{url}/sign-in", data=data, allow_redirects=False) as response:
            if response.status != 303:
                raise RuntimeError(f"POST /sign-in answered {response.status}")
        body = {"email": email, "password": PASSWORD}
        async with api.post(f"{url}/api/v1/auth/login", json=body) as response:
            pair = await response.json()
            if response.status != 200:
                raise RuntimeError(f"POST /api/v1/auth/login answered {response.status}: {pair}")
        api.headers["Authorization"] = f"Bearer {pair['access_token']}"
    except BaseException:
        await browser.close()
        await api.close()
        raise
    return _Person(user_id, email, browser, api)


# ── the read systems ───────────────────────────────────────────────────────────────────


async def _get(session: aiohttp.ClientSession, url: str) -> bytes:
    async with session.get(url) as response:
        body = await response.read()
        if response.status != 200:
            raise RuntimeError(f"GET {url} answered {response.status}: {body[:200]!r}")
    return body


class _Reads:
    """The group page and home, and the JSON reads of the same data, per client."""

    def __init__(
        self,
        url: str,
        group_id: str,
        members: list[_Person],
        home_users: list[_Person],
        home_groups: int,
    ) -> None:
        self.members = members
        self.home_users = home_users
        self.home_groups = home_groups  # each home user's groups, as seeded
        self.page_url = f"{url}/groups/{group_id}"
        self.group_url = f"{url}/api/v1/groups/{group_id}"
        self.expenses_url = f"{self.group_url}/expenses"
        self.balances_url = f"{self.group_url}/balances"
        self.home_url = f"{url}/home"
        self.summary_url = f"{url}/api/v1/me/summary"
        self.groups_url = f"{url}/api/v1/groups"

    def _member(self, index: int) -> _Person:
        return self.members[index % len(self.members)]

    def _home_user(self, index: int) -> _Person:
        return self.home_users[index % len(self.home_users)]

    async def group_page(self, index: int) -> bytes:
        return await _get(self._member(index).browser, self.page_url)

    async def group_json(self, index: int) -> list[bytes]:
        api = self._member(index).api
        return list(
            await asyncio.gather(
                _get(api, self.group_url),
                _get(api, self.expenses_url),
                _get(api, self.balances_url),
            )
        )

    async def api_group(self, index: int) -> bytes:
        return await _get(self._member(index).api, self.group_url)

    async def api_expenses(self, index: int) -> bytes:
        return await _get(self._member(index).api, self.expenses_url)

    async def api_balances(self, index: int) -> bytes:
        return await _get(self._member(index).api, self.balances_url)

    async def home(self, index: int) -> bytes:
        return await _get(self._home_user(index).browser, self.home_url)

    async def home_json(self, index: int) -> list[bytes]:
        api = self._home_user(index).api
        return list(await asyncio.gather(_get(api, self.summary_url), _get(api, self.groups_url)))

    async def api_summary(self, index: int) -> bytes:
        return await _get(self._home_user(index).api, self.summary_url)

    async def api_groups(self, index: int) -> bytes:
        return await _get(self._home_user(index).api, self.groups_url)

    def systems(self, config: PagesBenchConfig) -> list[tuple[str, str, Read, int, int]]:
        """(key, label, one read, reads per round, clients) of every system."""
        many, n, n1 = config.concurrency, config.reads, config.single_reads
        h, h1 = config.home_reads, config.single_home_reads

        return [
            ("group_page", "GET /groups/{id} (page)", _discard(self.group_page), n, many),
            ("group_json", "its JSON: 3 GETs at once", _discard(self.group_json), n, many),
            ("api_group", "  GET /api/v1/groups/{id}", _discard(self.api_group), n, many),
            ("api_expenses", "  GET .../expenses (first 50)", _discard(self.api_expenses), n, many),
            ("api_balances", "  GET .../balances", _discard(self.api_balances), n, many),
            ("group_page_1", "GET /groups/{id} (page)", _discard(self.group_page), n1, 1),
            ("group_json_1", "its JSON: 3 GETs at once", _discard(self.group_json), n1, 1),
            ("home", "GET /home (page)", _discard(self.home), h, many),
            ("home_json", "its JSON: 2 GETs at once", _discard(self.home_json), h, many),
            ("api_summary", "  GET /api/v1/me/summary", _discard(self.api_summary), h, many),
            ("api_groups", "  GET /api/v1/groups", _discard(self.api_groups), h, many),
            ("home_1", "GET /home (page)", _discard(self.home), h1, 1),
            ("home_json_1", "its JSON: 2 GETs at once", _discard(self.home_json), h1, 1),
        ]


def _discard(read: Callable[[int], Awaitable[Any]]) -> Read:
    """`read`, its answer dropped (what _drive calls)."""

    async def one(index: int) -> None:
        await read(index)

    return one


def _text_of(html: str) -> str:
    return " ".join(_TAGS.sub(" ", html).split())


async def _check(reads: _Reads, members: int) -> tuple[dict[str, Any], dict[str, int]]:
    """The page shows what the JSON says; the sizes of both."""
    page = (await reads.group_page(0)).decode()
    group_raw, expenses_raw, balances_raw = await reads.group_json(0)
    group, expenses, balances = (json.loads(raw) for raw in (group_raw, expenses_raw, balances_raw))
    me = reads.members[0].user_id
    json_ids = [expense["id"] for expense in expenses["items"]]
    nets = [line for line in balances["balances"] if line["user_id"] == me and line["net"] != 0]
    shown = _BALANCE.search(page)
    words = _text_of(shown[1]) if shown else ""
    # one line per currency with a balance, by currency (the page's order)
    said = []
    for line in sorted(nets, key=lambda line: line["currency"]):
        money = format_money(abs(line["net"]), line["currency"])
        said.append(f"You are owed +{money}" if line["net"] > 0 else f"You owe {money}")
    expected = " ".join(said) or "All settled"
    home_page = (await reads.home(0)).decode()
    summary_raw, groups_raw = await reads.home_json(0)
    summary = json.loads(summary_raw)
    linked = [g for g in summary["groups"] if f'href="/groups/{g["group_id"]}"' in home_page]
    checks = {
        "page_expenses_ok": _EXPENSE_ROW.findall(page) == json_ids and len(json_ids) == PAGE_SIZE,
        "page_balance_ok": words == expected,
        "balance_words": words,
        "json_members_named_ok": len(group["members"]) == members
        and all(member.get("name") for member in group["members"]),
        "home_groups_listed": len(linked),
        "home_groups_ok": len(linked) == len(summary["groups"]) == reads.home_groups,
    }
    sizes = {
        "group_page": len(page.encode()),
        "group_json": len(group_raw) + len(expenses_raw) + len(balances_raw),
        "api_group": len(group_raw),
        "api_expenses": len(expenses_raw),
        "api_balances": len(balances_raw),
        "home": len(home_page.encode()),
        "home_json": len(summary_raw) + len(groups_raw),
    }
    return checks, sizes


# ── the run ────────────────────────────────────────────────────────────────────────────


def _line(prefix: str, label: str, clients: int, result: RoundResult) -> str:
    return (
        f"  {prefix:<9} {label:<33} {clients:>2} cl. {result.rate:>9,.1f} reads/s   "
        f"p50 {result.p50_ms:8.2f} ms   p99 {result.p99_ms:8.2f} ms   (n={result.n:,})"
    )


def _load_average() -> tuple[float, float, float] | None:
    try:
        return os.getloadavg()
    except OSError:
        return None


@dataclass
class _Seeded:
    """A started node with the big group, the users and the home groups in it, and the
    clients signed in to it."""

    node: Node
    reads: _Reads
    seeding: dict[str, Any]


@contextlib.asynccontextmanager
async def _seeded(
    config: PagesBenchConfig, progress: Progress, folder: Path
) -> AsyncIterator[_Seeded]:
    """Start a node in `folder`, seed it and sign the clients in; stop it all afterwards."""
    settings = load(
        {
            "SPLITGO_HOST": "127.0.0.1",
            "SPLITGO_PORT": "0",
            "SPLITGO_NODE_ID": "bench-pages",
            "SPLITGO_DATA_DIR": str(folder / "data"),
            "SPLITGO_DB_POOL_SIZE": str(config.pool_size),
            "SPLITGO_LOG_LEVEL": "warning",
            # every client signs in from 127.0.0.1 (the GETs measured are not rate limited)
            "SPLITGO_RATE_LIMIT": "0",
        }
    )
    progress(f"  starting a node (every actor, embedded PostgreSQL in {folder})")
    node = Node(settings)
    people: list[_Person] = []
    try:
        await node.start()
        assert node.database is not None
        assert node.system is not None
        pool = node.database.pool
        splits = node.system.ref("splits")
        shim = _Node(pool, ACTORS["splits"].shards)  # _seed_big_group asks through .ref
        shim.system, shim.ref = node.system, splits
        progress(f"  node listening on {node.url}")

        seeded = time.perf_counter()
        group, big = await _seed_big_group(
            shim,
            pool,
            SplitsBenchConfig(members=config.members, expenses=config.expenses, seed=config.seed),
            progress,
        )
        big_seconds = time.perf_counter() - seeded
        home_ids = [f"bench-home-{i:02d}" for i in range(config.concurrency)]
        viewers = group.members[: config.concurrency]
        seeded = time.perf_counter()
        names = _names(group.members + home_ids, config.seed)
        await _seed_users(pool, names)
        await _give_passwords(pool, viewers + home_ids)
        users_seconds = time.perf_counter() - seeded
        progress(
            f"  seeding: {len(names):,} users by COPY, {len(viewers + home_ids)} with a "
            f"password ({users_seconds:.2f} s)"
        )
        seeded = time.perf_counter()
        home_groups, home_expenses = await _seed_home_groups(
            splits, config, home_ids, group.members
        )
        home_seconds = time.perf_counter() - seeded
        progress(
            f"  seeding: {home_groups} home groups, {home_expenses:,} expenses through the "
            f"Splits actor ({home_seconds:.1f} s); waiting for the actors to be quiet"
        )
        quiet_seconds = await _quiet(node, QUIET_TIMEOUT_S)
        seeding = {
            "members": config.members,
            "expenses": config.expenses,
            "lines": big["lines"],
            "big_group_seconds": round(big_seconds, 2),
            "users": len(names),
            "users_seconds": round(users_seconds, 2),
            "home_users": len(home_ids),
            "home_groups": home_groups,
            "home_expenses": home_expenses,
            "home_seconds": round(home_seconds, 2),
            "quiet_seconds": round(quiet_seconds, 2),
            "method": "the big group as splits_bench seeds it (COPY); users by COPY "
            "(names_bench); home groups, members and expenses through the Splits actor",
        }
        for user in viewers + home_ids:
            people.append(await _sign_in(node.url, user, f"{user}@bench.example"))
        members, home_users = people[: len(viewers)], people[len(viewers) :]
        progress(f"  signed in {len(people)} browsers (form) and JSON clients (login)")
        reads = _Reads(node.url, group.group_id, members, home_users, config.home_groups)
        yield _Seeded(node, reads, seeding)
    finally:
        for person in people:
            await person.browser.close()
            await person.api.close()
        await node.stop()


@dataclass
class Profile:
    """Where one page's time goes: cProfile over sequential reads from one client (the
    node and the client profiled together, in this process), per read."""

    page: str
    reads: int
    per_read_ms: float  # profiled; cProfile itself makes every call slower
    buckets: dict[str, float]  # part -> ms per read (cumulative time of its functions)
    top: list[tuple[str, float, float]]  # function, own ms per read, cumulative ms per read

    def as_json(self) -> dict[str, Any]:
        return {
            "page": self.page,
            "reads": self.reads,
            "profiled_ms_per_read": round(self.per_read_ms, 2),
            "parts_ms_per_read": {name: round(ms, 2) for name, ms in self.buckets.items()},
            "top_functions_by_own_time": [
                {"function": name, "own_ms": round(own, 3), "cumulative_ms": round(cum, 3)}
                for name, own, cum in self.top
            ],
        }

    def format(self) -> str:
        lines = [
            f"where {self.page} goes (cProfile, {self.reads} reads from 1 client, node and "
            f"client together): {self.per_read_ms:.1f} ms a read profiled",
        ]
        for name, ms in self.buckets.items():
            share = ms / self.per_read_ms if self.per_read_ms else 0.0
            lines.append(f"  {name:<58} {ms:7.2f} ms  {share:4.0%}")
        lines.append("  functions with the most own time (ms a read: own / cumulative):")
        for name, own, cum in self.top:
            lines.append(f"    {own:6.3f} / {cum:6.3f}  {name}")
        return "\n".join(lines)


# part of a page -> (file, functions) whose cumulative time it is; the rest is the HTTP
# server and client, the event loop and the transport
PROFILED_PARTS: dict[str, tuple[str, tuple[str, ...]]] = {
    "Jinja2 rendering (pages/render.py render)": ("splitgo/pages/render.py", ("render",)),
    "replies to plain values + names (pages/render.py named)": (
        "splitgo/pages/render.py",
        ("named",),
    ),
    "splits actor's handlers (actors/splits/actor.py)": (
        "actors/splits/actor.py",
        ("get_group", "get_balances", "list_expenses", "get_summary"),
    ),
    "session check (pages/sessions.py viewer_of)": ("splitgo/pages/sessions.py", ("viewer_of",)),
}
PROFILE_TOP = 12


async def _profile(page: str, read: Read, n: int) -> Profile:
    """cProfile `n` sequential reads of `read` (after a few unprofiled ones)."""
    for index in range(min(n, 5)):
        await read(index)
    profiler = cProfile.Profile()
    profiler.enable()
    for index in range(n):
        await read(index)
    profiler.disable()
    stats = pstats.Stats(profiler)
    table: dict[tuple[str, int, str], tuple[int, int, float, float, Any]] = stats.stats  # type: ignore[attr-defined]
    total = sum(own for _, _, own, _, _ in table.values())
    buckets: dict[str, float] = {}
    for part, (path, functions) in PROFILED_PARTS.items():
        cumulative = sum(
            cum
            for (filename, _, function), (_, _, _, cum, _) in table.items()
            if filename.endswith(path) and function in functions
        )
        buckets[part] = cumulative * 1000 / n
    buckets["the rest: HTTP server and client, event loop, transport"] = max(
        total * 1000 / n - sum(buckets.values()), 0.0
    )
    ranked = sorted(table.items(), key=lambda item: item[1][2], reverse=True)[:PROFILE_TOP]
    top = [
        (
            f"{_short(filename)}:{line}({function})",
            own * 1000 / n,
            cum * 1000 / n,
        )
        for (filename, line, function), (_, _, own, cum, _) in ranked
    ]
    return Profile(page, n, total * 1000 / n, buckets, top)


def _short(filename: str) -> str:
    """A profiled function's file without the folders every one of them shares."""
    for marker in ("/site-packages/", f"{PROJECT_ROOT}/"):
        if marker in filename:
            return filename.split(marker, 1)[1]
    return _STDLIB.sub("", filename)


def _cookie_header(person: _Person) -> str:
    """The browser's cookies as one Cookie header."""
    return "; ".join(f"{morsel.key}={morsel.value}" for morsel in person.browser.cookie_jar)


def _token(person: _Person) -> str:
    return person.api.headers["Authorization"].removeprefix("Bearer ")


async def _paced(
    reads: _Reads,
    results: dict[str, SystemResult],
    config: PagesBenchConfig,
    folder: Path,
    progress: Progress,
) -> dict[str, PacedResult]:
    """Each page, and one JSON read of its data, offered at PACED_SHARE of the page's
    closed-loop rate by a load generator in a process of its own."""
    files = {}
    for name, people, line in (
        ("member_cookies", reads.members, _cookie_header),
        ("member_tokens", reads.members, _token),
        ("home_cookies", reads.home_users, _cookie_header),
        ("home_tokens", reads.home_users, _token),
    ):
        files[name] = folder / f"{name}.txt"
        files[name].write_text("".join(f"{line(person)}\n" for person in people))
    group_rate = PACED_SHARE * results["group_page"].rate
    home_rate = PACED_SHARE * results["home"].rate
    member_cookies, member_tokens = files["member_cookies"], files["member_tokens"]
    home_cookies, home_tokens = files["home_cookies"], files["home_tokens"]
    runs = (
        ("group_page", "GET /groups/{id} (page)", reads.page_url, group_rate, member_cookies),
        ("api_expenses", "GET .../expenses (JSON)", reads.expenses_url, group_rate, member_tokens),
        ("home", "GET /home (page)", reads.home_url, home_rate, home_cookies),
        ("api_summary", "GET /api/v1/me/summary (JSON)", reads.summary_url, home_rate, home_tokens),
    )
    found: dict[str, PacedResult] = {}
    for key, label, url, rate, credentials in runs:
        result = await loadgen(
            url,
            seconds=PACED_SECONDS,
            warmup=PACED_WARMUP_S,
            concurrency=config.concurrency,
            rate=rate,
            cookies_file=credentials if "cookies" in credentials.name else None,
            tokens_file=credentials if "tokens" in credentials.name else None,
        )
        due = result.get("latency_from_due_ms") or result["latency_ms"]
        found[key] = PacedResult(
            key,
            label,
            rate,
            float(result["rps"]),
            float(due["p50"]),
            float(due["p99"]),
            int(sum((result.get("errors") or {}).values())),
        )
        progress(
            f"  paced {label}: {rate:.1f}/s offered, {result['rps']}/s answered, p50 "
            f"{due['p50']} ms, p99 {due['p99']} ms (from when each was due)"
        )
    return found


async def _run(config: PagesBenchConfig, progress: Progress, folder: Path) -> PagesReport:
    started = time.perf_counter()
    async with _seeded(config, progress, folder) as seeded:
        node, reads = seeded.node, seeded.reads
        assert node.system is not None
        checks, sizes = await _check(reads, config.members)
        progress(
            f"  checks: page expenses {_ok(checks['page_expenses_ok'])}, balance "
            f"{_ok(checks['page_balance_ok'])} ({checks['balance_words']}), members named "
            f"{_ok(checks['json_members_named_ok'])}, home groups {_ok(checks['home_groups_ok'])}"
        )

        systems = reads.systems(config)
        results = {key: SystemResult(key, label, clients) for key, label, _, _, clients in systems}
        for _, label, one, count, clients in systems:
            result = await _drive(max(count // 4, clients), clients, one)
            progress(_line("warm-up", label, clients, result))
        heap.settle()  # what a node does once started (splitgo/heap.py)
        for round_index in range(config.rounds):
            shift = round_index % len(systems)
            for key, label, one, count, clients in systems[shift:] + systems[:shift]:
                result = await _drive(count, clients, one)
                results[key].rounds.append(result)
                progress(_line(f"round {round_index + 1}/{config.rounds}", label, clients, result))
        ratios = {
            "group": _ratios(results["group_json"], results["group_page"]),
            "group_1": _ratios(results["group_json_1"], results["group_page_1"]),
            "home": _ratios(results["home_json"], results["home"]),
            "home_1": _ratios(results["home_json_1"], results["home_1"]),
        }
        shards = node.system.status()
        actors = {
            "failed": sum(s.failed for s in shards),
            "dead_lettered": sum(s.dead_lettered for s in shards),
            "restarts": sum(s.restarts for s in shards),
        }
        paced = await _paced(reads, results, config, folder, progress)
        checks["paced_no_errors_ok"] = all(r.errors == 0 for r in paced.values())
        shards = node.system.status()
        actors["failed"] = sum(s.failed for s in shards)
        actors["dead_lettered"] = sum(s.dead_lettered for s in shards)
        checks["no_actor_failures_ok"] = actors["failed"] == 0 and actors["dead_lettered"] == 0
        load_average = _load_average()
        profiles = []
        if config.profile_reads:
            for page, read in (("GET /groups/{id}", reads.group_page), ("GET /home", reads.home)):
                progress(f"  profiling {config.profile_reads} reads of {page} (cProfile)")
                profiles.append(await _profile(page, _discard(read), config.profile_reads))
    return PagesReport(
        config,
        seeded.seeding,
        results,
        ratios,
        checks,
        sizes,
        time.perf_counter() - started,
        load_average,
        actors,
        profiles,
        paced,
    )


def run_pages_bench(config: PagesBenchConfig, progress: Progress = print) -> PagesReport:
    """Start a node on an embedded PostgreSQL in a temporary folder, seed it, measure it.

    The server stops when this process exits; the folder is removed after that.
    """
    folder = Path(tempfile.mkdtemp(prefix="splitgo-bench-pages-"))
    # registered before the server starts, so it runs after the server's own exit hook
    atexit.register(shutil.rmtree, folder, True)
    return asyncio.run(_run(config, progress, folder))
