"""``explorer.html``: one self-contained, offline, interactive map of the analysed images.

Computing the page data is kept apart from rendering it (datamapplot's split). An :class:`Explorer` holds the payload
(:mod:`.explorer_payload`: a small JSON header plus packed typed arrays) and where its thumbnails come from;
:meth:`Explorer.from_result` builds it from a run still in memory, :meth:`Explorer.from_output_dir` from a finished
output folder (``--explorer-only``, notebooks). :meth:`Explorer.save` streams the thumbnails once, embeds the first
ones the page needs up to a byte budget, packs the rest into a few sidecar chunk files (:mod:`.explorer_thumbs`) and
renders the page (:mod:`.explorer_page`).

Security model: every value from the data (ids, URLs, texts, names, keywords, accounts, column names, the title)
reaches the page only inside a ``<script type="application/json">`` block whose JSON has ``<``, ``>``, ``&``, U+2028
and U+2029 escaped, or as base64 inside a non-executed block, so nothing in the data can close a block; the page
script inserts data with ``textContent`` and attribute setters only, and a Content-Security-Policy pins the one
script that may run by its hash.
"""

from __future__ import annotations

import functools
import html
import posixpath
import urllib.parse
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from clustering import io as cio
from clustering import schema
from clustering.analysis.explorer.page import render_page
from clustering.analysis.explorer.payload import Payload, page_payload
from clustering.analysis.explorer.thumbnails import ChunkSink, ThumbnailSource, place_thumbnails
from clustering.analysis.output_folder import OutputFolder, absolute
from clustering.analysis.run_data import AnalysisRun
from clustering.analysis.shards import iter_thumbnails

__all__ = ["Explorer", "ExplorerResult", "build_explorer", "default_title"]

DEFAULT_EMBED_BUDGET = 25 * 2**20


@dataclass(frozen=True)
class ExplorerResult:
    """What :meth:`Explorer.save` wrote.

    Attributes
    ----------
    path : str
        The page (``explorer.html``).
    n_points : int
        Points on the map (rows of ``assignments.parquet``).
    n_embedded_thumbnails : int
        Distinct thumbnails embedded in the page (identical images are stored once).
    n_sidecar_thumbnails : int
        Distinct thumbnails packed into sidecar chunk files (``explorer_files/thumbs-KKKKK.js``).
    bytes : int
        Size of the page itself; the sidecar folder is counted in ``sidecar_bytes``.
    sidecar_bytes : int
        Total size of the sidecar files (0 when everything fits in the page).
    n_points_with_thumbnail : int
        Points whose image can be shown.
    notice : str or None
        The one line the page shows when thumbnails are missing (no shards, no thumbnail column), else None.
    n_sidecar_files : int
        Chunk files in the sidecar folder (0 when everything fits in the page).
    data_bytes : int
        Bytes of the page's per-point data (compressed, base64), without thumbnails.
    """

    path: str
    n_points: int
    n_embedded_thumbnails: int
    n_sidecar_thumbnails: int
    bytes: int
    sidecar_bytes: int = 0
    n_points_with_thumbnail: int = 0
    notice: str | None = None
    n_sidecar_files: int = 0
    data_bytes: int = 0


def default_title(folder: str) -> str:
    """``"Image map · <folder name>"``."""
    root = folder.rstrip("/")
    return f"Image map · {posixpath.basename(root) or folder}"


def build_explorer(
    output_dir: str | Path,
    *,
    shards: str | None = None,
    embed_budget_bytes: int = DEFAULT_EMBED_BUDGET,
    title: str | None = None,
) -> ExplorerResult:
    """Write ``explorer.html`` (and ``explorer_files/`` if needed) into a finished analysis output folder.

    Parameters
    ----------
    output_dir : str or Path
        The analysis output folder (local path or URI) holding ``assignments.parquet`` and ``metrics.json``.
    shards : str, optional
        Embedding shards to take thumbnails from, joined on ``id``. Default: ``metrics.json["input"]``. When they
        cannot be found or lack a ``thumbnail`` column the explorer works without images and says so in one line.
    embed_budget_bytes : int, default 25 MiB
        Bytes of base64 thumbnails the page may embed; the rest are packed into chunk files in ``explorer_files/``
        next to the page and loaded when needed, so the page and that folder travel together.
    title : str, optional
        Page title. Default: ``"Image map · <folder name>"``.

    Returns
    -------
    ExplorerResult
    """
    explorer = Explorer.from_output_dir(output_dir, shards=shards, title=title)
    out = OutputFolder(str(output_dir))
    return explorer.save(out.path(schema.EXPLORER_HTML), embed_budget_bytes=embed_budget_bytes, filesystem=out.fs)


