"""The edge's guards: security headers, CORS, the client's address, and a rate limit.

- Every response carries nosniff, DENY framing, no referrer and a Content-Security-Policy:
  nothing at all may load for the JSON API; the HTML pages (the sandbox checkout,
  /api/docs) get a policy that lets exactly their own parts load; the web app's pages
  (splitgo/pages) set PAGES_CSP, with nothing inline.
  `Strict-Transport-Security` is sent only when the public URL is https.
- CORS is off unless SPLITGO_CORS_ORIGINS names origins: those get CORS headers with
  credentials; `*` lets any other origin in without credentials. Preflights are answered
  here, before any handler.
- Behind a proxy listed in SPLITGO_TRUSTED_PROXIES the client is the nearest untrusted
  address of X-Forwarded-For; every handler then sees it as `request.remote`.
- The expensive routes (sign-up, login, password mails, top-ups, ride requests,
  settlements, expense writes) are limited per client address and route group by a token
  bucket in memory: SPLITGO_RATE_LIMIT requests a minute, as a burst or spread out. Past
  it: 429 `rate_limited` with Retry-After. This is the edge's generic guard; the auth
  actor's login lockouts (failed passwords per email and per address) are separate.
"""

from __future__ import annotations

import ipaddress
import math
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from aiohttp import web

from splitgo.config import Settings
from splitgo.web.problems import ProblemError

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

# What the JSON API may load or be framed by: nothing.
API_CSP = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
# The small HTML pages: their own stylesheets, scripts and images, forms posting back here;
# nothing inline.
HTML_CSP = (
    "default-src 'none'; style-src 'self'; img-src 'self' data:; "
    "script-src 'self'; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; "
    "base-uri 'none'"
)
# /api/docs: rendered on the server, with its own stylesheet and no script at all.
DOCS_PATH = "/api/docs"
DOCS_CSP = (
    "default-src 'none'; style-src 'self'; img-src 'self' data:; frame-ancestors 'none'; "
    "base-uri 'none'; form-action 'self'"
)
# The web app's pages (splitgo/pages): our own CSS, JavaScript modules, WebSocket, manifest
# and service worker; nothing inline, nothing loaded from another host. A form may lead to
# Stripe's checkout: the top-up form's redirect goes there when Stripe is the provider.
PAGES_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; manifest-src 'self'; worker-src 'self'; "
    "form-action 'self' https://checkout.stripe.com; frame-ancestors 'none'; base-uri 'none'"
)
HSTS = "max-age=31536000; includeSubDomains"

# CORS: what a browser may send and read across origins.
CORS_REQUEST_HEADERS = (
    "Authorization",
    "Content-Type",
    "Idempotency-Key",
    "X-Request-Id",
    "traceparent",
    "tracestate",
)
CORS_EXPOSED_HEADERS = "X-Request-Id, traceparent, Retry-After, Location, WWW-Authenticate"
CORS_MAX_AGE = "600"

# (method, route as declared) -> the rate-limit group it counts against
RATE_LIMITED: dict[tuple[str, str], str] = {
    ("POST", "/api/v1/auth/register"): "register",
    ("POST", "/api/v1/auth/login"): "login",
    ("POST", "/api/v1/auth/login/mfa"): "login",
    ("POST", "/api/v1/auth/passkeys/sign-in/options"): "login",
    ("POST", "/api/v1/auth/passkeys/sign-in"): "login",
    ("POST", "/api/v1/auth/password/forgot"): "password",
    ("POST", "/api/v1/auth/password/reset"): "password",
    ("POST", "/api/v1/me/password"): "password",
    ("POST", "/api/v1/wallet/top-ups"): "top_ups",
    ("POST", "/api/v1/rides"): "rides",
    ("POST", "/api/v1/groups/{id}/settlements"): "settlements",
    ("POST", "/api/v1/groups/{id}/expenses"): "expenses",
    ("PATCH", "/api/v1/groups/{id}/expenses/{eid}"): "expenses",
    ("DELETE", "/api/v1/groups/{id}/expenses/{eid}"): "expenses",
    ("POST", "/api/v1/groups/{id}/expenses/{eid}/attachments"): "attachments",
}

# response headers a middleware decided on before the response exists (the trace headers)
RESPONSE_HEADERS = web.RequestKey("response_headers", dict[str, str])


