"""Assembling ``explorer.html``: the header JSON, the packed arrays, the embedded thumbnails, the script, the template.

The page script is a set of feature files in ``templates/explorer/`` (:data:`SCRIPT_FILES`), concatenated in order
inside one async function scope (the data is inflated with ``DecompressionStream`` before anything else runs); the
Content-Security-Policy pins the concatenated script and the style by their SHA-256 hashes. When thumbnails live in
sidecar chunks the policy adds ``'strict-dynamic'``: only a script the pinned one creates may load, so the page can
add the chunk scripts it needs and nothing else can run.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import json
from importlib import resources
from typing import Any

import jinja2

from clustering.analysis.explorer.encode import numeric_array, pack_arrays
from clustering.analysis.explorer.payload import Payload
from clustering.analysis.explorer.thumbnails import PlacedThumbnails

__all__ = ["SCRIPT_FILES", "RenderedPage", "page_script", "render_page", "script_json"]

# The page script's feature files, in the order they run: shared helpers and the decoded data first, start-up last.
SCRIPT_FILES = ("core.js", "data.js", "palette.js", "state.js", "levels.js", "map.js", "view.js", "panel.js",
                "selection.js", "clusters.js", "timeline.js", "accounts.js", "together.js", "history.js",
                "review.js", "reviewui.js", "input.js", "main.js")  # fmt: skip

_JSON_ESCAPES = {ord("<"): "\\u003c", ord(">"): "\\u003e", ord("&"): "\\u0026", 0x2028: "\\u2028", 0x2029: "\\u2029"}


def script_json(value: Any) -> str:
    """JSON for a ``<script type="application/json">`` block: ``<``, ``>``, ``&``, U+2028/2029 escaped.

    With those escaped the text can never contain ``</script`` or ``<!--``, so data cannot end the block.
    """
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    return text.translate(_JSON_ESCAPES)


def _template_text(name: str) -> str:
    return (
        resources.files("clustering.analysis.explorer")
        .joinpath("templates", *name.split("/"))
        .read_text(encoding="utf-8")
    )


def page_script() -> str:
    """The page script: the feature files in :data:`SCRIPT_FILES` order, inside one strict-mode async function.

    One scope: the files share constants and state, and nothing leaks into ``window`` but the read-only
    ``window.explorer`` (``main.js``) and the chunk callback ``window.clipclusterThumbs`` (``data.js``). A failure
    to start (a browser without ``DecompressionStream``) is shown on the page in one line.
    """
    parts = [f"// ---- {name}\n{_template_text('explorer/' + name)}" for name in SCRIPT_FILES]
    return (
        "(async function () {\n'use strict';\n\n"
        + "\n".join(parts)
        + "})().catch((err) => {\n"
        + "  const box = document.getElementById('fatal');\n"
        + "  box.textContent = `This page could not start: ${err && err.message ? err.message : err}`;\n"
        + "  box.hidden = false;\n"
        + "  console.error(err);\n"
        + "});\n"
    )


@dataclasses.dataclass(frozen=True)
class RenderedPage:
    """The page's HTML and the size of its packed per-point data (base64 characters, thumbnails not included)."""

    html: str
    data_bytes: int


def render_page(payload: Payload, thumbs: PlacedThumbnails, *, title: str, sidecar_base: str) -> RenderedPage:
    """The whole page: the payload's header and arrays plus where each thumbnail is, around the script and style.

    Parameters
    ----------
    payload : Payload
    thumbs : PlacedThumbnails
    title : str
        Shown in ``<title>`` (HTML-escaped) and in the header (as text).
    sidecar_base : str
        Relative URL of the sidecar folder, ending in ``/`` (empty when the page has none).
    """
    arrays = dict(payload.arrays)
    arrays["thumb"] = numeric_array(thumbs.point_image)
    arrays["thumb_len"] = numeric_array(thumbs.lengths)
    directory, packed = pack_arrays(arrays)
    header = {
        **payload.header,
        "title": title,
        "arrays": directory,
        "thumbs": {
            "point": "thumb",
            "lengths": "thumb_len",
            "n_images": len(thumbs.lengths),
            "build": thumbs.build,
            "base": sidecar_base,
            "chunks": thumbs.chunks,
        },
        "notice": thumbs.notice,
    }
    # The JS and CSS are static files, inserted verbatim (not parsed as Jinja, so `{{` in code is harmless).
    js = page_script()
    css = _template_text("explorer/explorer.css")
    if "</script" in js.lower() or "</style" in css.lower():
        raise RuntimeError("explorer templates must not contain </script or </style")
    env = jinja2.Environment(
        loader=jinja2.FunctionLoader(_template_text),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
    )
    markup = jinja2.utils.markupsafe.Markup
    html = env.get_template("explorer.html.j2").render(
        title=title,
        script=markup(js),
        style=markup(css),
        script_src=markup(f"'{_csp_hash(js)}'" + (" 'strict-dynamic'" if thumbs.n_sidecar_files else "")),
        style_hash=_csp_hash(css),
        data_json=markup(script_json(header)),
        data_bin=markup(packed),  # base64: no character of it can end the block
        thumbs_bin=markup(base64.b64encode(thumbs.embedded).decode("ascii")),
    )
    return RenderedPage(html=html, data_bytes=len(packed))


def _csp_hash(text: str) -> str:
    return "sha256-" + base64.b64encode(hashlib.sha256(text.encode()).digest()).decode()