class Explorer:
    """The explorer's data, computed once, rendered by :meth:`save`, :meth:`to_html` or in a notebook.

    Build it with :meth:`from_result` or :meth:`from_output_dir`. ``thumbnails`` yields ``(id, thumbnail)`` pairs
    afresh on every call (None: no images, and ``notice`` says why).
    """

    def __init__(self, payload: Payload, thumbnails: ThumbnailSource | None, notice: str | None, *, title: str) -> None:
        self.payload = payload
        self.thumbnails = thumbnails
        self.notice = notice
        self.title = _checked_title(title)

    @property
    def n_points(self) -> int:
        return self.payload.n

    @classmethod
    def from_result(
        cls,
        run: AnalysisRun,
        assignments: pa.Table,
        metrics: dict,
        *,
        title: str,
        thumbnails: ThumbnailSource | None = None,
    ) -> Explorer:
        """The explorer of a run still in memory: nothing is read back from the output folder.

        Parameters
        ----------
        run : AnalysisRun
        assignments : pyarrow.Table
            The run's assignments table (:func:`documents.assignments_table`), as written to ``assignments.parquet``.
        metrics : dict
            The run's ``metrics.json`` document (:func:`documents.metrics_document`).
        title : str
            Page title.
        thumbnails : callable, optional
            Where the thumbnails come from; default: a pass over the run's shards.
        """
        payload = page_payload(assignments, schema.plain(metrics), post=run.post)  # as metrics.json holds it
        if not run.data.has_thumbnails:
            return cls(payload, None, _no_thumbnail_column(run.input_uri), title=title)
        source = thumbnails or functools.partial(iter_thumbnails, run.input_uri)
        return cls(payload, source, None, title=title)

    @classmethod
    def from_output_dir(
        cls, output_dir: str | Path, *, shards: str | None = None, title: str | None = None
    ) -> Explorer:
        """Read an analysis output folder (see ``docs/analysis-outputs.md``) into an :class:`Explorer`.

        Parameters
        ----------
        output_dir : str or Path
            Folder or URI holding ``assignments.parquet`` (required) and ``metrics.json`` (optional here).
        shards : str, optional
            Where the thumbnails are; default ``metrics.json["input"]``.
        title : str, optional
            Page title; default ``"Image map · <folder name>"``.
        """
        title = _checked_title(title) if title is not None else None
        out = OutputFolder(str(output_dir))
        if not out.exists(schema.ASSIGNMENTS):
            raise FileNotFoundError(f"output_dir: no {schema.ASSIGNMENTS} in {output_dir}")
        metrics = out.read_json(schema.METRICS_JSON)
        payload = page_payload(out.read_parquet(schema.ASSIGNMENTS), metrics)
        source, notice = _locate_thumbnails(shards if shards is not None else metrics.get("input"), out)
        return cls(payload, source, notice, title=title or default_title(out.root))

    def save(
        self,
        path: str | Path,
        *,
        embed_budget_bytes: int = DEFAULT_EMBED_BUDGET,
        filesystem: pafs.FileSystem | None = None,
    ) -> ExplorerResult:
        """Write the page to ``path`` and, when thumbnails exceed the budget, ``<stem>_files/`` beside it.

        Parameters
        ----------
        path : str or Path
            Where the page goes (local path or URI, or a path on ``filesystem``).
        embed_budget_bytes : int, default 25 MiB
            Base64 bytes of thumbnails embedded in the page; the rest go into sidecar chunk files.
        filesystem : pyarrow.fs.FileSystem, optional
            Filesystem ``path`` lives on; default: resolved from ``path``.
        """
        _check_budget(embed_budget_bytes)
        fs, page = (filesystem, str(path)) if filesystem is not None else cio.resolve(absolute(str(path)))
        parent, name = posixpath.split(page)
        stem = name.rsplit(".", 1)[0] if "." in name else name
        sidecar_dir = posixpath.join(parent, f"{stem}_files")
        if cio.exists(fs, sidecar_dir):  # stale thumbnails of an earlier build would linger and mislead
            fs.delete_dir(sidecar_dir)
        sink = ChunkSink(fs, sidecar_dir)
        thumbs = self._place(embed_budget_bytes, sink)
        rendered = render_page(
            self.payload, thumbs, title=self.title, sidecar_base=urllib.parse.quote(f"{stem}_files") + "/"
        )
        cio.write_bytes_atomic(fs, page, rendered.html.encode())
        return ExplorerResult(
            path=page,
            n_points=self.n_points,
            n_embedded_thumbnails=thumbs.n_embedded,
            n_sidecar_thumbnails=thumbs.n_sidecar,
            bytes=fs.get_file_info(page).size,
            sidecar_bytes=thumbs.sidecar_bytes,
            n_points_with_thumbnail=thumbs.n_points_with_thumbnail,
            notice=thumbs.notice,
            n_sidecar_files=thumbs.n_sidecar_files,
            data_bytes=rendered.data_bytes,
        )

    def to_html(self, *, embed_budget_bytes: int = DEFAULT_EMBED_BUDGET) -> str:
        """The page as one string, with no sidecar: thumbnails beyond the budget are left out (and the page says so)."""
        _check_budget(embed_budget_bytes)
        thumbs = self._place(embed_budget_bytes, None)
        return render_page(self.payload, thumbs, title=self.title, sidecar_base="").html

    def _repr_html_(self) -> str:
        page = self.to_html(embed_budget_bytes=8 * 2**20)  # notebooks choke on much bigger cell outputs
        return (
            '<iframe style="width:100%;height:720px;border:0" sandbox="allow-scripts allow-downloads" '
            f'srcdoc="{html.escape(page, quote=True)}"></iframe>'
        )

    def _place(self, budget: int, sink: ChunkSink | None):
        payload = self.payload
        return place_thumbnails(
            payload.ids, payload.priority, self.thumbnails, budget=budget, sink=sink, notice=self.notice
        )


