"""The insight charts as inline SVG: well-formed, one image to a screen reader (title and
description), labels escaped, colours by class only (never a style), one bar or column per
item, sized by a viewBox only, and an accessible empty chart when there is nothing."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest
from hypothesis import given
from hypothesis import strategies as st
from markupsafe import Markup

from splitgo.pages.charts import (
    CHART_COLOURS,
    EMPTY_TEXT,
    LABEL_CHARS,
    MONTH_LABELS,
    bar_chart,
    colour_class,
    month_chart,
)

SVG = "{http://www.w3.org/2000/svg}"
EVIL = '<script>alert("x")</script> & "quotes"'


def parse(markup: Markup) -> ET.Element:
    """The chart as an XML tree (it must be well-formed to parse at all)."""
    return ET.fromstring(str(markup))


def every(root: ET.Element, tag: str) -> list[ET.Element]:
    return list(root.iter(SVG + tag))


def accessible_name(root: ET.Element) -> tuple[str, str]:
    """The title and description the svg's aria-labelledby points at."""
    ids = root.attrib["aria-labelledby"].split()
    found = {element.attrib.get("id"): element.text or "" for element in root.iter()}
    return found[ids[0]], found[ids[1]]


def no_style_anywhere(root: ET.Element) -> bool:
    """No style attribute, no <style> or <script>, no colour attribute: the CSP holds and
    the colours come from the classes."""
    for element in root.iter():
        if element.tag in (SVG + "style", SVG + "script"):
            return False
        if {"style", "fill", "stroke", "color"} & set(element.attrib):
            return False
    return True


def test_a_bar_chart_has_a_bar_a_label_and_a_value_per_item() -> None:
    """Three categories: three bars coloured c0..c2, three labels, three values, widths
    in proportion to the largest, named and described for a screen reader."""
    chart = bar_chart(
        [("food", 300), ("rent", 150), ("fun", 0)],
        title="Spent by category",
        description="Food 3.00, rent 1.50, fun 0.00",
        value_text=lambda amount: f"{amount / 100:.2f}",
    )
    assert isinstance(chart, Markup)
    root = parse(chart)
    assert root.attrib["role"] == "img"
    assert accessible_name(root) == ("Spent by category", "Food 3.00, rent 1.50, fun 0.00")
    rects = every(root, "rect")
    assert [rect.attrib["class"] for rect in rects] == ["chart-c0", "chart-c1", "chart-c2"]
    widths = [float(rect.attrib["width"]) for rect in rects]
    assert widths[0] == pytest.approx(2 * widths[1])
    assert widths[2] == 0
    labels = [t.text for t in every(root, "text") if t.attrib["class"] == "chart-label"]
    values = [t.text for t in every(root, "text") if t.attrib["class"] == "chart-value"]
    assert labels == ["food", "rent", "fun"]
    assert values == ["3.00", "1.50", "0.00"]
    assert no_style_anywhere(root)


def test_a_chart_is_sized_by_its_viewbox_only() -> None:
    """No width or height on the svg: it scales to its container (CSS sets the width)."""
    for chart in (bar_chart([("a", 1)], title="t"), month_chart([("2026-01", 1)], title="t")):
        root = parse(chart)
        assert "width" not in root.attrib
        assert "height" not in root.attrib
        x, y, width, height = (float(n) for n in root.attrib["viewBox"].split())
        assert (x, y) == (0, 0)
        assert width > 0
        assert height > 0


def test_a_label_with_a_script_is_shown_as_text() -> None:
    """A category named like markup is escaped in the bar's label, its tooltip, the title
    and the description: no element of it reaches the page."""
    chart = bar_chart(
        [(EVIL, 100)], title=EVIL, description=EVIL, value_text=lambda _: EVIL, chart_id=EVIL
    )
    assert "<script" not in str(chart)
    assert "&lt;script&gt;" in str(chart)
    root = parse(chart)
    assert not every(root, "script")
    assert accessible_name(root) == (EVIL, EVIL)
    tooltip = every(root, "g")[0].find(SVG + "title")
    assert tooltip is not None
    assert tooltip.text == f"{EVIL}: {EVIL}"
    months = parse(month_chart([(EVIL, 5)], title=EVIL, value_text=lambda _: EVIL))
    assert not every(months, "script")
    assert [t.text for t in every(months, "text")] == [EVIL]


@given(
    st.lists(
        st.tuples(st.text(max_size=60), st.integers(min_value=0, max_value=10**12)),
        max_size=12,
    ),
    st.text(max_size=80),
)
def test_any_labels_and_values_make_a_well_formed_chart(
    items: list[tuple[str, int]], title: str
) -> None:
    """Whatever the labels (quotes, ampersands, markup, control characters), both charts
    parse as XML, keep a printable title word for word and have one rect per item."""
    title = "".join(c for c in title if c.isprintable())
    for chart in (bar_chart(items, title=title), month_chart(items, title=title)):
        root = parse(chart)
        assert accessible_name(root)[0] == title
        assert len(every(root, "rect")) == len(items)
        assert no_style_anywhere(root)


