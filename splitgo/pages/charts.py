"""Charts drawn here as inline SVG, for the insight pages: `bar_chart` (one bar per
category, largest first as given) and `month_chart` (one column per month).

What they return is markup the templates put in as it is: every label and text is escaped
here. The page's Content-Security-Policy forbids style attributes, so the drawing carries
class names only (`chart-c0` … `chart-c7` for colours, `chart-label`, `chart-value`,
`chart-axis`, `chart-empty`); static/charts.css gives them their looks, in light and dark.
Only a `viewBox` sizes a chart, so it scales to its container. A chart is one image to a
screen reader (`role="img"`, named by its `<title>` and described by its `<desc>`); the
same numbers as a table beside it are the page's job.
"""

from __future__ import annotations

import math
import re
import zlib
from collections.abc import Callable, Sequence

from markupsafe import Markup, escape

CHART_COLOURS = 8  # .chart-c0 … .chart-c7 in static/charts.css
WIDTH = 640  # of the viewBox; the chart is drawn to scale in it
LABEL_CHARS = 32  # a bar's label beyond this is cut short (its full text is its tooltip)
MONTH_LABELS = 8  # at most this many month labels under the columns; the others are skipped
EMPTY_TEXT = "Nothing to show yet"

# A bar chart's row: its label (left) and value (right) on a line of their own above the
# bar, so the bars have the whole width and a phone's narrow screen still fits the words.
_LINE = 22  # the words' line
_BAR = 18  # a bar's height
_GAP = 14  # between rows
_ROW = _LINE + _BAR + _GAP
_PAD = 8
_PLOT_H = 200  # a month chart's column area
_ID = re.compile(r"[^A-Za-z0-9_-]")
# what XML 1.0 cannot hold at all (C0 controls but tab and newlines, lone surrogates,
# U+FFFE/U+FFFF): dropped, so the drawing stays well-formed wherever it is parsed
_NOT_XML = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def _text(value: str) -> Markup:
    """`value` escaped for an element's text or an attribute, with what XML refuses
    dropped."""
    return escape(_NOT_XML.sub("", value))


def colour_class(index: int) -> str:
    """The colour class of the `index`th series or bar, cycling through the eight."""
    return f"chart-c{index % CHART_COLOURS}"


def _n(value: float) -> str:
    # coordinates with at most two decimals, no trailing zeros: stable, short markup
    text = f"{value:.2f}".rstrip("0").rstrip(".")
    return "0" if text == "-0" else text


def _short(label: str) -> str:
    return label if len(label) <= LABEL_CHARS else label[: LABEL_CHARS - 1] + "…"


def _chart_id(given: str | None, title: str, description: str) -> str:
    # ids tie <svg> to its <title>/<desc>; two charts on one page need different ones
    if given:
        return "chart-" + _ID.sub("-", given)
    return f"chart-{zlib.crc32((title + chr(0) + description).encode()):08x}"


def _check(items: Sequence[tuple[str, int]]) -> None:
    for label, value in items:
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ValueError(f"the value of {label!r} must be a whole number, 0 or more")


def _svg(kind: str, ident: str, height: float, title: str, description: str, body: str) -> Markup:
    head = (
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart {kind}"'
        f' viewBox="0 0 {WIDTH} {_n(height)}" role="img" focusable="false"'
        f' aria-labelledby="{ident}-title {ident}-desc">'
        f'<title id="{ident}-title">{_text(title)}</title>'
        f'<desc id="{ident}-desc">{_text(description)}</desc>'
    )
    # every text in it was escaped as it was put in
    return Markup(head + body + "</svg>")


def _empty(kind: str, ident: str, title: str, description: str, empty_text: str) -> Markup:
    height = 2 * _BAR + 2 * _PAD
    body = (
        f'<text class="chart-empty" x="{WIDTH // 2}" y="{_n(height / 2)}"'
        f' text-anchor="middle" dominant-baseline="middle">{_text(empty_text)}</text>'
    )
    return _svg(kind, ident, height, title, description or empty_text, body)