def _no_thumbnail_column(shards: str) -> str:
    return f"No thumbnails: the shards at {shards} have no thumbnail column; showing points only."


def _locate_thumbnails(shards: str | list[str] | None, out: OutputFolder) -> tuple[ThumbnailSource | None, str | None]:
    """Where a finished folder's thumbnails are, or None and the one-line reason the page will show.

    ``shards`` is one input or, for an updated collection (``metrics.json`` ``input`` of an update), the list of the
    inputs its batches read: the thumbnails come from every one that is found, and the notice names the others.
    """
    if not shards:
        return None, "No thumbnails: metrics.json names no input shards and none were given; showing points only."
    found, reasons = [], []
    for given in [shards] if isinstance(shards, str) else shards:
        uri, reason = _locate_shards(given, out)
        if uri is None:
            reasons.append(reason)
        else:
            found.append(uri)
    if not found:
        return None, f"No thumbnails: {'; '.join(reasons)}; showing points only."
    source = functools.partial(iter_thumbnails, found[0] if isinstance(shards, str) else found)
    return source, (f"Some thumbnails are missing: {'; '.join(reasons)}." if reasons else None)


def _locate_shards(shards: str, out: OutputFolder) -> tuple[str | None, str]:
    """Where the shards of one input are (tried as given, then relative to the output folder), or None and why not
    (a clause for the notice)."""
    candidates = [shards]
    if "://" not in shards and not Path(shards).is_absolute() and isinstance(out.fs, pafs.LocalFileSystem):
        candidates.append(posixpath.join(out.root, shards))  # a run's relative input, seen from the output folder
    for uri in candidates:
        try:
            paths = cio.list_shards(uri)
        except (OSError, pa.ArrowException, ValueError):
            continue
        if paths:
            shard_fs, _ = cio.resolve(uri)
            if not any(schema.THUMBNAIL in pq.read_schema(p, filesystem=shard_fs).names for p in paths):
                return None, f"the shards at {shards} have no thumbnail column"
            return uri, ""
    return None, f"no embedding shards found at {shards}"


def _checked_title(title) -> str:
    if not isinstance(title, str):
        raise TypeError(f"title must be a string or None, got {type(title).__name__}")
    return title


def _check_budget(embed_budget_bytes: int) -> None:
    if isinstance(embed_budget_bytes, bool) or not isinstance(embed_budget_bytes, int) or embed_budget_bytes < 0:
        raise ValueError(f"embed_budget_bytes must be a non-negative integer, got {embed_budget_bytes!r}")
