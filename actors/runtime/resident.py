"""Hot state kept by its owner shard: loaded on first use, passivated when idle or when the
node's memory budget is reached (as Orleans grains and Akka entities are).

A shard is the single writer of its keys (shared/DESIGN.md, "State lives with its owner"),
so it may keep their state in memory and answer reads from there. A `Resident` is one such
keyed holder of one shard: `get` answers from memory, `load` reads through on a miss, and the
owner writes through with `put` right after its transaction commits (or `drop` when the
write failed, so nothing stale stays).

An entry goes away when:

- it has not been used for `idle` seconds (checked on use, and swept from the shard's
  `every` job);
- the node's `MemoryBudget` is full: the least recently used entry of the whole node goes
  first, whichever shard holds it. Sizes are estimated by the actor (`size`), plus a fixed
  overhead per entry, so the budget bounds what the holders keep, not the process;
- its shard stops on this node (a restart, the node stopping): the runtime closes every
  holder of the actor instance; and when the shard's lease moved to another node and came
  back (its `tenure` changed), the holder empties itself before its next use, so a shard
  that comes back loads afresh.

Pure and synchronous apart from `load`: one message at a time per shard means a holder
needs no locks; the budget is shared by the node's shards, all on one event loop.
"""

from __future__ import annotations

import datetime as _dt
import sys
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass, fields, is_dataclass
from typing import Any, Generic, TypeVar

from actors.runtime.clock import Clock, wall_clock

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")

# what one entry costs beyond its value: the dict slot, the entry record, a short key
ENTRY_OVERHEAD = 200
DEFAULT_BUDGET_BYTES = 256 * 1024 * 1024
DEFAULT_IDLE_SECONDS = 600.0


class MemoryBudget:
    """The bytes this node lets its resident state hold, shared by every shard's holders.

    Over the limit, the least recently used entry of the node is dropped first, until the
    total fits again. A `limit` of 0 keeps nothing (every read goes to the store).
    """

    def __init__(self, limit: int = DEFAULT_BUDGET_BYTES) -> None:
        if limit < 0:
            raise ValueError("a memory budget cannot be negative")
        self.limit = limit
        self.used = 0
        self.evicted = 0  # entries dropped to fit the budget, since the start
        self._tick = 0
        self._holders: list[Resident[Any, Any]] = []

    def next_tick(self) -> int:
        """A node-wide use counter: orders uses across holders (least recent first)."""
        self._tick += 1
        return self._tick

    def join(self, holder: Resident[Any, Any]) -> None:
        self._holders.append(holder)

    def leave(self, holder: Resident[Any, Any]) -> None:
        if holder in self._holders:
            self._holders.remove(holder)

    @property
    def holders(self) -> int:
        return len(self._holders)

    def entries(self) -> int:
        return sum(len(holder) for holder in self._holders)

    def fit(self) -> int:
        """Drop least recently used entries, node-wide, until `used` is within `limit`."""
        dropped = 0
        while self.used > self.limit:
            oldest: Resident[Any, Any] | None = None
            oldest_tick = 0
            for holder in self._holders:
                tick = holder.oldest_tick()
                if tick is not None and (oldest is None or tick < oldest_tick):
                    oldest, oldest_tick = holder, tick
            if oldest is None:  # nothing left to drop (sizes out of step: cannot happen)
                break
            oldest.drop_oldest()
            dropped += 1
        self.evicted += dropped
        return dropped


@dataclass(slots=True)
class _Entry(Generic[V]):
    value: V
    size: int
    used_at: float  # the holder's clock at the last use (idle passivation)
    tick: int  # the budget's use counter at the last use (least recently used)


