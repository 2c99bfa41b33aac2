"""`to_json` (the edge's struct-to-JSON step) gives what the plain walk over msgspec's
builtins gave, whatever mix of messages, plain dicts and lists it is handed: lists of
dicts are done in C, everything else walked as before."""

from __future__ import annotations

import uuid
from typing import Any

import msgspec
from hypothesis import given, settings
from hypothesis import strategies as st

from actors.splits.messages import BalanceLine, BalancesView, GroupView, Invite, Member
from splitgo.web.problems import TAG_FIELD, to_json
from transport import Message


class FlatProbe(Message, frozen=True):
    """A message of plain fields only (its dicts need no walk)."""

    name: str
    amount: int
    ratio: float | None = None
    kind: str = "x"


class DeepProbe(Message, frozen=True):
    """A message holding lists, messages and anything."""

    lines: list[FlatProbe]
    inner: FlatProbe | None = None
    extra: Any = None


def reference(value: Any) -> Any:
    """The walk `to_json` always did: every dict's tag dropped, every container visited."""
    data = msgspec.to_builtins(value)
    stack = [data]
    while stack:
        item = stack.pop()
        if type(item) is dict:
            item.pop(TAG_FIELD, None)
            stack.extend(v for v in item.values() if type(v) is dict or type(v) is list)
        elif type(item) is list:
            stack.extend(v for v in item if type(v) is dict or type(v) is list)
    return data


flat = st.builds(
    FlatProbe,
    name=st.text(max_size=5),
    amount=st.integers(-5, 5),
    ratio=st.none() | st.floats(allow_nan=False),
)
plain = st.none() | st.booleans() | st.integers(-3, 3) | st.text(max_size=3)
anything = st.recursive(
    plain | flat,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(st.sampled_from(["a", "b", TAG_FIELD, "FlatProbe"]), inner, max_size=3)
        | st.builds(
            DeepProbe, lines=st.lists(flat, max_size=3), inner=st.none() | flat, extra=inner
        )
    ),
    max_leaves=12,
)


@settings(deadline=None)
@given(anything)
def test_to_json_gives_what_the_plain_walk_gave(value: Any) -> None:
    """Any mix of messages, plain dicts (some carrying a `msg_type` key) and lists comes
    out as the plain walk made it."""
    assert to_json(value) == reference(value)


def test_real_views_come_out_the_same_and_untagged() -> None:
    """A 1,000-line balances view and a group view: the same as the plain walk, no tags."""
    balances = BalancesView(
        balances=[
            BalanceLine(user_id=str(uuid.uuid4()), currency="EUR", net=i) for i in range(1000)
        ],
        version="v",
    )
    group = GroupView(
        id="g",
        name="Trip",
        currency="EUR",
        created_by="amy",
        created_at="2026-01-01T00:00:00Z",
        members=[Member(user_id="amy", joined_at="2026-01-01T00:00:00Z")] * 3,
        invited=[Invite(email="bo@example.com", invited_by="amy", invited_at="2026-01-02")] * 2,
    )
    for view in (balances, group):
        data = to_json(view)
        assert data == reference(view)
        assert b'"msg_type"' not in msgspec.json.encode(data)


def test_plain_dicts_with_a_tag_key_of_their_own_are_walked() -> None:
    """Plain dicts whose `msg_type` key holds a list, a number or nothing come out as the
    plain walk made them (no error, and what they nest is walked)."""
    nested = [{TAG_FIELD: "FlatProbe", "x": [{TAG_FIELD: "y"}]}, {TAG_FIELD: "FlatProbe"}]
    for rows in (
        [{TAG_FIELD: [1, 2], "a": 1}, {TAG_FIELD: "FlatProbe"}],
        [{TAG_FIELD: 3}, {TAG_FIELD: None}],
        [{"a": [{TAG_FIELD: "FlatProbe"}]}, {"b": 1}],
        nested,
    ):
        assert to_json(rows) == reference(rows)