@dataclass(frozen=True, slots=True)
class Hardening:
    """The edge's guard settings (from SPLITGO_CORS_ORIGINS and friends)."""

    cors_origins: tuple[str, ...] = ()  # exact origins with credentials; "*": any, without
    rate_limit: int = 60  # per minute per client address per route group; 0: no limit
    trusted_proxies: tuple[str, ...] = ()  # networks whose X-Forwarded-For is believed
    hsts: bool = False  # the public URL is https

    @classmethod
    def from_settings(cls, settings: Settings, public_url: str) -> Hardening:
        return cls(
            cors_origins=settings.cors_origins,
            rate_limit=settings.rate_limit,
            trusted_proxies=settings.trusted_proxies,
            hsts=public_url.startswith("https://"),
        )


class RateLimiter:
    """Token buckets per (group, client): `per_minute` tokens, refilled evenly over a minute.

    In memory and per node: N nodes behind a balancer allow up to N times the rate, which
    is what a guard against floods needs (the login lockouts, which must be exact, live in
    the database).
    """

    def __init__(
        self,
        per_minute: int,
        *,
        clock: Callable[[], float] = time.monotonic,
        max_buckets: int = 100_000,
    ) -> None:
        self.capacity = float(per_minute)
        self.per_second = per_minute / 60.0
        self._clock = clock
        self._max_buckets = max_buckets
        self._buckets: dict[tuple[str, str], tuple[float, float]] = {}  # -> (tokens, when)

    def take(self, group: str, client: str) -> float:
        """Spend a token: 0.0 when allowed, else the seconds until the next one."""
        now = self._clock()
        key = (group, client)
        tokens, when = self._buckets.get(key, (self.capacity, now))
        tokens = min(self.capacity, tokens + (now - when) * self.per_second)
        if tokens >= 1.0:
            if key not in self._buckets and len(self._buckets) >= self._max_buckets:
                self._prune(now)
            self._buckets[key] = (tokens - 1.0, now)
            return 0.0
        self._buckets[key] = (tokens, now)
        return (1.0 - tokens) / self.per_second

    def _prune(self, now: float) -> None:
        """Forget buckets that are full again (they would start full anyway)."""
        full = [
            key
            for key, (tokens, when) in self._buckets.items()
            if tokens + (now - when) * self.per_second >= self.capacity
        ]
        for key in full:
            del self._buckets[key]
        if len(self._buckets) >= self._max_buckets:
            # a flood from ever new addresses: start over rather than grow without end
            self._buckets.clear()

    def __len__(self) -> int:
        return len(self._buckets)


class ClientAddress:
    """Who the client is: the peer, or behind trusted proxies the forwarded address."""

    def __init__(self, trusted: tuple[str, ...]) -> None:
        self._networks = [ipaddress.ip_network(network) for network in trusted]

    @property
    def enabled(self) -> bool:
        return bool(self._networks)

    def trusted(self, address: str) -> bool:
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return False
        return any(ip in network for network in self._networks)

    def of(self, peer: str, forwarded: list[str]) -> str:
        """The nearest address, from the right of X-Forwarded-For, that is not a trusted
        proxy; a hop that is no address at all was forged: the last one believed wins."""
        if not self.trusted(peer):
            return peer
        hops = [hop.strip() for value in forwarded for hop in value.split(",") if hop.strip()]
        address = peer
        for hop in reversed(hops):
            try:
                ipaddress.ip_address(hop)
            except ValueError:
                return address
            address = hop
            if not self.trusted(hop):
                return hop
        return address


HARDENING = web.AppKey("hardening", Hardening)
LIMITER = web.AppKey("rate_limiter", RateLimiter)
CLIENT_ADDRESS = web.AppKey("client_address", ClientAddress)


def install(app: web.Application, hardening: Hardening) -> None:
    """Add the guards to an application: the innermost middleware and the header hook."""
    app[HARDENING] = hardening
    app[LIMITER] = RateLimiter(max(hardening.rate_limit, 1))
    app[CLIENT_ADDRESS] = ClientAddress(hardening.trusted_proxies)
    app.middlewares.append(guard)
    app.on_response_prepare.append(on_prepare)