def _summary(items: Sequence[tuple[str, int]], value_text: Callable[[int], str]) -> str:
    largest = max(items, key=lambda item: item[1])
    return f"{len(items)} items; the largest is {largest[0]}, {value_text(largest[1])}."


def bar_chart(
    items: Sequence[tuple[str, int]],
    *,
    title: str,
    description: str = "",
    value_text: Callable[[int], str] = str,
    chart_id: str | None = None,
    empty_text: str = EMPTY_TEXT,
) -> Markup:
    """Horizontal bars, one per (label, value) in the order given, each as long as its
    share of the largest value and coloured `chart-c<i>` by its place; above each, its
    label (cut short past LABEL_CHARS, whole in its tooltip) at the left and
    `value_text(value)` at the right (the page formats money in the reader's language).
    With no items, an empty chart that says `empty_text`. ValueError for a negative
    value."""
    _check(items)
    ident = _chart_id(chart_id, title, description)
    if not items:
        return _empty("chart-bars", ident, title, description, empty_text)
    description = description or _summary(items, value_text)
    top = max(value for _, value in items)
    room = WIDTH - 2 * _PAD
    parts: list[str] = []
    for index, (label, value) in enumerate(items):
        y = _PAD + index * _ROW
        length = room * value / top if top else 0.0
        parts.append(
            '<g class="chart-bar">'
            f"<title>{_text(label)}: {_text(value_text(value))}</title>"
            f'<text class="chart-label" x="{_PAD}" y="{y + _LINE - 6}">'
            f"{_text(_short(label))}</text>"
            f'<text class="chart-value" x="{WIDTH - _PAD}" y="{y + _LINE - 6}"'
            f' text-anchor="end">{_text(value_text(value))}</text>'
            f'<rect class="{colour_class(index)}" x="{_PAD}" y="{y + _LINE}"'
            f' width="{_n(length)}" height="{_BAR}" rx="3"/>'
            "</g>"
        )
    height = 2 * _PAD + len(items) * _ROW - _GAP
    return _svg("chart-bars", ident, height, title, description, "".join(parts))


def month_chart(
    items: Sequence[tuple[str, int]],
    *,
    title: str,
    description: str = "",
    value_text: Callable[[int], str] = str,
    chart_id: str | None = None,
    empty_text: str = EMPTY_TEXT,
    colour: int = 0,
) -> Markup:
    """Columns, one per (month label, value) in the order given (oldest first), as tall as
    its share of the largest, all in `chart-c<colour>`, on a baseline; under them the
    labels, at most MONTH_LABELS of them (every second, third, … month when there are
    more). Each column's tooltip is its label and `value_text(value)`. With no items, an
    empty chart that says `empty_text`. ValueError for a negative value."""
    _check(items)
    ident = _chart_id(chart_id, title, description)
    if not items:
        return _empty("chart-months", ident, title, description, empty_text)
    description = description or _summary(items, value_text)
    top = max(value for _, value in items)
    slot = (WIDTH - 2 * _PAD) / len(items)
    column = slot * 0.7
    base = _PAD + _PLOT_H
    every = math.ceil(len(items) / MONTH_LABELS)
    parts = [f'<line class="chart-axis" x1="{_PAD}" y1="{base}" x2="{WIDTH - _PAD}" y2="{base}"/>']
    for index, (label, value) in enumerate(items):
        tall = _PLOT_H * value / top if top else 0.0
        x = _PAD + index * slot + (slot - column) / 2
        shown = (
            f'<text class="chart-label" x="{_n(x + column / 2)}" y="{base + 20}"'
            f' text-anchor="middle">{_text(label)}</text>'
            if index % every == 0
            else ""
        )
        parts.append(
            '<g class="chart-column">'
            f"<title>{_text(label)}: {_text(value_text(value))}</title>"
            f'<rect class="{colour_class(colour)}" x="{_n(x)}" y="{_n(base - tall)}"'
            f' width="{_n(column)}" height="{_n(tall)}"/>'
            f"{shown}</g>"
        )
    height = base + 20 + 2 * _PAD
    return _svg("chart-months", ident, height, title, description, "".join(parts))
