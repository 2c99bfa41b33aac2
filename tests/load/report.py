"""Tables of a load run, as Markdown (readable in a terminal, ready for the README)."""

from __future__ import annotations

from typing import Any


def _ms(value: float | None) -> str:
    return "—" if value is None else f"{value:,.1f}"


def _table(header: list[str], rows: list[list[str]], right: set[int]) -> list[str]:
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]

    def line(cells: list[str]) -> str:
        padded = [
            cell.rjust(widths[i]) if i in right else cell.ljust(widths[i])
            for i, cell in enumerate(cells)
        ]
        return "| " + " | ".join(padded) + " |"

    rule = [("-" * (w + 1) + ":") if i in right else "-" * (w + 2) for i, w in enumerate(widths)]
    return [line(header), "|" + "|".join(rule) + "|", *map(line, rows)]


def phase_table(result: dict[str, Any]) -> list[str]:
    """Per route: requests, req/s, p50, p99, errors; then the phase's totals."""
    rows: list[list[str]] = []
    for route, stats in result["routes"].items():
        wrong = sum(stats["errors"].values()) + sum(stats["failures"].values())
        rows.append(
            [
                f"`{route}`",
                f"{stats['requests']:,}",
                f"{stats['rps']:,.1f}",
                _ms(stats["latency_ms"]["p50"]),
                _ms(stats["latency_ms"]["p99"]),
                f"{wrong:,}",
            ]
        )
    total, reads = result["total"], result["reads"]
    rows.append(
        [
            "**all requests**",
            f"{total['requests']:,}",
            f"**{total['rps']:,.1f}**",
            _ms(total["latency_ms"]["p50"]),
            f"**{_ms(total['latency_ms']['p99'])}**",
            f"{total['errors'] + total['failures']:,}",
        ]
    )
    if result["phase"] != "reads":
        rows.append(
            [
                "of which reads (GET)",
                f"{reads['requests']:,}",
                f"{reads['rps']:,.1f}",
                _ms(reads["latency_ms"]["p50"]),
                _ms(reads["latency_ms"]["p99"]),
                "",
            ]
        )
    header = ["route", "requests", "req/s", "p50 ms", "p99 ms", "errors"]
    return _table(header, rows, right={1, 2, 3, 4, 5})


def error_lines(result: dict[str, Any]) -> list[str]:
    """Every error and transport failure, by route, with a sample of what the node said."""
    lines: list[str] = []
    for route, stats in result["routes"].items():
        for kind in ("errors", "failures"):
            for key, count in stats[kind].items():
                sample = stats["samples"].get(key, [""])
                said = f" — {sample[0]}" if sample and sample[0] else ""
                label = "transport failure " if kind == "failures" else ""
                lines.append(f"- `{route}`: {label}{key} x {count:,}{said}")
    return lines


def describe_phase(result: dict[str, Any], cpu: dict[str, float]) -> list[str]:
    title = (
        f"{result['phase']}: {result['seconds']:g} s measured after {result['warmup']:g} s of "
        f"warm-up, {result['concurrency']} closed-loop workers"
    )
    if result["phase"] == "mixed":
        title += (
            f", plus logins at {result['login_rate']:g}/s and sign-ups at "
            f"{result['signup_rate']:g}/s"
        )
    lines = [f"### {title}", "", *phase_table(result), ""]
    errors = error_lines(result)
    lines += ["Errors:" if errors else "Errors: none.", *errors]
    if errors:
        lines.append("")
    actors = result.get("actors") or {}
    if actors:
        lines += [
            "Actors during the phase (from /ops/actors, once a second): "
            + ", ".join(
                f"{name} {a['handled_per_s']:,.0f} msg/s (queued at most {a['max_queued']:,}, "
                f"slowest shard's handling p50 {a.get('slowest_shard_p50_ms', 0):g} ms at the end)"
                for name, a in actors.items()
            )
            + "."
        ]
    seconds = result["wall_s"] or 1.0
    generator = f"load generator {result['generator_cpu_s'] / seconds:.0%}"
    if cpu:
        lines.append(
            f"CPU over the phase ({seconds:.0f} s wall): node {cpu['node_s'] / seconds:.0%} of a "
            f"core, PostgreSQL {cpu['database_s'] / seconds:.0%}, {generator}."
        )
    else:
        lines.append(f"CPU over the phase ({seconds:.0f} s wall): {generator} of a core.")
    skipped = {k: v for k, v in result["actions"].items() if k.endswith("_skipped")}
    if skipped:
        lines.append(f"Skipped (nobody free, or too many in flight): {skipped}.")
    return lines


def describe_node(health: dict[str, Any]) -> list[str]:
    lines = ["### The node afterwards", ""]
    actors = health.get("actors", {})
    if actors:
        rows = [
            [
                name,
                f"{a['handled']:,}",
                f"{a['failed']:,}",
                f"{a['restarts']:,}",
                f"{a['dead_lettered']:,}",
            ]
            for name, a in sorted(actors.items())
        ]
        header = ["actor", "handled", "failed", "restarts", "dead-lettered"]
        lines += _table(header, rows, right={1, 2, 3, 4})
        lines.append("")
    lines.append(f"Dead letters stored: {health.get('dead_letters', '?')}.")
    logged = health.get("log_errors", {})
    if logged:
        lines.append("Node log lines at error level or above, by event:")
        lines += [f"- `{event}` x {count}" for event, count in logged.items()]
        for excerpt in health.get("log_excerpts", []):
            lines.append(f"  `{excerpt}`")
    else:
        lines.append("Node log: no line at error level or above.")
    warned = health.get("log_warnings", {})
    if warned:
        lines.append(
            "Warnings, by event: "
            + ", ".join(f"`{event}` x {count:,}" for event, count in warned.items())
            + "."
        )
    return lines
