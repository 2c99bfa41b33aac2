"""Hypothesis strategies that fill any message type's fields with extreme values.

Each field gets what its type allows and what lies just past it: huge and negative whole
numbers (past 64 bits too), NaN, infinities and huge floats, empty, very long, NUL- and
control-character text, days far in the past and future, empty and oversized lists and
maps, values of the wrong type now and then, and a few real ids (`Seeds`) so handlers get
past their first lookup. Built from msgspec's own view of the type (`msgspec.inspect`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import msgspec
from hypothesis import strategies as st
from msgspec import inspect

from actors.runtime.bounds import LIST_MAX, MAP_MAX, TEXT_MAX

LONG_LIST = 100
HUGE_TEXT = "x" * (TEXT_MAX * 10)
DAYS = ("0001-01-01", "1899-12-31", "1900-01-01", "2026-03-01", "2099-12-31", "2100-01-01",
        "9999-12-31", "2026-02-30", "20260301", "-001-01-01")  # fmt: skip
TEXTS = ("", " ", "\x00", "a\x00b", "\x01\x1f\x7f", "\u202e\u200b", "\r\nBcc: x@example.com",
         "EUR", "eur", "XXX", "sandbox", "google", "weekly", "none", "online", "admin",
         "a@example.com", "not an email", "correct horse battery staple 42", *DAYS)  # fmt: skip
WHOLE = (0, 1, -1, 5, 6, 50, 200, 201, 2**31, -(2**31) - 1, 10**12, 10**12 + 1,
         -(10**12) - 1, 2**63 - 1, -(2**63), 2**64, -(2**70))  # fmt: skip
NUMBERS = (math.nan, math.inf, -math.inf, 0.0, -0.0, 1e308, -1e308, 5e-324, 90.0, 90.0001,
           -180.0, 180.5, 38.7223, -9.1393, -33.8688, 151.2093)  # fmt: skip


@dataclass(frozen=True)
class Seeds:
    """Real ids of the running node's data, mixed into every text field."""

    texts: tuple[str, ...] = ()
    extra: dict[str, Any] = field(default_factory=dict)


def message_kwargs(message_type: type[msgspec.Struct], seeds: Seeds) -> st.SearchStrategy[Any]:
    """Keyword arguments for `message_type`: one time in three anything extreme (most such
    messages are refused where they are made), else values at the edges of the fields'
    bounds but within them, so the handlers themselves get the extremes."""
    fields = _fields_of(message_type)
    hostile = st.fixed_dictionaries({name: of_type(kind, seeds, 0) for name, kind in fields})
    return st.one_of(
        hostile, within_kwargs(message_type, seeds), within_kwargs(message_type, seeds)
    )


def within_kwargs(message_type: type[msgspec.Struct], seeds: Seeds) -> st.SearchStrategy[Any]:
    """Keyword arguments whose every value lies within its field's type and bounds."""
    return st.fixed_dictionaries(
        {name: within(kind, seeds, 0) for name, kind in _fields_of(message_type)}
    )


def _fields_of(message_type: type[msgspec.Struct]) -> list[tuple[str, inspect.Type]]:
    info = inspect.type_info(message_type)
    assert isinstance(info, inspect.StructType)
    return [(f.name, f.type) for f in info.fields]


