"""Options of the Analyze job: one frozen dataclass, loaded from YAML and overridden by command-line flags.

Every field is declared with :func:`clustering.config.option`, so ``--help``, the YAML keys and the report's parameter
table never drift apart. :meth:`AnalyzeConfig.__post_init__` validates up front and raises
:class:`~clustering.config.ConfigError` with a message that names the option and the rule.
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

from clustering.analysis import defaults as d
from clustering.analysis.gpu import BACKENDS
from clustering.analysis.gpu import detect as detect_backend
from clustering.analysis.grid import parse_grid
from clustering.config import ConfigError, option, parse_args

__all__ = ["AnalyzeConfig", "load_config"]


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def _normalise_grid(spec: str | None) -> str | None:
    """Check a ``--min-cluster-sizes`` spec with the sweep's own parser; None or "auto" keeps the default grid.

    YAML lists arrive stringified by the config machinery ("[5, 10, 20]"), so brackets and spaces are tolerated.
    """
    if spec is None:
        return None
    text = str(spec).strip().strip("[]()").replace(" ", "")
    if text.lower() in ("", "auto", "default", "none"):
        return None
    parse_grid(text, 0, option=_flag("min_cluster_sizes"), minimum=2)
    return text


@dataclasses.dataclass(frozen=True)
class AnalyzeConfig:
    """Everything `jobs/analyze.py` needs: input, output, reduction, sweep, selection and report options."""

    input: str = option("", "embedding shards: a folder or URI (s3://, gs://, ...) holding part-*.parquet")
    output: str = option("", "output folder or URI for the analysis (see docs/analysis-outputs.md)")
    overwrite: bool = option(False, "replace the analysis files of an existing, non-empty output folder")
    # Reduction
    cluster_dims: int = option(
        d.DEFAULT_CLUSTER_DIMS, "dimensions of the UMAP embedding that HDBSCAN clusters (5-15 keeps noise apart)"
    )
    map_method: str = option(
        "umap",
        "2-D map for plots and the explorer: umap (shares the kNN graph) or tsne",
        choices=("umap", "tsne"),
        flag="--map",
    )
    seed: int = option(42, "random seed of every random step (UMAP, t-SNE, silhouette samples)")
    n_neighbors: int = option(15, "UMAP n_neighbors: size of the local neighbourhood (kNN graph, computed once)")
    min_dist: float = option(0.0, "UMAP min_dist of the clustering embedding (0 packs clusters densely)")
    map_min_dist: float = option(0.1, "UMAP min_dist of the 2-D map (larger spreads points for reading)")
    n_epochs: int | None = option(None, "UMAP optimisation epochs; empty = UMAP's default for the data size")
    threads: int = option(
        0, "CPU threads for the kNN graph, BLAS and the layouts (0 = every core); same seed and threads, same result"
    )
    parallel_layout: str = option(
        "auto",
        "UMAP's optimisation on every thread: faster on many cores, not reproducible run to run; auto = above "
        f"{d.PARALLEL_LAYOUT_MIN_POINTS:,} points with 3+ threads (otherwise the two layouts run side by side, "
        "single-threaded and seeded)",
        choices=("auto", "on", "off"),
    )
    backend: str = option(
        "auto",
        "where kNN, UMAP and HDBSCAN trees run: gpu (cuML), cpu, or auto (the GPU when cuML and CUDA are there)",
        choices=BACKENDS,
    )
    # Sweep and selection
    min_cluster_sizes: str | None = option(
        None, "HDBSCAN min_cluster_size grid: list 5,10,20 or range start:stop:step; empty = scaled to the data size"
    )
    min_samples: tuple[int, ...] = option((5,), "HDBSCAN min_samples values (comma-separated); one tree per value")
    cluster_selection: tuple[str, ...] = option(
        d.SELECTIONS,
        "HDBSCAN cluster_selection_method values swept on each tree (comma-separated): eom (excess of mass) and "
        "leaf (the condensed tree's leaves, which stay fine-grained when one far group makes excess of mass take "
        "whole halves of the collection); eom alone is the notebook's behaviour",
    )
    max_noise: float = option(
        d.DEFAULT_MAX_NOISE, "selection rule: settings labelling more than this fraction as noise lose"
    )
    select_by: str = option(
        d.DEFAULT_SCORE,
        "selection score to maximise; modularity_filled (clusters that match the original kNN graph once HDBSCAN's "
        "noise has taken its neighbours' clusters) was measured best",
        choices=d.SCORES,
    )
    resolution: float = option(
        d.RESOLUTION,
        "granularity of the choice: the resolution of modularity_filled; above the default it leans to more, smaller "
        "clusters, below it to fewer, larger ones (the hierarchy's levels follow the chosen setting)",
    )
    noise_z: float = option(
        d.DEFAULT_NOISE_Z,
        "background test: a member whose original-space core distance lies more than this many robust standard "
        "deviations above its cluster's median becomes noise; inf turns the test off",
    )
    diffuse_clusters_as_noise: bool = option(
        True,
        "background test: a cluster whose images are no more alike (mean pairwise cosine similarity) than those of the "
        "whole collection becomes noise; off with --no-diffuse-clusters-as-noise or --noise-z inf",
    )
    original_space_tests: bool = option(
        True,
        "after the choice, merge two adjacent clusters the original embeddings cannot tell apart and split a cluster "
        "whose halves they keep apart (clustering/analysis/cluster/original_space.py); off with "
        "--no-original-space-tests",
    )
    split_alpha: float = option(
        d.ALPHA, "original-space tests: significance level of a split (SigClust null), in (0, 1)"
    )
    split_min_effect: float = option(
        d.MIN_EFFECT,
        "original-space tests: how much closer a half's images must be to their own half than to the other, as a "
        "share of their spread, for the halves to count as apart",
    )
    pack_map: bool = option(
        True,
        "move repost bursts on the 2-D map beside their nearest content, not to its edges, and draw far islands in",
    )
    pin_min_cluster_size: int | None = option(None, "use this min_cluster_size instead of the automatic choice")
    pin_min_samples: int | None = option(None, "use this min_samples instead of the automatic choice")
    silhouette_sample_size: int = option(10_000, "points sampled (seeded) for each silhouette score")
    alternatives: int = option(
        3,
        "runner-up settings saved as extra label columns in assignments.parquet: the next best clusterings that "
        "differ from the chosen one and from each other",
    )
    # Duplicates, outputs
    keep_duplicates: bool = option(False, "cluster every exact duplicate (same sha256) instead of one copy each")
    max_montages: int = option(50, "montages are drawn for this many clusters, largest first")
    montage_images: int = option(25, "thumbnails per cluster montage, highest membership probability first")
    # Posts: what each cluster is about, when, who (docs/post-analysis.md)
    text_column: str | None = option(None, "column holding the post text; empty = detected (text, caption, ...)")
    date_column: str | None = option(None, "column holding the post date; empty = detected (created_at, date, ...)")
    account_column: str | None = option(None, "column holding the posting account; empty = detected (account, ...)")
    keywords: int = option(d.TOP_KEYWORDS, "keywords kept per cluster (class-based TF-IDF over the post texts)")
    label_prompts: str | None = option(
        None, "file of cluster-name labels, one per line, added to the built-in vocabulary of image types"
    )
    replace_label_prompts: bool = option(False, "name clusters from the --label-prompts labels only")
    name_margin: float = option(
        d.NAME_MARGIN, "a zero-shot name is flagged uncertain when it beats the runner-up by less than this probability"
    )
    period: str = option(
        "auto", "timeline period: day, week, or auto (daily up to 92 days of posts, weekly beyond)", choices=d.PERIODS
    )
    repost_similarity: float = option(
        d.MIN_SIMILARITY, "embedding cosine similarity from which two images are repost candidates"
    )
    repost_hash_similarity: float = option(
        d.MIN_HASH_SIMILARITY, "perceptual-hash similarity of the thumbnails that confirms a repost candidate"
    )
    # Lineage and coordinated image sharing (docs/coordination.md)
    coordination_window: float = option(
        d.WINDOW_SECONDS,
        "seconds within which two accounts' posts of the same repost group count as posted together",
    )
    min_repetition: int = option(
        d.MIN_REPETITION,
        "different repost groups two accounts must post together (within --coordination-window) to be linked",
    )
    coordination_rounds: int = option(
        d.NULL_ROUNDS,
        "seeded rounds of the null model that scores each group of linked accounts against chance (0: no scores; "
        "the smallest p-value is 1 / (rounds + 1))",
    )
    coordination_burst_cap: int = option(
        d.MAX_FOLLOWERS,
        "later posts of a repost group one post is paired with at most, so a burst of thousands of posts in one "
        "window stays linear",
    )
    # Following a collection (docs/follow.md)
    update: str | None = option(
        None,
        "an earlier analysis folder to update: its rows keep their clusters and ids, the rows of --input (new shards) "
        "are placed by their nearest neighbours, and those no cluster takes are clustered among themselves as new "
        "clusters; written to --output",
    )
    previous: str | None = option(
        None,
        "an earlier analysis of (part of) the same rows: clusters matched to its clusters by shared rows keep their "
        "ids, and cluster_changes.csv lists splits, merges, births and deaths",
    )
    review: str | None = option(
        None,
        "a person's review.json from the explorer (rename, merge, split, noise), applied through the rows it names",
    )
    explorer: bool = option(True, "build explorer.html at the end of the run")
    explorer_only: bool = option(False, "only rebuild explorer.html from an existing output folder")
    progress: bool = option(True, "show tqdm progress bars")

    def __post_init__(self) -> None:
        if not self.output:
            raise ConfigError("--output is required (a folder or URI for the analysis)")
        if not self.input and not self.explorer_only:
            raise ConfigError("--input is required (a folder or URI holding the embedding shards part-*.parquet)")
        if self.update and self.previous:
            raise ConfigError("--update and --previous exclude each other: an update keeps every earlier id already")
        if self.update and self.keep_duplicates:
            raise ConfigError("--update cannot be combined with --keep-duplicates")
        if self.review is not None and not Path(self.review).is_file():
            raise ConfigError(f"--review: no file {self.review!r}")
        if self.explorer_only and not self.explorer:
            raise ConfigError("--explorer-only cannot be combined with --no-explorer")
        if not 2 <= self.cluster_dims <= 100:
            raise ConfigError(f"--cluster-dims must be in 2..100, got {self.cluster_dims!r}")
        if self.n_neighbors < 2:
            raise ConfigError(f"--n-neighbors must be at least 2, got {self.n_neighbors!r}")
        for name in ("min_dist", "map_min_dist"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ConfigError(f"{_flag(name)} must be in 0..1, got {value!r}")
        if self.n_epochs is not None and self.n_epochs < 1:
            raise ConfigError(f"--n-epochs must be a positive integer (empty: UMAP's default), got {self.n_epochs!r}")
        if self.backend == "gpu":
            detect_backend("gpu")  # one line naming what is missing, before any work
        if self.threads < 0:
            raise ConfigError(f"--threads must be 0 (every core) or a positive number, got {self.threads!r}")
        if not 0 <= self.seed < 2**32:
            raise ConfigError(f"--seed must be in 0..4294967295, got {self.seed!r}")
        object.__setattr__(self, "min_cluster_sizes", _normalise_grid(self.min_cluster_sizes))
        if not self.min_samples or min(self.min_samples) < 1:
            raise ConfigError(f"--min-samples: every value must be an integer >= 1, got {list(self.min_samples)}")
        object.__setattr__(self, "min_samples", tuple(sorted(set(self.min_samples))))
        methods = tuple(dict.fromkeys(m.strip().lower() for m in self.cluster_selection if m.strip()))
        if not methods or any(m not in d.SELECTIONS for m in methods):
            raise ConfigError(f"--cluster-selection: name eom, leaf or both, got {','.join(self.cluster_selection)!r}")
        object.__setattr__(self, "cluster_selection", methods)
        if not 0.0 <= self.max_noise <= 1.0:
            raise ConfigError(f"--max-noise must be a fraction in 0..1, got {self.max_noise!r}")
        if not (math.isfinite(self.resolution) and self.resolution > 0):
            raise ConfigError(f"--resolution must be a positive number, got {self.resolution!r}")
        if not 0 < self.split_alpha < 1:
            raise ConfigError(f"--split-alpha must be between 0 and 1, got {self.split_alpha!r}")
        if not self.split_min_effect >= 0:
            raise ConfigError(f"--split-min-effect must be 0 or more, got {self.split_min_effect!r}")
        if not self.noise_z > 0:
            raise ConfigError(f"--noise-z must be a positive number (inf: no background test), got {self.noise_z!r}")
        if self.pin_min_cluster_size is not None and self.pin_min_cluster_size < 2:
            raise ConfigError(f"--pin-min-cluster-size must be at least 2, got {self.pin_min_cluster_size!r}")
        if self.pin_min_samples is not None and self.pin_min_samples < 1:
            raise ConfigError(f"--pin-min-samples must be at least 1, got {self.pin_min_samples!r}")
        if self.silhouette_sample_size < 10:
            raise ConfigError(f"--silhouette-sample-size must be at least 10, got {self.silhouette_sample_size!r}")
        for name in ("alternatives", "max_montages", "montage_images"):
            if getattr(self, name) < 0:
                raise ConfigError(f"{_flag(name)} must be zero or more, got {getattr(self, name)!r}")
        if self.montage_images > 100:
            raise ConfigError(f"--montage-images must be at most 100, got {self.montage_images!r}")
        self._check_post_options()

    def _check_post_options(self) -> None:
        if self.keywords < 1:
            raise ConfigError(f"--keywords must be at least 1, got {self.keywords!r}")
        if self.label_prompts is not None and not Path(self.label_prompts).is_file():
            raise ConfigError(f"--label-prompts: no file {self.label_prompts!r}")
        if self.replace_label_prompts and self.label_prompts is None:
            raise ConfigError("--replace-label-prompts needs --label-prompts FILE")
        if self.period not in d.PERIODS:
            raise ConfigError(f"--period must be one of {', '.join(d.PERIODS)}, got {self.period!r}")
        for name in ("name_margin", "repost_similarity", "repost_hash_similarity"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ConfigError(f"{_flag(name)} must be in 0..1, got {getattr(self, name)!r}")
        window = self.coordination_window
        if (
            isinstance(window, bool)
            or not isinstance(window, (int, float))
            or not (math.isfinite(window) and window >= 0)
        ):
            raise ConfigError(f"--coordination-window must be a number of seconds, 0 or more, got {window!r}")
        for name, minimum in (("min_repetition", 1), ("coordination_rounds", 0), ("coordination_burst_cap", 1)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
                raise ConfigError(f"{_flag(name)} must be an integer >= {minimum}, got {value!r}")


def load_config(argv: list[str] | None = None) -> AnalyzeConfig:
    """Parse command-line arguments (and ``--config FILE.yaml``) into an :class:`AnalyzeConfig`."""
    return parse_args(
        AnalyzeConfig,
        argv,
        prog="python jobs/analyze.py",
        description="Cluster CLIP embedding shards: UMAP, an HDBSCAN sweep, an explained selection, report, explorer.",
    )
