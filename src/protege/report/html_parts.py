"""The pieces every report.html section is made of: a titled section and an embedded SVG figure."""

from __future__ import annotations

import base64
from html import escape


def section(title: str, body: str) -> str:
    return f"<section><h2>{escape(title)}</h2>{body}</section>"


def figure(svg: str, caption: str) -> str:
    """The SVG embedded as a data URL (the page stays one file, with no script)."""
    data = base64.b64encode(svg.encode("utf-8")).decode("ascii")
    caption_html = f"<figcaption>{escape(caption)}</figcaption>" if caption else ""
    image = f"<img alt='{escape(caption) or 'figure'}' src='data:image/svg+xml;base64,{data}'>"
    return f"<figure>{image}{caption_html}</figure>"