def within(kind: inspect.Type, seeds: Seeds, depth: int) -> st.SearchStrategy[Any]:
    """Values `kind` and its bounds allow, its edges often (days from the first to the
    last allowed)."""
    if isinstance(kind, inspect.Metadata):
        if (kind.extra or {}).get("day"):
            return st.sampled_from(("1900-01-01", "2024-02-29", "2026-03-01", "2099-12-31"))
        return within(kind.type, seeds, depth)
    if isinstance(kind, inspect.UnionType):
        return st.one_of(*(within(member, seeds, depth) for member in kind.types))
    if isinstance(kind, inspect.StrType):
        return _texts_within(kind, seeds)
    if isinstance(kind, inspect.IntType):
        low = kind.ge if kind.ge is not None else -(2**63) if kind.gt is None else kind.gt + 1
        high = kind.le if kind.le is not None else 2**63 - 1 if kind.lt is None else kind.lt - 1
        edges = tuple(x for x in (*WHOLE, low, high) if low <= x <= high)
        return st.one_of(st.integers(low, high), *_often(edges))
    if isinstance(kind, inspect.FloatType):
        floor, ceiling = kind.ge, kind.le
        limits = tuple(x for x in (floor, ceiling, 0.0, -0.0, 5e-324) if x is not None)
        return st.one_of(
            st.floats(floor, ceiling, allow_nan=False, allow_infinity=False), *_often(limits)
        )
    if isinstance(kind, inspect.ListType | inspect.VarTupleType | inspect.SetType):
        one = within(kind.item_type, seeds, depth + 1)
        allowed = LIST_MAX if kind.max_length is None else kind.max_length
        # long, but not the longest allowed: that is seconds of real work (an expense among
        # 1,000 members notifies 1,000 people), past the per-call time of a fuzzing run;
        # past the bound (refused) is among the hostile values
        long = min(allowed, LONG_LIST)
        return st.one_of(st.lists(one, max_size=3), one.map(lambda value: [value] * long))
    if isinstance(kind, inspect.DictType):
        keys, values = (
            within(kind.key_type, seeds, depth + 1),
            within(kind.value_type, seeds, depth + 1),
        )
        return st.one_of(
            st.dictionaries(keys, values, max_size=3),
            values.map(lambda one: {f"k{i}": one for i in range(MAP_MAX)}),
        )
    if isinstance(kind, inspect.StructType):
        if depth > 3:
            return st.none()
        return within_kwargs(kind.cls, seeds).map(lambda fields: _made(kind.cls, fields))
    if isinstance(kind, inspect.AnyType):
        return _any(seeds).filter(lambda value: "\x00" not in repr(value))
    return _fitting(kind, seeds, depth)


def _texts_within(kind: Any, seeds: Seeds) -> st.SearchStrategy[str]:
    shortest = kind.min_length or 0
    longest = 10_000 if kind.max_length is None else kind.max_length
    fits = tuple(
        t
        for t in (*TEXTS, *seeds.texts, "x" * longest)
        if shortest <= len(t) <= longest and "\x00" not in t
    )
    return st.one_of(
        st.sampled_from(fits) if fits else st.nothing(),
        *_often(tuple(t for t in seeds.texts if shortest <= len(t) <= longest)),
        st.text(min_size=shortest, max_size=min(longest, 40)).filter(lambda t: "\x00" not in t),
    )


def of_type(kind: inspect.Type, seeds: Seeds, depth: int) -> st.SearchStrategy[Any]:
    """Values for `kind`, with the extremes around it, and a wrong-typed one now and then."""
    fitting = _fitting(kind, seeds, depth)
    if isinstance(kind, inspect.UnionType | inspect.AnyType):
        return fitting
    # mostly the field's own type, so that many messages get past their making
    return st.one_of(*(fitting,) * 7, _wrong())


