"""Every field of a message that an actor handles has a stated bound, checked wherever the
message is made or decoded.

An actor's `messages.py` declares the bounds of its commands and events on their fields
with msgspec `Meta` (`Annotated[str, Meta(min_length=1, max_length=200)]`, `Day`, ...), and
gives those messages one base whose `__post_init__` calls `check_bounds`. msgspec runs
`__post_init__` both when a message is constructed (the HTTP edge, the bot, another actor:
the refusal comes out there, before anything is sent) and when one is decoded from a
network (the codec then refuses it as undecodable). So no handler sees a value outside its
bounds, whichever transport carried it, and the in-memory transport needs no second check.

A field with no `Meta` still has the house bounds: text at most `TEXT_MAX` characters,
bytes at most `BYTES_MAX`, lists at most `LIST_MAX` items, maps at most `MAP_MAX` entries,
whole numbers within a signed 64-bit integer (what PostgreSQL's bigint holds), numbers
finite. No text holds a NUL character (PostgreSQL refuses it). A value of the wrong type
(a bool where a number goes, a string where a list goes) is refused too: msgspec checks
types when decoding, never when constructing.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from datetime import date
from typing import Annotated, Any

import msgspec
from msgspec import inspect

from actors.runtime.errors import DomainError

TEXT_MAX = 10_000
BYTES_MAX = 1_000_000
LIST_MAX = 1_000
MAP_MAX = 100
INT_MIN, INT_MAX = -(2**63), 2**63 - 1
ID_MAX = 200  # an id: a UUID, a derived id (`<expense>@<day>`), a provider's reference
EARLIEST_DAY, LATEST_DAY = date(1900, 1, 1), date(2099, 12, 31)  # shared/API.md, Conventions
_DEPTH_MAX = 8  # nested messages and Any values deeper than this are refused

Day = Annotated[
    str,
    msgspec.Meta(
        description=f"a calendar day, YYYY-MM-DD, from {EARLIEST_DAY} to {LATEST_DAY}",
        extra={"day": True},
    ),
]
PAGE_MAX = 200  # a list's page: shared/API.md, `?limit=` (default 50, max 200)
Limit = Annotated[int, msgspec.Meta(ge=1, le=PAGE_MAX)]
Id = Annotated[str, msgspec.Meta(min_length=1, max_length=ID_MAX)]
_DAY = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


def check_bounds(message: msgspec.Struct, error: type[DomainError]) -> None:
    """Raise `error` (also a ValueError, so a decoder reports it as invalid data) naming the
    first field of `message` outside its bounds, as a JSON path (`$.paid_by[0].amount`)."""
    problem = _struct_problem(message, 0)
    if problem is not None:
        where, text = problem
        path = "$" + where
        raise refusal(error)(f"{where.removeprefix('.')} {text}", details={"field": path})


_REFUSALS: dict[type[DomainError], type[DomainError]] = {}


def refusal(error: type[DomainError]) -> type[DomainError]:
    """`error` that is also a ValueError: msgspec turns a ValueError raised while decoding
    into a ValidationError; anything else would escape the codec. It keeps the code and
    class of `error`, so callers catch and edges map it as that error."""
    made = _REFUSALS.get(error)
    if made is None:
        names = {"__qualname__": error.__qualname__, "__module__": error.__module__}
        made = _REFUSALS[error] = type(error.__name__, (error, ValueError), names)
    return made


# ── the checks, built once per message type from msgspec's view of it ────────────────

Problem = tuple[str, str]  # (where, below the value checked: `.amount`, `[2].lat`; in words)
Check = Callable[[Any, int], Problem | None]  # (value, nesting depth) -> what is wrong
_WRONG_TYPE = "has the wrong type"
_STRUCTS: dict[type, tuple[tuple[str, Check], ...]] = {}


def _struct_problem(value: msgspec.Struct, depth: int) -> Problem | None:
    checks = _STRUCTS.get(type(value))
    if checks is None:
        info = inspect.type_info(type(value))
        assert isinstance(info, inspect.StructType)
        checks = _STRUCTS[type(value)] = tuple((f.name, _check(f.type)) for f in info.fields)
    for name, check in checks:
        problem = check(getattr(value, name), depth)
        if problem is not None:
            return f".{name}{problem[0]}", problem[1]
    return None


def _check(kind: inspect.Type) -> Check:
    """The check of one type (a type without bounds of its own, a datetime, has none)."""
    if isinstance(kind, inspect.Metadata):
        return _metadata(kind)
    make = _MAKERS.get(type(kind))
    return _nothing if make is None else make(kind)


def _nothing(value: Any, depth: int) -> Problem | None:
    return None


def _metadata(kind: inspect.Metadata) -> Check:
    inner = _check(kind.type)
    if not (kind.extra or {}).get("day"):
        return inner

    def day(value: Any, depth: int) -> Problem | None:
        return inner(value, depth) or _day_problem(value)

    return day


def _union(kind: Any) -> Check:
    literals = [m for m in kind.types if isinstance(m, inspect.LiteralType)]
    members = [m for m in kind.types if not isinstance(m, inspect.LiteralType | inspect.NoneType)]
    if literals:  # Literal["a"] | Literal["b"]: one choice among all their values
        members.insert(0, inspect.LiteralType(values=tuple(v for m in literals for v in m.values)))
    optional = any(isinstance(m, inspect.NoneType) for m in kind.types)
    checks = [_check(member) for member in members]

    def union(value: Any, depth: int) -> Problem | None:
        if value is None and optional:
            return None
        first: Problem | None = None
        for check in checks:
            problem = check(value, depth)
            if problem is None:
                return None
            if first is None or first[1] == _WRONG_TYPE:
                first = problem
        return first or ("", _WRONG_TYPE)

    return union


def _none(kind: Any) -> Check:
    return lambda value, depth: None if value is None else ("", _WRONG_TYPE)


def _text(kind: Any) -> Check:
    shortest = kind.min_length or 0
    longest = TEXT_MAX if kind.max_length is None else kind.max_length
    pattern = None if kind.pattern is None else re.compile(kind.pattern)

    def text(value: Any, depth: int) -> Problem | None:
        if not isinstance(value, str):
            return "", "must be text"
        if len(value) < shortest:
            if shortest == 1:
                return "", "must not be empty"
            return "", f"must be at least {shortest:,} characters"
        if len(value) > longest:
            return "", f"must be at most {longest:,} characters"
        if "\x00" in value:
            return "", "must not contain NUL characters"
        if pattern is not None and pattern.search(value) is None:
            return "", "is not in the expected form"
        return None

    return text


def _bytes(kind: Any) -> Check:
    longest = BYTES_MAX if kind.max_length is None else kind.max_length

    def data(value: Any, depth: int) -> Problem | None:
        if not isinstance(value, bytes | bytearray | memoryview):
            return "", "must be bytes"
        if len(value) > longest:
            return "", f"must be at most {longest:,} bytes"
        return None

    return data


def _range(kind: Any, low: int | None, high: int | None) -> Check:
    """The comparisons a number type states; `low` and `high` where it states none."""
    floor = kind.ge if kind.ge is not None else low
    ceiling = kind.le if kind.le is not None else high

    def within(value: Any, depth: int) -> Problem | None:
        if kind.gt is not None and not value > kind.gt:
            return "", f"must be more than {kind.gt:,}"
        if kind.lt is not None and not value < kind.lt:
            return "", f"must be less than {kind.lt:,}"
        if floor is not None and value < floor:
            return "", f"must be at least {floor:,}"
        if ceiling is not None and value > ceiling:
            return "", f"must be at most {ceiling:,}"
        return None

    return within


def _whole(kind: Any) -> Check:
    bounds = _range(kind, INT_MIN, INT_MAX)

    def whole(value: Any, depth: int) -> Problem | None:
        if isinstance(value, bool) or not isinstance(value, int):
            return "", "must be a whole number"
        return bounds(value, depth)

    return whole


def _number(kind: Any) -> Check:
    bounds = _range(kind, None, None)

    def number(value: Any, depth: int) -> Problem | None:
        if isinstance(value, bool) or not isinstance(value, int | float):
            return "", "must be a number"
        if isinstance(value, int) and not INT_MIN <= value <= INT_MAX:
            return "", "is too large"
        if not math.isfinite(value):
            return "", "must be a finite number"
        return bounds(value, depth)

    return number


def _bool(kind: Any) -> Check:
    return lambda value, depth: None if isinstance(value, bool) else ("", "must be true or false")


def _literal(kind: Any) -> Check:
    allowed = {(type(v), v) for v in kind.values}
    words = "must be one of " + ", ".join(str(v) for v in kind.values)

    def literal(value: Any, depth: int) -> Problem | None:
        try:
            return None if (type(value), value) in allowed else ("", words)
        except TypeError:  # unhashable: a list or a map is no choice
            return "", words

    return literal


def _list(kind: Any) -> Check:
    item = _check(kind.item_type)
    shortest = kind.min_length or 0
    longest = LIST_MAX if kind.max_length is None else kind.max_length

    def items(value: Any, depth: int) -> Problem | None:
        if not isinstance(value, list | tuple | set | frozenset):
            return "", "must be a list"
        if len(value) < shortest:
            return "", f"must have at least {shortest:,} items"
        if len(value) > longest:
            return "", f"must have at most {longest:,} items"
        for index, one in enumerate(value):
            problem = item(one, depth)
            if problem is not None:
                return f"[{index}]{problem[0]}", problem[1]
        return None

    return items


def _map(kind: Any) -> Check:
    key, item = _check(kind.key_type), _check(kind.value_type)
    longest = MAP_MAX if kind.max_length is None else kind.max_length

    def entries(value: Any, depth: int) -> Problem | None:
        if not isinstance(value, dict):
            return "", "must be a map"
        if len(value) > longest:
            return "", f"must have at most {longest:,} entries"
        for name, one in value.items():
            problem = key(name, depth) or item(one, depth)
            if problem is not None:
                return f".{str(name)[:100]}{problem[0]}", problem[1]
        return None

    return entries


def _struct(kind: Any) -> Check:
    def nested(value: Any, depth: int) -> Problem | None:
        if not isinstance(value, kind.cls):
            return "", _WRONG_TYPE
        if depth >= _DEPTH_MAX:
            return "", "is nested too deeply"
        return _struct_problem(value, depth + 1)

    return nested


_ANY_TEXT = _text(inspect.StrType())
_ANY_NUMBER = _number(inspect.FloatType())


def _any(kind: Any) -> Check:
    return _anything


def _anything(value: Any, depth: int) -> Problem | None:
    """An untyped value (JSON-like data) gets the house bounds all the way down."""
    if depth >= _DEPTH_MAX:
        return "", "is nested too deeply"
    if isinstance(value, str):
        return _ANY_TEXT(value, depth)
    if isinstance(value, float | int) and not isinstance(value, bool):
        return _ANY_NUMBER(value, depth)
    if isinstance(value, list | tuple):
        if len(value) > LIST_MAX:
            return "", f"must have at most {LIST_MAX:,} items"
        for index, one in enumerate(value):
            problem = _anything(one, depth + 1)
            if problem is not None:
                return f"[{index}]{problem[0]}", problem[1]
    if isinstance(value, dict):
        if len(value) > MAP_MAX:
            return "", f"must have at most {MAP_MAX:,} entries"
        for name, one in value.items():
            problem = _anything(name, depth + 1) or _anything(one, depth + 1)
            if problem is not None:
                return f".{str(name)[:100]}{problem[0]}", problem[1]
    return None


def _day_problem(value: str) -> Problem | None:
    wrong = ("", f"must be a day from {EARLIEST_DAY} to {LATEST_DAY} (YYYY-MM-DD)")
    if _DAY.fullmatch(value) is None:
        return wrong
    try:
        day = date.fromisoformat(value)
    except ValueError:
        return wrong
    return None if EARLIEST_DAY <= day <= LATEST_DAY else wrong


_MAKERS: dict[type, Callable[[Any], Check]] = {
    inspect.UnionType: _union,
    inspect.NoneType: _none,
    inspect.StrType: _text,
    inspect.BytesType: _bytes,
    inspect.ByteArrayType: _bytes,
    inspect.IntType: _whole,
    inspect.FloatType: _number,
    inspect.BoolType: _bool,
    inspect.LiteralType: _literal,
    inspect.ListType: _list,
    inspect.VarTupleType: _list,
    inspect.SetType: _list,
    inspect.FrozenSetType: _list,
    inspect.DictType: _map,
    inspect.StructType: _struct,
    inspect.AnyType: _any,
}
