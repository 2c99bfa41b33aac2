"""The soak's verdicts, apart from any IO: what the client saw against what was stored, and
the latency of the takeover windows against the steady state.

Everything here takes plain values (keys, ids, timestamps) so that a unit test can hand it
a crafted history and see a lost or doubled effect named (tests/unit/test_soak_checks.py).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

# how many of each kind of problem a report names (the counts are always whole)
SHOWN = 10


def is_final(status: int, code: str | None) -> bool:
    """An answer that retrying with the same key would not change: a 2xx or a 4xx. No
    answer (0), a 5xx, a 202 (still moving) and 409 `idempotency_in_flight` are not."""
    if status == 0 or status >= 500 or status == 202:
        return False
    return not (status == 409 and code == "idempotency_in_flight")


@dataclass(frozen=True)
class Reconciled:
    """One kind of write: the client's successes against the stored rows, by key.

    `lost`: a success the client saw with no row; `doubled`: a key with more than one row;
    `mismatched`: a row under another id than the one the client was answered; `phantom`:
    a row for a key the client was refused (or never sent); `doubled_after_retry`: the
    doubled keys the client had to send more than once.
    """

    kind: str
    confirmed: int
    rows: int
    lost: list[str] = field(default_factory=list)
    doubled: list[str] = field(default_factory=list)
    mismatched: list[str] = field(default_factory=list)
    phantom: list[str] = field(default_factory=list)
    doubled_after_retry: list[str] = field(default_factory=list)

    @property
    def clean(self) -> bool:
        return not (self.lost or self.doubled or self.mismatched or self.phantom)

    def summary(self) -> dict[str, object]:
        """Counts, with the first few keys of each problem to look up."""
        problems = {
            "lost": self.lost,
            "doubled": self.doubled,
            "mismatched": self.mismatched,
            "phantom": self.phantom,
            "doubled_after_retry": self.doubled_after_retry,
        }
        return {
            "kind": self.kind,
            "confirmed": self.confirmed,
            "rows": self.rows,
            **{name: len(keys) for name, keys in problems.items()},
            "examples": {name: keys[:SHOWN] for name, keys in problems.items() if keys},
        }


def reconcile(
    kind: str,
    confirmed: Mapping[str, str | None],
    rows: Iterable[tuple[str, str]],
    *,
    unsettled: Collection[str] = (),
    retried: Collection[str] = (),
) -> Reconciled:
    """Compare the successes the client saw (key -> the id it was answered, None when the
    answer names none) with the stored rows (key, id). A row whose key never got a final
    answer (`unsettled`) may or may not exist: it is neither lost nor phantom."""
    stored = list(rows)
    counts = Counter(key for key, _ in stored)
    ids: dict[str, set[str]] = {}
    for key, row_id in stored:
        ids.setdefault(key, set()).add(row_id)
    doubled = sorted(key for key, n in counts.items() if n > 1)
    retried_keys = set(retried)
    return Reconciled(
        kind=kind,
        confirmed=len(confirmed),
        rows=len(stored),
        lost=sorted(key for key in confirmed if key not in counts),
        doubled=doubled,
        mismatched=sorted(
            key
            for key, answered in confirmed.items()
            if answered is not None and key in ids and ids[key] != {answered}
        ),
        phantom=sorted(key for key in counts if key not in confirmed and key not in unsettled),
        doubled_after_retry=[key for key in doubled if key in retried_keys],
    )


def reads_off(served: Mapping[str, Mapping[str, int]], stored: Mapping[str, int]) -> list[str]:
    """What each node served (node -> item -> amount) against the database (item -> amount,
    zeros left out): every item a node served otherwise, as "node item served/stored"."""
    off = []
    for node, items in served.items():
        for item in sorted(set(items) | set(stored)):
            if items.get(item, 0) != stored.get(item, 0):
                off.append(f"{node} {item} {items.get(item, 0)}/{stored.get(item, 0)}")
    return off


# ── latency ─────────────────────────────────────────────────────────────────────────────


def percentile(values: Sequence[float], q: float) -> float | None:
    """The q-th percentile (0 < q <= 100) by the nearest-rank method; None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


def in_window(started: float, kills: Sequence[float], window: float) -> bool:
    """Whether a request that started at `started` began within `window` s after a kill."""
    return any(kill <= started < kill + window for kill in kills)


@dataclass(frozen=True)
class LatencyVerdict:
    """p99 of the requests begun in the takeover windows against that of the rest."""

    steady_p99: float | None
    takeover_p99: float | None
    steady_count: int
    takeover_count: int
    factor: float

    @property
    def ratio(self) -> float | None:
        if not self.steady_p99 or self.takeover_p99 is None:
            return None
        return self.takeover_p99 / self.steady_p99

    @property
    def held(self) -> bool | None:
        """True/False for the bound, None when there is nothing to compare (no kill)."""
        ratio = self.ratio
        return None if ratio is None else ratio <= self.factor


def latency_verdict(
    samples: Iterable[tuple[float, float]],
    kills: Sequence[float],
    *,
    window: float,
    factor: float = 3.0,
) -> LatencyVerdict:
    """Split (started, seconds) samples into takeover windows and steady state; p99 each."""
    steady: list[float] = []
    takeover: list[float] = []
    for started, seconds in samples:
        (takeover if in_window(started, kills, window) else steady).append(seconds)
    return LatencyVerdict(
        steady_p99=percentile(steady, 99),
        takeover_p99=percentile(takeover, 99),
        steady_count=len(steady),
        takeover_count=len(takeover),
        factor=factor,
    )


def kill_times(seconds: float, every: float) -> list[float]:
    """When (s after the load began) a node is killed: every `every` s, none at the end."""
    times: list[float] = []
    at = every
    while at < seconds - 1e-9:
        times.append(at)
        at += every
    return times
