"""Rendering of the report (``report.html`` and ``report.md``) from :class:`~.contents.ReportData` with the Jinja2
templates in ``templates/``.

The HTML environment autoescapes everything, so text taken from the data (post text, ids, URLs) can never inject
markup; the Markdown template escapes the same text with the ``md`` filter. Images are referenced by relative paths,
so the output folder can be moved or synced as a whole.
"""

from __future__ import annotations

import dataclasses
import html
import math
import re
from pathlib import Path

import jinja2

from clustering.analysis.report.contents import ReportData

TEMPLATES = Path(__file__).parent / "templates"


@dataclasses.dataclass(frozen=True)
class RenderedReport:
    html: str
    markdown: str


def _number(value, digits: int = 3) -> str:
    """Numbers for tables: integers with thousands separators, floats to ``digits`` significant places."""
    if value is None:
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        if math.isnan(value):
            return "–"
        if value.is_integer() and abs(value) < 1e15:
            return f"{int(value):,}"
        return f"{value:.{digits}g}" if abs(value) < 1e4 else f"{value:,.0f}"
    return str(value)


# Characters that start Markdown markup mid-line: code, emphasis, links/images, table cells, strikethrough. Intraword
# underscores (http_error) are left alone: CommonMark never reads them as emphasis.
_MD_SPECIAL = re.compile(r"([\\`*\[\]|~])")


def _markdown_escape(value) -> str:
    """Data-derived text made inert in Markdown: one line, HTML special characters as entities, markup escaped."""
    text = " ".join(str(value).split())
    text = html.escape(text, quote=False)
    return _MD_SPECIAL.sub(r"\\\1", text)


def _percent(value) -> str:
    try:
        return "–" if value is None or math.isnan(float(value)) else f"{float(value):.1%}"
    except (TypeError, ValueError):
        return str(value)


def _instant(value) -> str:
    """An ISO 8601 UTC instant (``2025-09-10T08:00:00Z``) as ``2025-09-10 08:00``; "–" when unknown."""
    return "–" if not value else str(value).replace("T", " ")[:16]


def _seconds(value) -> str:
    value = float(value)
    return f"{value:.2f} s" if value < 60 else f"{int(value // 60)} min {value % 60:.0f} s"


def _environment(*, autoescape: bool) -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        autoescape=autoescape,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters.update(number=_number, percent=_percent, seconds=_seconds, instant=_instant, md=_markdown_escape)
    return env


def render_report(data: ReportData) -> RenderedReport:
    """Render ``data`` to a self-contained HTML page (images referenced relatively) and a Markdown twin."""
    context = {"r": data}
    page = _environment(autoescape=True).get_template("report.html.j2").render(**context)
    markdown = _environment(autoescape=False).get_template("report.md.j2").render(**context)
    return RenderedReport(html=page, markdown=markdown)
