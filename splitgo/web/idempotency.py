"""The HTTP edge's side of idempotency: the `Idempotency-Key` header read once, scoped to
the caller and the route, fingerprinted, and handed to the owning actor on its command.

The actor records the key with the effect, in its own transaction (actors/runtime/
idempotency.py); nothing here caches a response. A route that moves money declares the
key required (`idempotency(required=True)` in its `@documented` headers) and `@documented`
refuses a request without one — 400 `idempotency_key_required` — before anything else,
even before the token is looked at. Other creating routes accept it with the same meaning.
"""

from __future__ import annotations

from typing import Any, TypeVar

import msgspec
from aiohttp import web

from actors.runtime import IdempotencyKey
from actors.runtime.idempotency import KEY_MAX, fingerprint_of
from splitgo.web.problems import FieldError, ProblemError

M = TypeVar("M", bound=msgspec.Struct)
HEADER = "Idempotency-Key"
# never part of a fingerprint: a retry must not need them, and a hash of one is a leak
SECRET_FIELDS = frozenset({"password", "new_password", "current_password", "token"})


def required_key(request: web.Request) -> str:
    """The request's key, or 400 `idempotency_key_required`."""
    key = _header(request)
    if key is None:
        raise ProblemError(
            400,
            "idempotency_key_required",
            f"send an Idempotency-Key header (1 to {KEY_MAX} characters) with this request;"
            " a retry with the same key never does the thing twice",
            errors=[FieldError(field=HEADER, message=f"required, 1 to {KEY_MAX} characters")],
        )
    return key


def key_for(
    request: web.Request, body: object = None, *, caller: str | None
) -> IdempotencyKey | None:
    """What the owning actor records for this request's key: scoped to the caller (or, with
    nobody signed in, to the route alone) and the route, fingerprinted over the path's ids
    and the body (secrets left out). None when the request sent no key."""
    key = _header(request)
    if key is None:
        return None
    route = request.match_info.route.resource
    template = route.canonical if route is not None else request.path
    scope = f"{caller or 'anyone'} {request.method} {template}"
    print_ = fingerprint_of(dict(request.match_info), _without_secrets(body))
    return IdempotencyKey(scope=scope[:400], key=key, fingerprint=print_)


def with_key(message: M, request: web.Request, body: object, *, caller: str | None) -> M:
    """`message` carrying this request's key (`key_for`) in its `idempotency` field."""
    return msgspec.structs.replace(message, idempotency=key_for(request, body, caller=caller))


def client_key(request: web.Request) -> str | None:
    """The request's Idempotency-Key (None: it sent none); a 400 for a malformed one."""
    return _header(request)


def _header(request: web.Request) -> str | None:
    raw = request.headers.get(HEADER)
    if raw is None or not raw.strip():
        return None
    key = raw.strip()
    if len(key) > KEY_MAX or not key.isprintable():
        raise ProblemError(
            400,
            "invalid_idempotency_key",
            f"an Idempotency-Key is 1 to {KEY_MAX} printable characters",
            errors=[FieldError(field=HEADER, message=f"1 to {KEY_MAX} printable characters")],
        )
    return key


def _without_secrets(body: object) -> Any:
    if body is None:
        return None
    plain = msgspec.to_builtins(body)
    if isinstance(plain, dict):
        return {name: value for name, value in plain.items() if name not in SECRET_FIELDS}
    return plain
