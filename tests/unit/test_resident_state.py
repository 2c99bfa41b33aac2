"""The runtime's hot state (actors/runtime/resident.py): loads, idle passivation, the node's
memory budget (least recently used first, across shards), tenure, and size estimates."""

from __future__ import annotations

from dataclasses import dataclass

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from actors.runtime.resident import ENTRY_OVERHEAD, MemoryBudget, Resident, deep_size


class FakeClock:
    """Seconds that only move when told."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def holder(
    budget: MemoryBudget, clock: FakeClock, *, idle: float = 60.0, size: int = 100
) -> Resident[str, str]:
    return Resident("test", budget=budget, size=lambda _value: size, idle=idle, clock=clock)


def test_get_after_put_answers_from_memory() -> None:
    """What was put is answered by get, and counted as a hit; an unknown key is a miss."""
    state = holder(MemoryBudget(10_000), FakeClock())
    state.put("a", "alpha")
    assert state.get("a") == "alpha"
    assert state.get("b") is None
    assert (state.hits, state.misses) == (1, 1)


def test_sizes_count_against_the_budget_with_the_overhead() -> None:
    """Each entry costs its estimated size plus the fixed overhead, in the holder and the budget;
    replacing an entry counts it once."""
    budget = MemoryBudget(10_000)
    state = holder(budget, FakeClock(), size=100)
    state.put("a", "x")
    state.put("a", "y")
    state.put("b", "z")
    assert state.bytes == budget.used == 2 * (100 + ENTRY_OVERHEAD)
    assert state.drop("a") is True
    assert state.drop("a") is False
    assert budget.used == 100 + ENTRY_OVERHEAD


async def test_load_reads_once_then_answers_from_memory() -> None:
    """The first load reads through; the next is answered without reading."""
    state = holder(MemoryBudget(10_000), FakeClock())
    reads: list[str] = []

    async def read() -> str:
        reads.append("read")
        return "alpha"

    assert await state.load("a", read) == "alpha"
    assert await state.load("a", read) == "alpha"
    assert reads == ["read"]


async def test_load_does_not_hold_what_is_missing() -> None:
    """A read that finds nothing is not held: the next load reads again."""
    state = holder(MemoryBudget(10_000), FakeClock())

    async def read() -> str | None:
        return None

    assert await state.load("a", read) is None
    assert "a" not in state


async def test_a_drop_during_a_load_keeps_the_read_value_out() -> None:
    """A drop that happens while a load reads means the read may be stale: it is not held."""
    state = holder(MemoryBudget(10_000), FakeClock())

    async def read() -> str:
        state.drop("a")  # a write elsewhere, while the read was under way
        return "old"

    assert await state.load("a", read) == "old"
    assert "a" not in state


def test_an_idle_entry_is_dropped_on_use() -> None:
    """An entry unused for `idle` seconds is gone when next asked for (and its bytes freed)."""
    clock = FakeClock()
    budget = MemoryBudget(10_000)
    state = holder(budget, clock, idle=60.0)
    state.put("a", "alpha")
    clock.now += 59.0
    assert state.get("a") == "alpha"  # a use: idle counts from here again
    clock.now += 60.0
    assert state.get("a") is None
    assert budget.used == 0


def test_sweep_drops_only_the_idle_entries() -> None:
    """A sweep drops the entries idle for `idle` seconds, and keeps the ones used lately."""
    clock = FakeClock()
    state = holder(MemoryBudget(10_000), clock, idle=60.0)
    state.put("old", "1")
    clock.now += 30.0
    state.put("recent", "2")
    clock.now += 30.0
    assert state.sweep() == 1
    assert "old" not in state
    assert "recent" in state


def test_over_budget_the_least_recently_used_goes_first() -> None:
    """Past the budget, the entry used longest ago is dropped, not the one just read."""
    entry = 100 + ENTRY_OVERHEAD
    budget = MemoryBudget(3 * entry)
    state = holder(budget, FakeClock())
    for key in ("a", "b", "c"):
        state.put(key, key)
    state.get("a")
    state.put("d", "d")
    assert "b" not in state
    assert {"a", "c", "d"} <= {k for k in ("a", "b", "c", "d") if k in state}
    assert budget.used == 3 * entry
    assert budget.evicted == 1


def test_the_budget_is_shared_by_the_shards_of_a_node() -> None:
    """Two shards' holders share one budget: the least recently used of either goes first."""
    entry = 100 + ENTRY_OVERHEAD
    budget = MemoryBudget(2 * entry)
    clock = FakeClock()
    first, second = holder(budget, clock), holder(budget, clock)
    first.put("a", "a")
    second.put("b", "b")
    first.get("a")
    second.put("c", "c")
    assert "a" in first
    assert "b" not in second
    assert "c" in second


def test_an_entry_larger_than_the_budget_is_not_held() -> None:
    """An entry bigger than the whole budget cannot stay: the budget is never exceeded."""
    budget = MemoryBudget(50)
    state = holder(budget, FakeClock(), size=100)
    state.put("a", "a")
    assert "a" not in state
    assert budget.used == 0


