"""The summary of a simulation run: counts, medians and the line a script parses (pure)."""

from __future__ import annotations

import statistics
from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from typing import Any

TERMINAL = frozenset({"completed", "cancelled", "no_driver"})


def parse_time(value: str) -> datetime:
    """An RFC 3339 time from a ride's timeline."""
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def wait_seconds(view: dict[str, Any]) -> float | None:
    """Seconds from the request to a driver's acceptance, from the ride's timeline."""
    at: dict[str, datetime] = {}
    for entry in view.get("timeline", []):
        at.setdefault(entry["status"], parse_time(entry["at"]))
    if "requested" not in at or "driver_assigned" not in at:
        return None
    waited: float = (at["driver_assigned"] - at["requested"]).total_seconds()
    return waited


@dataclass(frozen=True, slots=True)
class Summary:
    """What a run came to: counts by outcome, the median wait and fare, refusals."""

    counts: dict[str, int]
    median_wait_s: float | None
    median_fare: int | None
    currency: str
    errors: Counter[str]
    codes: Counter[str]


def summarise(
    views: dict[str, dict[str, Any]], errors: Counter[str], codes: Counter[str], currency: str
) -> Summary:
    """The counts and medians of a run from every ride's last view."""
    statuses = Counter(view.get("status", "unknown") for view in views.values())
    waits = [w for w in map(wait_seconds, views.values()) if w is not None]
    fares = [v["fare"] for v in views.values() if v.get("status") == "completed" and v.get("fare")]
    counts = {
        "requests": len(views),
        "matched": len(waits),
        "completed": statuses["completed"],
        "cancelled": statuses["cancelled"],
        "no_driver": statuses["no_driver"],
        "in_flight": sum(n for status, n in statuses.items() if status not in TERMINAL),
    }
    currency = next((v["estimate"]["currency"] for v in views.values() if v), currency)
    return Summary(
        counts=counts,
        median_wait_s=statistics.median(waits) if waits else None,
        median_fare=statistics.median_low(fares) if fares else None,
        currency=currency,
        errors=errors,
        codes=codes,
    )


def summary_line(summary: Summary) -> str:
    """One machine-readable line: space-separated key=value pairs."""
    wait = "none" if summary.median_wait_s is None else f"{summary.median_wait_s:.2f}"
    fare = "none" if summary.median_fare is None else str(summary.median_fare)
    errors = ",".join(f"{k}:{n}" for k, n in sorted(summary.errors.items())) or "none"
    pairs = [f"{name}={count}" for name, count in summary.counts.items()]
    pairs += [f"median_wait_s={wait}", f"median_fare={fare}", f"errors={errors}"]
    return "simulate: " + " ".join(pairs)
