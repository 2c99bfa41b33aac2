"""RFC 9457 problem responses, and reading JSON bodies with errors that name the field."""

from __future__ import annotations

import ast
import collections
import gc
import itertools
import operator
import re
from typing import Any, TypeVar

import msgspec
from aiohttp import web

from actors.runtime import DomainError
from transport import Message

TAG_FIELD = Message.__struct_config__.tag_field  # "msg_type", on every message

T = TypeVar("T")

PROBLEM_TYPE = "application/problem+json"

# What each category of domain error means over HTTP.
STATUS_BY_CATEGORY = {
    "invalid": 422,
    "unauthenticated": 401,
    "forbidden": 403,
    "not_found": 404,
    "conflict": 409,
    "rate_limited": 429,
    "unavailable": 503,
    "internal": 500,
}

TITLES = {
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    409: "Conflict",
    413: "Payload Too Large",
    415: "Unsupported Media Type",
    422: "Unprocessable Content",
    429: "Too Many Requests",
    500: "Internal Server Error",
    503: "Service Unavailable",
}


class FieldError(msgspec.Struct):
    """One thing wrong with one field: `$.amount` is a JSON path into the request body."""

    field: str
    message: str


class Problem(msgspec.Struct, omit_defaults=True):
    """An RFC 9457 problem document, with our stable `code` and per-field errors."""

    type: str
    title: str
    status: int
    detail: str
    code: str
    errors: list[FieldError] = []
    instance: str | None = None