class Resident(Generic[K, V]):
    """One shard's keyed hot state: entries in least-recently-used order, sized, passivated.

    `size(value)` estimates an entry's bytes (`deep_size` does for plain values); `idle`
    is how long an unused entry stays; `clock` gives seconds (tests move it); `tenure`
    counts the shard's acquisitions by this node (what was held under an earlier one is
    dropped).
    """

    def __init__(
        self,
        name: str,
        *,
        budget: MemoryBudget,
        size: Callable[[V], int] = lambda value: deep_size(value),
        idle: float = DEFAULT_IDLE_SECONDS,
        clock: Clock = wall_clock,
        tenure: Callable[[], int] = lambda: 0,
    ) -> None:
        if idle <= 0:
            raise ValueError("idle must be positive")
        self.name = name
        self.idle = idle
        self.bytes = 0
        self.hits = 0
        self.misses = 0
        self._budget = budget
        self._size = size
        self._clock = clock
        self._tenure = tenure
        self._held_in = tenure()
        self._entries: OrderedDict[K, _Entry[V]] = OrderedDict()
        # bumped by every drop: a load that a drop overtook does not cache what it read
        self._drops = 0
        self._closed = False
        budget.join(self)

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, key: object) -> bool:
        """Whether `key` is held now (without counting as a use)."""
        return key in self._entries

    def get(self, key: K) -> V | None:
        """The value held for `key` (a use: it becomes the most recent), or None."""
        if self._tenure() != self._held_in:
            self._held_in = self._tenure()
            self.clear()
        entry = self._entries.get(key)
        if entry is None:
            self.misses += 1
            return None
        now = self._clock()
        if now - entry.used_at >= self.idle:
            self._remove(key)
            self.misses += 1
            return None
        entry.used_at = now
        entry.tick = self._budget.next_tick()
        self._entries.move_to_end(key)
        self.hits += 1
        return entry.value

    def put(self, key: K, value: V) -> None:
        """Hold `value` for `key` (replacing what was), then fit the node's budget."""
        if self._closed:
            return
        if self._tenure() != self._held_in:
            self._held_in = self._tenure()
            self.clear()
        size = ENTRY_OVERHEAD + max(0, int(self._size(value)))
        old = self._entries.pop(key, None)
        if old is not None:
            self._release(old.size)
        self._entries[key] = _Entry(value, size, self._clock(), self._budget.next_tick())
        self.bytes += size
        self._budget.used += size
        self._sweep_front()
        self._budget.fit()

    def drop(self, key: K) -> bool:
        """Forget `key` (its state changed elsewhere, or a write failed): True if held."""
        self._drops += 1
        if key not in self._entries:
            return False
        self._remove(key)
        return True

    async def load(self, key: K, read: Callable[[], Awaitable[V | None]]) -> V | None:
        """The value for `key`: from memory, else `read()` and hold it (None is not held).

        If a `drop` happened while reading, the value read is returned but not held: it may
        predate the change that caused the drop.
        """
        held = self.get(key)
        if held is not None:
            return held
        drops = self._drops
        value = await read()
        if value is not None and drops == self._drops:
            self.put(key, value)
        return value

    def sweep(self) -> int:
        """Drop every entry idle for `idle` seconds or more; how many were dropped."""
        return self._sweep_front()

    def clear(self) -> int:
        """Drop everything; how many entries there were."""
        count = len(self._entries)
        self._drops += 1
        self._budget.used -= self.bytes
        self.bytes = 0
        self._entries.clear()
        return count

    def close(self) -> None:
        """Drop everything and leave the budget (the shard stopped here); puts are ignored
        from now on."""
        self.clear()
        self._closed = True
        self._budget.leave(self)

    # ── what the budget uses ──────────────────────────────────────────────────────────

    def oldest_tick(self) -> int | None:
        """The use counter of the least recently used entry (None: empty)."""
        for entry in self._entries.values():
            return entry.tick
        return None

    def drop_oldest(self) -> None:
        _key, entry = self._entries.popitem(last=False)
        self._release(entry.size)

    # ── inside ────────────────────────────────────────────────────────────────────────

    def _sweep_front(self) -> int:
        # entries are in use order, so the idle ones are all at the front
        limit = self._clock() - self.idle
        dropped = 0
        while self._entries:
            key, entry = next(iter(self._entries.items()))
            if entry.used_at > limit:
                break
            self._remove(key)
            dropped += 1
        return dropped

    def _remove(self, key: K) -> None:
        entry = self._entries.pop(key)
        self._release(entry.size)

    def _release(self, size: int) -> None:
        self.bytes -= size
        self._budget.used -= size


_ATOMS = (str, bytes, int, float, bool, type(None), _dt.datetime, _dt.date, _dt.timedelta)


def deep_size(value: object) -> int:
    """An estimate of the bytes `value` holds: `sys.getsizeof` over it and what it refers
    to (containers, dataclasses, msgspec Structs, slotted objects), each object once."""
    seen: set[int] = set()
    total = 0
    stack: list[object] = [value]
    while stack:
        item = stack.pop()
        if id(item) in seen:
            continue
        seen.add(id(item))
        total += sys.getsizeof(item)
        if isinstance(item, _ATOMS):
            continue
        stack.extend(_parts(item))
    return total


def _parts(item: object) -> list[object]:
    if isinstance(item, dict):
        return [*item.keys(), *item.values()]
    if isinstance(item, list | tuple | set | frozenset):
        return list(item)
    struct_fields = getattr(type(item), "__struct_fields__", None)
    if struct_fields is not None:
        return [getattr(item, name) for name in struct_fields]
    if is_dataclass(item) and not isinstance(item, type):
        return [getattr(item, f.name) for f in fields(item)]
    slots = getattr(type(item), "__slots__", ())
    found = [getattr(item, name) for name in slots if hasattr(item, name)]
    if hasattr(item, "__dict__"):
        found.extend(vars(item).values())
    return found