def _fitting(kind: inspect.Type, seeds: Seeds, depth: int) -> st.SearchStrategy[Any]:
    if isinstance(kind, inspect.Metadata):
        return _fitting(kind.type, seeds, depth)
    if isinstance(kind, inspect.UnionType):
        return st.one_of(*(of_type(member, seeds, depth) for member in kind.types))
    if isinstance(kind, inspect.NoneType):
        return st.none()
    if isinstance(kind, inspect.StrType):
        return _texts(seeds, kind)
    if isinstance(kind, inspect.IntType):
        edges = _edges(kind)
        return st.one_of(st.sampled_from(WHOLE), st.integers(-(2**63), 2**63 - 1), *_often(edges))
    if isinstance(kind, inspect.FloatType):
        return st.one_of(
            st.sampled_from(NUMBERS), st.floats(), st.sampled_from(WHOLE), *_often(_edges(kind))
        )
    if isinstance(kind, inspect.BoolType):
        return st.booleans()
    if isinstance(kind, inspect.LiteralType):
        return st.one_of(st.sampled_from(kind.values), st.just("bogus"))
    if isinstance(kind, inspect.BytesType | inspect.ByteArrayType):
        return st.one_of(st.binary(max_size=64), st.just(b"\x00" * 2_000_000))
    if isinstance(kind, inspect.ListType | inspect.VarTupleType | inspect.SetType):
        return _lists(kind.item_type, seeds, depth)
    if isinstance(kind, inspect.DictType):
        return _maps(kind.key_type, kind.value_type, seeds, depth)
    if isinstance(kind, inspect.StructType):
        if depth > 3:
            return st.none()
        return message_kwargs(kind.cls, seeds).map(lambda fields: _made(kind.cls, fields))
    return _any(seeds)


def _made(struct_type: type[msgspec.Struct], fields: dict[str, Any]) -> Any:
    """A nested value; one that refuses its fields itself stands in as None."""
    try:
        return struct_type(**fields)
    except ValueError:  # a bounds refusal is a ValueError too (actors/runtime/bounds.py)
        return None


def _texts(seeds: Seeds, kind: Any = None) -> st.SearchStrategy[str]:
    """Odd and hostile text, real ids, and text of exactly the field's maximum and one more."""
    at_bound: tuple[str, ...] = ()
    if kind is not None and kind.max_length is not None:
        at_bound = ("x" * kind.max_length, "x" * (kind.max_length + 1))
    return st.one_of(
        st.sampled_from((*TEXTS, *seeds.texts)),
        *_often(seeds.texts),
        *_often(at_bound),
        st.just(HUGE_TEXT),
        st.text(max_size=40),
    )


def _edges(kind: Any) -> tuple[float, ...]:
    """A number type's bounds and what lies just past them."""
    edges: list[float] = []
    for low in (kind.ge, kind.gt):
        if low is not None:
            edges += [low, low - 1]
    for high in (kind.le, kind.lt):
        if high is not None:
            edges += [high, high + 1]
    return tuple(edges)


def _often(values: tuple[Any, ...]) -> tuple[st.SearchStrategy[Any], ...]:
    """`values` as two branches of a one_of (twice as likely as one), or none when empty."""
    return (st.sampled_from(values),) * 2 if values else ()


def _lists(item: inspect.Type, seeds: Seeds, depth: int) -> st.SearchStrategy[Any]:
    one = of_type(item, seeds, depth + 1)
    return st.one_of(
        st.just([]),
        st.lists(one, max_size=3),
        # past the house bound, cheaply: the same item again and again
        one.map(lambda value: [value] * (LIST_MAX + 1)),
    )


def _maps(
    key: inspect.Type, value: inspect.Type, seeds: Seeds, depth: int
) -> st.SearchStrategy[Any]:
    keys = _fitting(key, seeds, depth + 1).filter(_hashable)
    values = of_type(value, seeds, depth + 1)
    return st.one_of(
        st.just({}),
        st.dictionaries(keys, values, max_size=3),
        values.map(lambda one: {f"k{i}": one for i in range(MAP_MAX + 1)}),
    )


def _hashable(value: Any) -> bool:
    try:
        hash(value)
    except TypeError:
        return False
    return True


def _any(seeds: Seeds) -> st.SearchStrategy[Any]:
    scalars = st.one_of(st.none(), _texts(seeds), st.sampled_from(WHOLE), st.sampled_from(NUMBERS))
    return st.recursive(
        scalars,
        lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner),
        max_leaves=6,
    )


def _wrong() -> st.SearchStrategy[Any]:
    """A value of some other type than the field's (only in-process callers can send it)."""
    return st.sampled_from((None, True, "1", 1, 1.5, [], {}, b"x"))