@web.middleware
async def guard(request: web.Request, handler: Handler) -> web.StreamResponse:
    """The client's address, CORS preflights, then the rate limit, before any handler."""
    app = request.app
    hardening = app[HARDENING]
    addresses = app[CLIENT_ADDRESS]
    if addresses.enabled:
        peer = request.remote or ""
        client = addresses.of(peer, request.headers.getall("X-Forwarded-For", []))
        if client != peer:
            request = request.clone(remote=client)
    if (
        request.method == "OPTIONS"
        and "Origin" in request.headers
        and "Access-Control-Request-Method" in request.headers
    ):
        return preflight(request, hardening)
    if hardening.rate_limit > 0:
        group = rate_limit_group(request)
        if group is not None:
            wait = app[LIMITER].take(group, request.remote or "unknown")
            if wait > 0:
                seconds = max(1, math.ceil(wait))
                raise ProblemError(
                    429,
                    "rate_limited",
                    f"too many {group.replace('_', ' ')} requests from your address: at most "
                    f"{hardening.rate_limit} a minute (SPLITGO_RATE_LIMIT); try again in "
                    f"{seconds} s",
                    headers={"Retry-After": str(seconds)},
                )
    return await handler(request)


def rate_limit_group(request: web.Request) -> str | None:
    route = request.match_info.route
    resource = route.resource if route is not None else None
    if resource is None:
        return None
    return RATE_LIMITED.get((request.method, resource.canonical))


def cors_origin(hardening: Hardening, origin: str | None) -> tuple[str, bool] | None:
    """(Access-Control-Allow-Origin, credentials allowed) for this Origin, or None."""
    if not origin or not hardening.cors_origins:
        return None
    if origin.lower() in hardening.cors_origins:
        return origin, True
    if "*" in hardening.cors_origins:
        return "*", False
    return None


def preflight(request: web.Request, hardening: Hardening) -> web.Response:
    """Answer a CORS preflight: which methods and headers this route takes from the origin."""
    matched = request.match_info
    error = matched.http_exception
    if isinstance(error, web.HTTPNotFound):
        raise error
    allowed = cors_origin(hardening, request.headers.get("Origin"))
    if allowed is None:
        raise ProblemError(
            403,
            "cors_origin_not_allowed",
            f"cross-origin requests from {request.headers.get('Origin')!r} are not allowed "
            "(SPLITGO_CORS_ORIGINS)",
        )
    if isinstance(error, web.HTTPMethodNotAllowed):
        methods = sorted(error.allowed_methods - {"OPTIONS"})
    else:
        methods = [matched.route.method] if matched.route.method != "*" else ["GET"]
    if "GET" in methods:
        methods.append("HEAD")
    origin, credentials = allowed
    headers = {
        "Access-Control-Allow-Origin": origin,
        "Access-Control-Allow-Methods": ", ".join(methods),
        "Access-Control-Allow-Headers": ", ".join(CORS_REQUEST_HEADERS),
        "Access-Control-Max-Age": CORS_MAX_AGE,
        "Vary": "Origin, Access-Control-Request-Method, Access-Control-Request-Headers",
    }
    if credentials:
        headers["Access-Control-Allow-Credentials"] = "true"
    return web.Response(status=204, headers=headers)


async def on_prepare(request: web.Request, response: web.StreamResponse) -> None:
    """Headers every response gets, whatever made it (a handler, a problem, aiohttp)."""
    headers = response.headers
    for name, value in request.get(RESPONSE_HEADERS, {}).items():
        headers.setdefault(name, value)
    hardening = request.app[HARDENING]
    headers.setdefault("X-Content-Type-Options", "nosniff")
    headers.setdefault("X-Frame-Options", "DENY")
    headers.setdefault("Referrer-Policy", "no-referrer")
    if "Content-Security-Policy" not in headers:
        if response.content_type == "text/html":
            policy = DOCS_CSP if request.path == DOCS_PATH else HTML_CSP
        else:
            policy = API_CSP
        headers["Content-Security-Policy"] = policy
    if hardening.hsts:
        headers.setdefault("Strict-Transport-Security", HSTS)
    if hardening.cors_origins and "Access-Control-Allow-Origin" not in headers:
        vary = headers.get("Vary")
        headers["Vary"] = f"{vary}, Origin" if vary else "Origin"
        allowed = cors_origin(hardening, request.headers.get("Origin"))
        if allowed is not None:
            origin, credentials = allowed
            headers["Access-Control-Allow-Origin"] = origin
            headers["Access-Control-Expose-Headers"] = CORS_EXPOSED_HEADERS
            if credentials:
                headers["Access-Control-Allow-Credentials"] = "true"