def test_a_zero_budget_keeps_nothing() -> None:
    """A budget of 0 bytes turns the state off: every put is dropped at once."""
    state = holder(MemoryBudget(0), FakeClock())
    state.put("a", "a")
    assert state.get("a") is None


def test_close_frees_everything_and_ignores_later_puts() -> None:
    """Closing (the shard stopped here) empties the holder, leaves the budget, and holds
    nothing put afterwards."""
    budget = MemoryBudget(10_000)
    state = holder(budget, FakeClock())
    state.put("a", "a")
    state.close()
    state.put("b", "b")
    assert len(state) == 0
    assert budget.used == 0
    assert budget.holders == 0


def test_a_new_tenure_empties_the_holder() -> None:
    """When the shard was acquired again (it may have moved away meanwhile), what was held
    before is dropped at the next use."""
    tenure = [1]
    state: Resident[str, str] = Resident(
        "test", budget=MemoryBudget(10_000), size=lambda _v: 10, tenure=lambda: tenure[0]
    )
    state.put("a", "alpha")
    tenure[0] = 2
    assert state.get("a") is None
    state.put("a", "beta")
    assert state.get("a") == "beta"


def test_invalid_settings_are_refused() -> None:
    """A negative budget or a non-positive idle time is a programming error, said at once."""
    with pytest.raises(ValueError, match="negative"):
        MemoryBudget(-1)
    with pytest.raises(ValueError, match="idle"):
        Resident("test", budget=MemoryBudget(), idle=0)


class Profile(msgspec.Struct, frozen=True):
    """A msgspec value, as actors keep."""

    name: str
    roles: list[str]


@dataclass(frozen=True, slots=True)
class Row:
    """A slotted dataclass value, as stores return."""

    id: str
    tags: tuple[str, ...]


def test_deep_size_counts_what_a_value_refers_to() -> None:
    """The estimate grows with the value's contents, through Structs, dataclasses and
    containers, and counts a shared object once."""
    small = deep_size(Profile(name="a", roles=[]))
    large = deep_size(Profile(name="a" * 1000, roles=["user", "admin"]))
    assert large > small + 1000
    assert deep_size(Row(id="x" * 500, tags=("a",))) > 500
    shared = "y" * 1000
    assert deep_size([shared, shared]) < 2 * deep_size(shared)
    assert deep_size({"k": [1, 2, 3]}) > deep_size({})


# ── the invariant, over any sequence of operations ─────────────────────────────────────

OPERATIONS = st.lists(
    st.tuples(
        st.sampled_from(["put", "get", "drop", "tick", "sweep", "clear"]),
        st.integers(0, 2),  # which shard's holder
        st.integers(0, 7),  # which key
        st.integers(0, 400),  # the entry's size (put), or seconds (tick)
    ),
    max_size=80,
)


@settings(deadline=None)
@given(limit=st.integers(0, 3000), operations=OPERATIONS)
def test_the_budget_holds_and_sizes_add_up(
    limit: int, operations: list[tuple[str, int, int, int]]
) -> None:
    """Whatever the operations, the node's entries never take more than its budget, the
    budget's total is the sum of its holders', no idle entry is ever answered, and the
    last value put for a key is what get answers (while it is held)."""
    clock = FakeClock()
    budget = MemoryBudget(limit)
    sizes: dict[str, int] = {}
    holders: list[Resident[int, str]] = [
        Resident(f"s{i}", budget=budget, size=lambda v: sizes[v], idle=30.0, clock=clock)
        for i in range(3)
    ]
    last: dict[tuple[int, int], str] = {}
    used_at: dict[tuple[int, int], float] = {}
    for step, (operation, shard, key, amount) in enumerate(operations):
        state = holders[shard]
        if operation == "put":
            value = f"v{step}"
            sizes[value] = amount
            state.put(key, value)
            last[(shard, key)], used_at[(shard, key)] = value, clock.now
        elif operation == "get":
            found = state.get(key)
            if found is not None:
                assert found == last[(shard, key)]
                assert clock.now - used_at[(shard, key)] < 30.0
                used_at[(shard, key)] = clock.now
        elif operation == "drop":
            state.drop(key)
        elif operation == "tick":
            clock.now += amount / 10
        elif operation == "sweep":
            state.sweep()
        else:
            state.clear()
        assert budget.used <= limit
        assert budget.used == sum(h.bytes for h in holders)
        assert all(h.bytes >= len(h) * ENTRY_OVERHEAD for h in holders)


@settings(deadline=None)
@given(keys=st.lists(st.integers(0, 20), min_size=1, max_size=60), room=st.integers(1, 6))
def test_eviction_keeps_the_most_recently_used(keys: list[int], room: int) -> None:
    """With room for `room` equal entries, what stays is exactly the `room` keys used most
    recently (least recently used first out)."""
    budget = MemoryBudget(room * (10 + ENTRY_OVERHEAD))
    state: Resident[int, int] = Resident("lru", budget=budget, size=lambda _v: 10)
    for key in keys:
        if state.get(key) is None:
            state.put(key, key)
    recent = list(dict.fromkeys(reversed(keys)))[:room]
    assert sorted(k for k in range(21) if k in state) == sorted(recent)