def test_a_long_label_is_cut_short_and_whole_in_its_tooltip() -> None:
    """Past LABEL_CHARS the label ends in an ellipsis; the tooltip keeps all of it."""
    long = "groceries, cleaning and household things"
    root = parse(bar_chart([(long, 1)], title="t"))
    label = next(t for t in every(root, "text") if t.attrib["class"] == "chart-label")
    assert label.text is not None
    assert len(label.text) == LABEL_CHARS
    assert label.text.endswith("…")
    tooltip = every(root, "g")[0].find(SVG + "title")
    assert tooltip is not None
    assert tooltip.text == f"{long}: 1"


def test_bars_cycle_through_eight_colours() -> None:
    """The ninth bar has the first bar's colour class."""
    root = parse(bar_chart([(str(n), n + 1) for n in range(9)], title="t"))
    classes = [rect.attrib["class"] for rect in every(root, "rect")]
    assert classes == [f"chart-c{n}" for n in range(CHART_COLOURS)] + ["chart-c0"]
    assert colour_class(11) == "chart-c3"


def test_a_month_chart_has_a_column_per_month_and_a_baseline() -> None:
    """Three months: three columns in one colour, heights in proportion, a baseline, and
    each month labelled under its column."""
    chart = month_chart(
        [("Jan", 100), ("Feb", 0), ("Mar", 50)], title="By month", colour=3, chart_id="m"
    )
    root = parse(chart)
    assert root.attrib["aria-labelledby"] == "chart-m-title chart-m-desc"
    rects = every(root, "rect")
    assert {rect.attrib["class"] for rect in rects} == {"chart-c3"}
    heights = [float(rect.attrib["height"]) for rect in rects]
    assert heights[0] == pytest.approx(2 * heights[2])
    assert heights[1] == 0
    assert len(every(root, "line")) == 1
    assert [t.text for t in every(root, "text")] == ["Jan", "Feb", "Mar"]
    # the described largest month, when the page gives no description of its own
    assert accessible_name(root)[1] == "3 items; the largest is Jan, 100."


def test_many_months_label_only_some_columns() -> None:
    """Thirty-six months: every column, at most MONTH_LABELS labels (every fifth)."""
    items = [(f"2024-{n:02d}", n) for n in range(1, 37)]
    root = parse(month_chart(items, title="t"))
    assert len(every(root, "rect")) == 36
    labels = [t.text for t in every(root, "text")]
    assert len(labels) == MONTH_LABELS
    assert labels[:2] == ["2024-01", "2024-06"]


def test_an_empty_chart_is_still_an_accessible_image() -> None:
    """No data: an image with its title, a description saying there is nothing, a visible
    sentence, and no bars."""
    for draw in (bar_chart, month_chart):
        root = parse(draw([], title="Spent by category"))
        assert root.attrib["role"] == "img"
        assert accessible_name(root) == ("Spent by category", EMPTY_TEXT)
        assert not every(root, "rect")
        (text,) = every(root, "text")
        assert text.attrib["class"] == "chart-empty"
        assert text.text == EMPTY_TEXT
    custom = parse(bar_chart([], title="t", description="No expenses match", empty_text="—"))
    assert accessible_name(custom) == ("t", "No expenses match")


def test_all_zero_values_draw_empty_bars_without_dividing_by_zero() -> None:
    """Every value 0: every bar and column is there with no length."""
    bars = parse(bar_chart([("a", 0), ("b", 0)], title="t"))
    assert [float(r.attrib["width"]) for r in every(bars, "rect")] == [0, 0]
    columns = parse(month_chart([("a", 0)], title="t"))
    assert [float(r.attrib["height"]) for r in every(columns, "rect")] == [0]


def test_a_negative_value_is_refused() -> None:
    """Totals are never negative: a negative one is a programming error."""
    with pytest.raises(ValueError, match="0 or more"):
        bar_chart([("a", -1)], title="t")
    with pytest.raises(ValueError, match="0 or more"):
        month_chart([("a", True)], title="t")


def test_two_charts_on_one_page_have_different_ids() -> None:
    """Ids come from the title (or the given id), so two charts' titles never collide."""
    first = parse(bar_chart([("a", 1)], title="By category"))
    second = parse(month_chart([("a", 1)], title="By month"))
    assert first.attrib["aria-labelledby"] != second.attrib["aria-labelledby"]
