"""QR codes drawn here by `segno` as inline SVG: no image from another host, and no style
attributes (the pages' CSP forbids inline styles)."""

from __future__ import annotations

import re

import segno
from markupsafe import Markup

_STYLE = re.compile(r"\s+style=(\"[^\"]*\"|'[^']*')")


def qr_svg(data: str, *, title: str) -> Markup:
    """`data` as a QR code in inline SVG, with `title` as its accessible name."""
    svg = segno.make(data, error="m").svg_inline(
        scale=4,
        dark="#000",
        light="#fff",
        omitsize=True,
        svgclass="qr-code",
        lineclass="qr-line",
        title=title,
    )
    svg = _STYLE.sub("", svg).replace("<svg ", '<svg role="img" focusable="false" ', 1)
    return Markup(svg)  # segno's own markup; it escapes the title itself
