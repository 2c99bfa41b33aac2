"""How a node tunes Python's cyclic garbage collector once it has started.

Everything alive after start-up (modules, actors, pools, caches) lives as long as the node,
yet the collector would walk it again in every full collection: on a node serving big
replies those walks are pauses of about 250 ms (tests/bench/names_bench.py measured them
in the p99 of group reads). `settle` moves what exists into the permanent generation
(`gc.freeze`) and collects the youngest generation less often, so a full walk covers only
what requests made since.
"""

from __future__ import annotations

import gc

import structlog

log = structlog.get_logger("splitgo.heap")

# allocations between collections of the youngest generation (CPython's default: 700)
YOUNG_THRESHOLD = 10_000


def settle() -> None:
    """Collect once, freeze what survives, and raise the youngest generation's threshold."""
    gc.collect()
    gc.freeze()
    _, middle, old = gc.get_threshold()
    gc.set_threshold(YOUNG_THRESHOLD, middle, old)
    log.info("heap_settled", frozen=gc.get_freeze_count(), young_threshold=YOUNG_THRESHOLD)
