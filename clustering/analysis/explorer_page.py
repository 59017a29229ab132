"""Assembling ``explorer.html``: thumbnails as data URIs or sidecar files, the page script, the template.

Thumbnails stream in once, in shard order; distinct images are embedded as data URIs until a byte budget is spent and
written to a sidecar folder after that. The page script is a set of feature files in ``templates/explorer/``
(:data:`SCRIPT_FILES`), concatenated in order inside one function scope; the Content-Security-Policy pins the
concatenated script and the style by their SHA-256 hashes.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import json
import posixpath
from collections.abc import Callable, Iterable
from importlib import resources
from typing import Any

import jinja2
import numpy as np
import pyarrow.fs as pafs

from clustering.analysis.explorer_payload import encode_array

__all__ = ["SCRIPT_FILES", "ThumbnailSource", "Thumbnails", "collect_thumbnails", "page_script", "render_page"]

# A callable that yields (id, thumbnail bytes) pairs afresh on every call: the shards, or a tap shared with montages.
ThumbnailSource = Callable[[], Iterable[tuple[str, bytes]]]

# The page script's feature files, in the order they run: shared data and helpers first, the start-up last.
SCRIPT_FILES = ("core.js", "palette.js", "state.js", "map.js", "view.js", "panel.js", "selection.js", "clusters.js",
                "input.js", "main.js")  # fmt: skip
# Sidecar thumbnails go into buckets of this many files, so no folder holds 50k entries.
SIDECAR_BUCKET = 1000

_JSON_ESCAPES = {ord("<"): "\\u003c", ord(">"): "\\u003e", ord("&"): "\\u0026", 0x2028: "\\u2028", 0x2029: "\\u2029"}
_IMAGE_SIGNATURES = (
    (b"\xff\xd8\xff", "image/jpeg", "jpg"),
    (b"\x89PNG\r\n\x1a\n", "image/png", "png"),
    (b"GIF8", "image/gif", "gif"),
)


# ------------------------------------------------------------------------------------------------------ thumbnails
@dataclasses.dataclass
class Thumbnails:
    """Where each point's image is: ``index[i]`` >= 0 an embedded slot, <= -2 sidecar file ``-2 - index``, -1 none."""

    index: np.ndarray
    embedded: list[str] = dataclasses.field(default_factory=list)
    sidecar_ext: dict[str, str] = dataclasses.field(default_factory=dict)  # only for files that are not .jpg
    n_points_with_thumbnail: int = 0
    notice: str | None = None


class SidecarSink:
    """Writes sidecar thumbnails ``thumbs/BBB/K.ext`` under ``root``, creating folders as it goes."""

    def __init__(self, fs: pafs.FileSystem, root: str) -> None:
        self.fs, self.root = fs, root
        self.count = 0
        self.bytes = 0
        self._made: set[str] = set()

    def write(self, data: bytes, ext: str) -> int:
        k = self.count
        folder = posixpath.join(self.root, "thumbs", f"{k // SIDECAR_BUCKET:03d}")
        if folder not in self._made:
            self.fs.create_dir(folder, recursive=True)
            self._made.add(folder)
        with self.fs.open_output_stream(posixpath.join(folder, f"{k}.{ext}")) as out:
            out.write(data)
        self.count += 1
        self.bytes += len(data)
        return k


def collect_thumbnails(
    ids: list, source: ThumbnailSource | None, *, budget: int, sink: SidecarSink | None, notice: str | None
) -> Thumbnails:
    """Place the thumbnail of every point: embed distinct images until ``budget`` bytes, then sidecar (or drop).

    The first thumbnail of an id wins; identical images (reposts) are stored once. Without a ``sink`` images over the
    budget are left out and the notice says how many.
    """
    thumbs = Thumbnails(index=np.full(len(ids), -1, dtype=np.int32), notice=notice)
    if source is None:
        return thumbs
    rows_of: dict[str, list[int]] = {}
    for i, id_ in enumerate(ids):
        rows_of.setdefault(id_, []).append(i)
    slot_of: dict[bytes, int] = {}  # content digest -> code
    spent, dropped = 0, 0
    for id_, blob in source():
        rows = rows_of.pop(id_, None)
        if rows is None:
            continue
        digest = hashlib.blake2b(blob, digest_size=16).digest()
        code = slot_of.get(digest)
        if code is None:
            mime, ext = _sniff(blob)
            uri = f"data:{mime};base64,{base64.b64encode(blob).decode()}"
            if spent + len(uri) <= budget:
                spent += len(uri)
                code = len(thumbs.embedded)
                thumbs.embedded.append(uri)
            elif sink is not None:
                k = sink.write(blob, ext)
                if ext != "jpg":
                    thumbs.sidecar_ext[str(k)] = ext
                code = -2 - k
            else:
                dropped += len(rows)
                continue
            slot_of[digest] = code
        thumbs.index[rows] = code
    thumbs.n_points_with_thumbnail = int((thumbs.index != -1).sum())
    if dropped:
        thumbs.notice = f"{dropped:,} thumbnails left out: over the embed budget and this page has no sidecar folder."
    return thumbs


def _sniff(blob: bytes) -> tuple[str, str]:
    for signature, mime, ext in _IMAGE_SIGNATURES:
        if blob.startswith(signature):
            return mime, ext
    if blob[:4] == b"RIFF" and blob[8:12] == b"WEBP":
        return "image/webp", "webp"
    return "image/jpeg", "jpg"  # the shard contract says JPEG; browsers sniff the bytes anyway


# ------------------------------------------------------------------------------------------------------- rendering
def script_json(value: Any) -> str:
    """JSON for a ``<script type="application/json">`` block: ``<``, ``>``, ``&``, U+2028/2029 escaped.

    With those escaped the text can never contain ``</script`` or ``<!--``, so data cannot end the block.
    """
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    return text.translate(_JSON_ESCAPES)


def _template_text(name: str) -> str:
    return resources.files("clustering.analysis").joinpath("templates", *name.split("/")).read_text(encoding="utf-8")


def page_script() -> str:
    """The page script: the feature files in :data:`SCRIPT_FILES` order, inside one strict-mode function scope.

    One scope, as the single file had: the files share constants and state, and nothing leaks into ``window`` but
    the read-only ``window.explorer`` that ``main.js`` defines.
    """
    parts = [f"// ---- {name}\n{_template_text('explorer/' + name)}" for name in SCRIPT_FILES]
    return "(function () {\n'use strict';\n\n" + "\n".join(parts) + "})();\n"


def render_page(payload: dict, thumbnails: Thumbnails, *, sidecar_base: str) -> str:
    """The whole page: ``payload`` plus where each thumbnail is, in the template around the script and style."""
    payload = dict(payload)
    payload["thumbs"] = {
        "index": encode_array(thumbnails.index),
        "n_embedded": len(thumbnails.embedded),
        "sidecar_base": sidecar_base,
        "sidecar_bucket": SIDECAR_BUCKET,
        "sidecar_ext": thumbnails.sidecar_ext,
    }
    payload["notice"] = thumbnails.notice
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
    return env.get_template("explorer.html.j2").render(
        title=payload["title"],
        script=markup(js),
        style=markup(css),
        script_hash=_csp_hash(js),
        style_hash=_csp_hash(css),
        data_json=markup(script_json(payload)),
        thumbs_json=markup(script_json(thumbnails.embedded)),
    )


def _csp_hash(text: str) -> str:
    return "sha256-" + base64.b64encode(hashlib.sha256(text.encode()).digest()).decode()
