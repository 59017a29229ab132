"""The report's montages: which rows each thumbnail grid shows (:func:`plan_montages`), and the grids drawn from
the thumbnails (:func:`draw_montages`). The explorer's single pass over the thumbnails keeps the planned ones."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence

from clustering.analysis.outcome import ranked_rows, top_outliers
from clustering.analysis.output_folder import OUTLIERS_MONTAGE, REPOSTS_MONTAGE, montage_name
from clustering.analysis.palette import cluster_palette
from clustering.analysis.report import plots
from clustering.analysis.report.sections import (
    REPOST_GROUPS_IN_REPORT,
)
from clustering.analysis.run_data import AnalysisRun


# ------------------------------------------------------------------------------------------------------- montages
@dataclasses.dataclass(frozen=True)
class MontagePlan:
    """Which rows the montages show: the most typical distinct images of the largest clusters, the outliers, and
    the first post of each of the largest repost groups (by id, in group order)."""

    clusters: dict[int, list[int]]
    outliers: list[int]
    reposts: list[str] = dataclasses.field(default_factory=list)

    def ids(self, run: AnalysisRun) -> set[str]:
        """The ids whose thumbnails the montages need."""
        rows = [r for picked in self.clusters.values() for r in picked] + self.outliers
        return {run.ids[r] for r in rows} | set(self.reposts)


@dataclasses.dataclass(frozen=True)
class Montages:
    """Drawn montages: JPEG bytes by path inside the output folder, and what the report says about them."""

    images: dict[str, bytes] = dataclasses.field(default_factory=dict)
    cluster_paths: dict[int, str] = dataclasses.field(default_factory=dict)
    outliers_path: str | None = None
    reposts_path: str | None = None
    note: str | None = None  # shown under the cluster table
    notes: tuple[str, ...] = ()  # for the run's notes


def plan_montages(run: AnalysisRun) -> MontagePlan:
    """``--montage-images`` rows for each of the ``--max-montages`` largest clusters, and as many outliers."""
    config = run.config
    if not run.data.n_rows or not run.data.has_thumbnails or not config.montage_images:
        return MontagePlan(clusters={}, outliers=[])
    shown = min(run.outcome.n_clusters, config.max_montages)
    picks = ranked_rows(run.outcome, limit=config.montage_images, clusters=range(shown))
    groups = run.posts.repost_table.slice(0, REPOST_GROUPS_IN_REPORT) if run.posts is not None else None
    return MontagePlan(
        clusters=picks,
        outliers=top_outliers(run.outcome, config.montage_images),
        reposts=groups.column("first_id").to_pylist() if groups is not None else [],
    )


def draw_montages(run: AnalysisRun, plan: MontagePlan, thumbnails: Mapping[str, bytes]) -> Montages:
    """Draw the planned montages from ``thumbnails`` (id -> JPEG); missing ones become labelled grey tiles."""
    if not run.data.n_rows:
        return Montages()
    if not run.data.has_thumbnails:
        note = "the shards have no thumbnail column: no montages were drawn"
        return Montages(note=note, notes=(note,))
    outcome, ids = run.outcome, run.ids

    palette = cluster_palette(outcome.n_clusters)

    def draw(rows: Sequence[int], caption: str, frame=(255, 255, 255)) -> bytes:
        blobs = [thumbnails.get(ids[r]) for r in rows]
        captions = [
            caption.format(p=outcome.probabilities[r], glosh=outcome.outlier_scores[r])
            + (f" x{outcome.group_size[r]}" if outcome.group_size[r] > 1 else "")
            for r in rows
        ]
        return plots.montage(blobs, captions=captions, frame=frame)

    images = {montage_name(c): draw(rows, "p={p:.2f}", tuple(palette[c])) for c, rows in plan.clusters.items()}
    cluster_paths = {c: montage_name(c) for c in plan.clusters}
    if plan.outliers:
        images[OUTLIERS_MONTAGE] = draw(plan.outliers, "glosh={glosh:.2f}")
    if plan.reposts:
        posts = run.posts.repost_table.column("posts").to_pylist()
        captions = [f"group {g} x{posts[g]}" for g in range(len(plan.reposts))]
        images[REPOSTS_MONTAGE] = plots.montage([thumbnails.get(i) for i in plan.reposts], captions=captions)
    note = None
    if outcome.n_clusters > len(plan.clusters) and run.config.montage_images:
        note = (
            f"montages are drawn for the {len(plan.clusters)} largest of {outcome.n_clusters} clusters "
            "(--max-montages); every cluster is in the table above and in the explorer"
        )
    wanted = plan.ids(run)
    missing = len(wanted - set(thumbnails))
    notes = (f"{missing:,} of the {len(wanted):,} images chosen for montages have no thumbnail in the shards",)
    return Montages(
        images=images,
        cluster_paths=cluster_paths,
        outliers_path=OUTLIERS_MONTAGE if plan.outliers else None,
        reposts_path=REPOSTS_MONTAGE if plan.reposts else None,
        note=note,
        notes=notes if missing else (),
    )
