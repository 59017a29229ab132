"""What the report shows of the hierarchy and the posts: the tree of levels, the post columns, the "clusters over
time" figure, the most active accounts, the most reposted images and the accounts that posted images together.

Each part is shaped from what the run computed (nothing is computed here) and handed to the templates as plain values
(:class:`TreeNode`, :class:`ReportSection`); the templates escape every text, so names, keywords, account names and
post text taken from the data can never become markup.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence

from clustering import schema

__all__ = ["ReportSection", "TreeNode", "hierarchy_tree", "post_sections", "posts_line"]

LEVEL_SINGULAR = {"themes": "theme", "clusters": "cluster", "subclusters": "subcluster"}
REPOST_GROUPS_IN_REPORT = 20
TOGETHER_GROUPS_IN_REPORT = 20
TOGETHER_NAMES = 12  # account names shown per group; coordination.csv has them all
OVER_TIME_CLUSTERS = 15  # rows of the "clusters over time" heatmap (PostAnalysis.over_time's default)


@dataclasses.dataclass(frozen=True)
class ReportSection:
    """An optional section a feature adds to the report (a timeline, top accounts, the most reposted images, ...).

    Every part is optional: ``paragraphs`` of text, a ``figure`` (path relative to the report) and a table of
    ``columns`` x ``rows``. Text and cells are data: escaped like everything else.
    """

    title: str
    paragraphs: tuple[str, ...] = ()
    figure: str | None = None
    columns: tuple[str, ...] = ()
    rows: tuple[tuple, ...] = ()


@dataclasses.dataclass(frozen=True)
class TreeNode:
    """One cluster of one hierarchy level, with its children one level finer.

    ``kind`` is the level's singular ("theme", "cluster", "subcluster"); ``anchor`` links a chosen cluster to its
    montage in the report (None when none was drawn); ``same`` lists the finer clusters holding exactly these rows
    (an only child of the same size), shown on the same line instead of one level down.
    """

    kind: str
    cluster: int
    name: str | None
    size: int
    anchor: str | None = None
    children: tuple[TreeNode, ...] = ()
    same: tuple[TreeNode, ...] = ()


def hierarchy_tree(clusters: Sequence[dict], *, anchors: Mapping[int, str]) -> tuple[TreeNode, ...]:
    """The ``clusters.csv`` rows of every level as a tree: the top level's clusters, each with its children.

    Parameters
    ----------
    clusters : sequence of dict
        :func:`clustering.analysis.documents.cluster_table` rows (``level``, ``cluster``, ``parent``, ``size``,
        ``name``), levels coarse to fine, each in label order (largest first).
    anchors : mapping of int to str
        Chosen cluster -> link target of its montage.

    Returns
    -------
    tuple of TreeNode
        Empty when there is a single level (the cluster table says it all). A cluster's only child holding all of
        its rows is named on its line (``same``), its own children becoming the cluster's.
    """
    levels = list(dict.fromkeys(row["level"] for row in clusters))
    if len(levels) < 2:
        return ()
    children: dict[int, list[TreeNode]] = {}
    for level in reversed(levels):
        kind = LEVEL_SINGULAR.get(level, level)
        above: dict[int, list[TreeNode]] = {}
        for row in (r for r in clusters if r["level"] == level):
            inside, same = tuple(children.get(row["cluster"], ())), ()
            if len(inside) == 1 and inside[0].size == row["size"]:
                only = inside[0]
                inside, same = only.children, (dataclasses.replace(only, children=(), same=()), *only.same)
            node = TreeNode(
                kind=kind,
                cluster=row["cluster"],
                name=row.get("name"),
                size=row["size"],
                anchor=anchors.get(row["cluster"]) if level == "clusters" else None,
                children=inside,
                same=same,
            )
            above.setdefault(row["parent"], []).append(node)
        children = above
    return tuple(children.get(-1, ()))


def posts_line(summary: Mapping) -> str:
    """One line naming the post columns used, the missing ones and the dates that could not be read.

    ``summary`` is ``PostAnalysis.posts_summary()`` (``metrics.json["posts"]``).
    """
    parts = []
    for kind in ("text", "date", "account"):
        column = summary.get(kind)
        if column is None:
            parts.append(f"{kind}: none found (name one with --{kind}-column)")
            continue
        part = f"{kind}: {column}"
        if kind == "date" and (summary.get("dates_unparseable") or summary.get("dates_missing")):
            part += f" ({summary['dates_unparseable']:,} unparseable, {summary['dates_missing']:,} missing)"
        parts.append(part)
    return "Post columns: " + "; ".join(parts) + "."


def post_sections(run, *, reposts_montage: str | None) -> tuple[ReportSection, ...]:
    """The "clusters over time", "most active accounts", "most reposted images" and "posted together" sections of
    ``run``.

    Parameters
    ----------
    run : AnalysisRun
        With its post analysis (``run.posts``); no section without it.
    reposts_montage : str or None
        Path of the montage of the most reposted images, relative to the report.
    """
    found = run.posts
    if found is None:
        return ()
    names = dict(enumerate(run.cluster_columns.get("clusters", {}).get("name", ())))
    return (
        _over_time(found),
        _accounts(run, names),
        _reposts(found, names, reposts_montage),
        _together(found, names),
    )


def _cluster_label(cluster, names: Mapping[int, str | None]) -> str:
    if cluster is None or cluster < 0:
        return "noise"
    name = names.get(int(cluster))
    return f"{cluster}: {name}" if name else str(cluster)


def _instant(value: str | None) -> str | None:
    """``2025-09-10T08:00:00Z`` as ``2025-09-10 08:00`` (UTC, as the column headers say)."""
    return value.replace("T", " ")[:16] if value else None


def _over_time(found) -> ReportSection:
    title = "Clusters over time"
    if found.period is None:
        return ReportSection(title, paragraphs=("No dated posts: there is no timeline to draw.",))
    text = (
        f"Posts per {found.period} (UTC) of the {OVER_TIME_CLUSTERS} clusters with the most dated posts, largest on "
        "top; the last row sums every other cluster. First and last post and the peak period of every cluster are "
        "in the cluster table and clusters.csv."
    )
    return ReportSection(title, paragraphs=(text,), figure=schema.OVER_TIME_PNG)


def _accounts(run, names: Mapping[int, str | None]) -> ReportSection:
    title = "Most active accounts"
    active = run.posts.active_accounts
    if active is None:
        return ReportSection(title, paragraphs=("No account column: who posted what is unknown.",))
    rows = tuple(
        (name, int(posts), f"{share:.1%}", int(clusters), _cluster_label(int(busiest), names))
        for name, posts, share, clusters, busiest in zip(
            active.names, active.posts, active.share, active.clusters, active.busiest, strict=True
        )
    )
    text = (
        "The accounts with the most posts, the share of all posts with a known account they made, how many clusters "
        "their posts fall in and the cluster holding most of them."
    )
    return ReportSection(
        title,
        paragraphs=(text,),
        columns=("account", "posts", "share of posts", "clusters", "busiest cluster"),
        rows=rows,
    )


def _reposts(found, names: Mapping[int, str | None], montage: str | None) -> ReportSection:
    title = "Most reposted images"
    summary = found.reposts_summary()
    if not summary["groups"]:
        return ReportSection(title, paragraphs=("No image was posted more than once, exactly or nearly.",))
    shown = found.repost_table.slice(0, REPOST_GROUPS_IN_REPORT).to_pylist()
    text = (
        f"{summary['groups']:,} images were posted more than once (exact copies and near-duplicates: re-encoded, "
        f"resized, lightly cropped), {summary['rows_in_groups']:,} posts in all. The {len(shown)} largest groups, "
        "each shown by its first post, in group order; every group is in repost_groups.csv."
    )
    rows = tuple(
        (
            g["repost_group"],
            g["posts"],
            g["images"],
            g["accounts"],
            g["first_poster"],
            _instant(g["first_seen"]),
            _instant(g["last_seen"]),
            _cluster_label(g["cluster"], names),
        )
        for g in shown
    )
    columns = ("group", "posts", "distinct files", "accounts", "first poster", "first seen (UTC)", "last seen (UTC)",
               "cluster")  # fmt: skip
    return ReportSection(title, paragraphs=(text,), figure=montage, columns=columns, rows=rows)


def _together(found, names: Mapping[int, str | None]) -> ReportSection:
    """The groups of accounts that posted the same images within the window, repeatedly, ranked by how unlikely by
    chance. Timing only: the wording says what the data shows ("posted together within N seconds, M times"), never
    why."""
    title = "Posted together"
    together = found.coordination
    if together is None:
        reason = found.coordination_summary()["reason"]
        return ReportSection(title, paragraphs=(f"Not analysed: {reason}.",))
    options = together.options
    window, repeat = f"{options.window:g} seconds", options.min_repetition
    if not together.n_groups:
        text = (
            f"No two accounts posted the same image within {window} of each other in {repeat} or more different "
            "repost groups."
        )
        return ReportSection(title, paragraphs=(text,))
    accounts = found.posts.accounts
    shown = range(min(together.n_groups, TOGETHER_GROUPS_IN_REPORT))
    intro = (
        f"Accounts that posted the same images (a repost group: exact or near copies) within {window} of each other, "
        f"in {repeat} or more different repost groups; accounts linked through such pairs form one group. "
        + (f"The {len(shown)} groups least likely by chance come first. " if len(shown) > 1 else "")
        + "Every group is in coordination.csv and every pair of accounts in coordinated_pairs.csv."
    )
    chance = (
        f"Expected by chance: the pair meetings the null model gives on average over {options.null_rounds} seeded "
        "rounds, where each post takes the time of another post of the same image by other accounts, or a time "
        "shuffled among its own account's posts; the p-value is the share of rounds with as many meetings or more. "
        "The p-values rank the groups; they are not corrected for the many pairs of accounts screened."
        if options.null_rounds
        else "The null model was turned off (--coordination-rounds 0): no group is compared with chance."
    )
    caution = "The data shows when accounts posted, not why: it cannot tell intent."
    rows = tuple(_together_row(together, g, accounts, names) for g in shown)
    columns = ("group", "accounts", "posted together", "pair meetings", "expected by chance", "p-value",
               "median gap (s)", "clusters")  # fmt: skip
    return ReportSection(title, paragraphs=(intro, chance, caution), columns=columns, rows=rows)


def _together_row(together, group: int, accounts, names: Mapping[int, str | None]) -> tuple:
    members = [str(accounts.names[int(c)]) for c in together.accounts[group]] if accounts is not None else []
    listed = ", ".join(members[:TOGETHER_NAMES])
    if len(members) > TOGETHER_NAMES:
        listed += f" and {len(members) - TOGETHER_NAMES} more"
    times = int(together.together[group])
    expected, p_value = float(together.expected[group]), float(together.p_value[group])
    clusters = "; ".join(f"{_cluster_label(c, names)} ({n})" for c, n in together.clusters[group][:5])
    return (
        group,
        f"{len(members)}: {listed}",
        f"within {together.options.window:g} seconds, {times} time{'s' if times != 1 else ''}",
        int(together.meetings[group]),
        f"{expected:.1f}" if expected == expected else "n/a",
        f"{p_value:.3g}" if p_value == p_value else "n/a",
        f"{float(together.median_gap[group]):.0f}",
        clusters or "noise",
    )