class ProblemError(Exception):
    """Raised at the edge to answer with a problem response."""

    def __init__(
        self,
        status: int,
        code: str,
        detail: str,
        *,
        errors: list[FieldError] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.code = code
        self.detail = detail
        self.errors = errors or []
        self.headers = headers or {}


_encoder = msgspec.json.Encoder()


def problem_response(
    status: int,
    code: str,
    detail: str,
    *,
    errors: list[FieldError] | None = None,
    headers: dict[str, str] | None = None,
    instance: str | None = None,
) -> web.Response:
    problem = Problem(
        type=f"https://splitgo.dev/problems/{code.replace('_', '-')}",
        title=TITLES.get(status, "Error"),
        status=status,
        detail=detail,
        code=code,
        errors=errors or [],
        instance=instance,
    )
    return web.Response(
        status=status, body=_encoder.encode(problem), content_type=PROBLEM_TYPE, headers=headers
    )


# Where a code means something more precise than its category's status.
STATUS_BY_CODE = {
    "oauth_failed": 400,  # a bad state or a provider's refusal: the request itself is bad
    "invalid_signature": 400,  # a webhook that does not verify (API.md: 400, nothing credited)
}


# A handler that crashed on every attempt because the database was gone comes back as
# `handler_failed` with the error's class in its message: that is an outage, not a bug.
_DATABASE_DOWN = re.compile(
    r"^(ConnectionRefusedError|ConnectionResetError|FileNotFoundError|CannotConnectNowError"
    r"|AdminShutdownError|CrashShutdownError|ConnectionDoesNotExistError"
    r"|ConnectionFailureError|ClientCannotConnectError|PostgresConnectionError"
    r"|TooManyConnectionsError|InterfaceError): "
)
DATABASE_RETRY_AFTER = 2


def database_unavailable() -> ProblemError:
    return ProblemError(
        503,
        "database_unavailable",
        "the database is unreachable for the moment; try again shortly",
        headers={"Retry-After": str(DATABASE_RETRY_AFTER)},
    )


def from_domain_error(error: DomainError) -> ProblemError:
    if error.code == "handler_failed" and _DATABASE_DOWN.match(error.message):
        return database_unavailable()
    status = STATUS_BY_CODE.get(error.code) or STATUS_BY_CATEGORY.get(error.category, 500)
    field = error.details.get("field")
    errors = [FieldError(field=str(field), message=error.message)] if field else None
    headers: dict[str, str] = {}
    retry_after = error.details.get("retry_after")
    if status in (429, 503) and isinstance(retry_after, int | float):
        headers["Retry-After"] = str(max(1, int(retry_after + 0.999)))
    if status == 401:
        headers["WWW-Authenticate"] = 'Bearer realm="splitgo"'
    return ProblemError(status, error.code, error.message, errors=errors, headers=headers)


_PATH = re.compile(r"^(?P<message>.*?)(?: - at `(?P<path>[^`]*)`)?$", re.DOTALL)
_MISSING = re.compile(r"^Object missing required field `(?P<name>[^`]*)`$", re.DOTALL)
_PATTERN = re.compile(r"^Expected `str` matching regex (?P<pattern>.+)$", re.DOTALL)

# What a string matching each pattern of a body is, in words (`matching` fills it in): a
# problem names what is expected, never a regular expression.
_PATTERN_WORDS: dict[str, str] = {}
UNNAMED_PATTERN = "text in another form"


def matching(pattern: str, words: str, **meta: Any) -> msgspec.Meta:
    """The constraint "a string matching `pattern`", whose refusal says `expected <words>`
    (e.g. "a three-letter currency code such as EUR"); `meta` as for msgspec.Meta."""
    _PATTERN_WORDS[pattern] = words
    return msgspec.Meta(pattern=pattern, **meta)


def pattern_words(pattern: str) -> str | None:
    """The words `matching` gave `pattern`, or None when it was given none."""
    return _PATTERN_WORDS.get(pattern)


def validation_problem(error: msgspec.ValidationError) -> ProblemError:
    """A 422 naming the field msgspec complained about (its `$.a.b` path; a missing field
    is named itself, not the object it is missing from), in words."""
    match = _PATH.match(str(error))
    message = match.group("message") if match else str(error)
    path = (match.group("path") if match else None) or "$"
    if missing := _MISSING.match(message):
        path = _path(path, missing.group("name"))
        message = "this field is required"
    elif pattern := _PATTERN.match(message):
        message = f"Expected {_pattern_in_words(pattern.group('pattern'))}"
    return ProblemError(
        422,
        "validation_error",
        f"{path}: {message}",
        errors=[FieldError(field=path, message=message)],
    )


def _pattern_in_words(quoted: str) -> str:
    # msgspec quotes the pattern as Python's repr does
    try:
        pattern = ast.literal_eval(quoted)
    except (ValueError, SyntaxError):
        return UNNAMED_PATTERN
    return (
        _PATTERN_WORDS.get(pattern, UNNAMED_PATTERN)
        if isinstance(pattern, str)
        else UNNAMED_PATTERN
    )


# What a JSON body may hold, checked before it is decoded (the body itself is at most
# client_max_size, 1 MiB): how deep it nests, how long one string is (in the body's bytes,
# escapes included) and how many items one array or object has.
MAX_JSON_DEPTH = 32
MAX_JSON_STRING = 65_536
MAX_JSON_ITEMS = 10_000
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_JSON_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"')
# kept: the brackets, as +1 (opening) and -1 (closing) signed bytes
_BRACKET_STEPS = bytes.maketrans(b"[{]}", b"\x01\x01\xff\xff")
_ALL_BUT_BRACKETS = bytes(sorted(set(range(256)) - set(b"[]{}")))


def check_json_limits(raw: bytes) -> None:
    """Refuse a body past the depth, string or item limits, naming the limit (and field).

    A body that cannot break a limit (few brackets, short, few commas: nearly every one)
    costs three counts; only the others are looked into (at worst some 50 ms for 1 MiB).
    """
    if raw.count(b"[") + raw.count(b"{") > MAX_JSON_DEPTH:
        _check_depth(raw)
    if len(raw) > MAX_JSON_STRING or raw.count(b",") >= MAX_JSON_ITEMS:
        _check_sizes(raw)


def _check_depth(raw: bytes) -> None:
    # strings may hold brackets: drop them, keep only the brackets, and the deepest point
    # is the largest running sum of +1 per opening and -1 per closing one
    steps = _JSON_STRING.sub(b"", raw).translate(_BRACKET_STEPS, _ALL_BUT_BRACKETS)
    if max(itertools.accumulate(memoryview(steps).cast("b")), default=0) > MAX_JSON_DEPTH:
        raise ProblemError(
            400,
            "json_too_deep",
            f"the body nests deeper than {MAX_JSON_DEPTH} levels of arrays and objects (the limit)",
        )


def _decode_untyped(raw: bytes) -> Any:
    # a big document is many containers: the cyclic collector would walk them all, for
    # nothing, several times while they are made
    collecting = gc.isenabled()
    gc.disable()
    try:
        return msgspec.json.decode(raw)
    finally:
        if collecting:
            gc.enable()


def _check_sizes(raw: bytes) -> None:
    try:
        document = _decode_untyped(raw)
    except msgspec.DecodeError:
        return  # read_json's own decoding says what is wrong with it
    # (value, path of its container, key or index in it); paths are built only to report
    stack: list[tuple[Any, str, str | int | None]] = [(document, "$", None)]
    while stack:
        value, parent, key = stack.pop()
        if isinstance(value, str):
            if len(value) > MAX_JSON_STRING:
                path = _path(parent, key)
                raise _too_long(path, f"a string longer than {MAX_JSON_STRING} characters")
        elif isinstance(value, list):
            path = _path(parent, key)
            if len(value) > MAX_JSON_ITEMS:
                raise _too_long(path, f"an array of more than {MAX_JSON_ITEMS} items")
            stack.extend(
                (item, path, index)
                for index, item in enumerate(value)
                if isinstance(item, str | list | dict)
            )
        elif isinstance(value, dict):
            path = _path(parent, key)
            if len(value) > MAX_JSON_ITEMS:
                raise _too_long(path, f"an object of more than {MAX_JSON_ITEMS} members")
            for name, item in value.items():
                if len(name) > MAX_JSON_STRING:
                    raise _too_long(path, f"a member name longer than {MAX_JSON_STRING} characters")
                if isinstance(item, str | list | dict):
                    stack.append((item, path, name))


def _path(parent: str, key: str | int | None) -> str:
    if key is None:
        return parent
    if isinstance(key, int):
        return f"{parent}[{key}]"
    return f"{parent}.{key}" if _NAME.fullmatch(key) else f"{parent}[{key!r}]"


def _too_long(path: str, what: str) -> ProblemError:
    message = f"{what} (the limit)"
    return ProblemError(
        422, "json_too_long", f"{path}: {message}", errors=[FieldError(field=path, message=message)]
    )


async def read_json(request: web.Request, body_type: type[T], *, required: bool = True) -> T:
    """The request body decoded into `body_type`: 400 if it is not JSON (or nests too deep),
    422 if it does not fit, or holds a string or array past the limits above. A body that
    is not `required` may be left out entirely (no bytes at all: every field's default)."""
    if not required and (not request.can_read_body or not (await request.read()).strip()):
        return msgspec.convert({}, body_type)
    if request.content_type not in ("application/json", "") and not request.content_type.endswith(
        "+json"
    ):
        raise ProblemError(
            415, "unsupported_media_type", f"send application/json, not {request.content_type}"
        )
    raw = await request.read()
    if not raw.strip():
        raise ProblemError(400, "malformed_json", "the request body is empty; JSON was expected")
    check_json_limits(raw)
    try:
        return msgspec.json.decode(raw, type=body_type)
    except msgspec.ValidationError as error:
        raise validation_problem(error) from None
    except msgspec.DecodeError as error:
        raise ProblemError(400, "malformed_json", f"the body is not valid JSON: {error}") from None


def to_json(value: Any) -> Any:
    """Structs (nested ones too) as plain JSON values, without their `msg_type` tag.

    msgspec converts in C; the one walk in Python only drops the tags (a dict of plain
    data never carries `msg_type`: it is our messages' tag field alone). A list of dicts
    (a balances view's 1,000 lines) is done in C: the tags popped by `map`, and the kinds
    of every value in them found at once, so dicts that nest nothing are not walked."""
    data = msgspec.to_builtins(value)
    stack = [data]
    while stack:
        item = stack.pop()
        if type(item) is dict:
            item.pop(TAG_FIELD, None)
            stack.extend(v for v in item.values() if type(v) is dict or type(v) is list)
        elif type(item) is list:
            if len(item) > 1 and set(map(type, item)) == _DICTS:
                collections.deque(map(_POP_TAG, item), maxlen=0)
                kinds = set(map(type, itertools.chain.from_iterable(map(dict.values, item))))
                if dict in kinds or list in kinds:
                    for row in item:
                        stack.extend(v for v in row.values() if type(v) is dict or type(v) is list)
            else:
                stack.extend(v for v in item if type(v) is dict or type(v) is list)
    return data


_DICTS = {dict}
_POP_TAG = operator.methodcaller("pop", TAG_FIELD, None)


class JsonReply(web.Response):
    """A JSON reply that keeps its data, so the `named` middleware (splitgo/web/names.py)
    can add the names of the people it mentions."""

    def __init__(self, data: Any, status: int = 200) -> None:
        super().__init__(status=status, body=_encoder.encode(data), content_type="application/json")
        self.data = data


def encode_json(data: Any) -> bytes:
    return _encoder.encode(data)


def json_response(data: Any, status: int = 200) -> web.Response:
    return JsonReply(data, status)
