"""The report's "Since the previous analysis" section: the batches, the new clusters, how clusters changed since the
analysis whose ids were kept, and what a person's review did (``docs/follow.md``)."""

from __future__ import annotations

from clustering.analysis.cluster.hierarchy import CHOSEN_LEVEL
from clustering.analysis.report.sections import ReportSection

CHANGE_EVENTS = {"kept": "kept its id", "renumbered": "renumbered", "born": "new", "split": "split from",
                 "merged": "merged from", "died": "gone"}  # fmt: skip


def follow_sections(run) -> tuple[ReportSection, ...]:
    """Nothing for a first analysis without a review; else one section."""
    history = run.history
    if history is None or (len(history.batches) < 2 and history.review is None):
        return ()
    names = list(run.cluster_columns.get(CHOSEN_LEVEL, {}).get("name", ()))
    paragraphs = [_batch_line(batch) for batch in history.batches[1:]]
    if history.new_clusters:
        shown = ", ".join(f"{c}{f' ({names[c]})' if c < len(names) and names[c] else ''}"
                          for c in sorted(history.new_clusters))  # fmt: skip
        paragraphs.append(f"New in this batch: cluster{'s' if len(history.new_clusters) > 1 else ''} {shown}.")
    if history.review is not None:
        review = history.review
        paragraphs.append(f"A person's review ({review['file']}): {len(review['applied'])} action(s) applied.")
        paragraphs += [f"Action {a['action']}: {a['sentence']}." for a in review["applied"]]
        paragraphs += [
            f"Action {m['action']} ({m['kind']}) no longer applies: {m['reason']}." for m in review["not_applied"]
        ]
    rows = tuple(
        (CHANGE_EVENTS[row["event"]], _cell(row["cluster"]), _cell(row["previous"]), row["shared_rows"],
         _cell(row["previous_size"]), _cell(row["current_size"]), row["note"])
        for row in history.changes
    )  # fmt: skip
    columns = ("change", "cluster", "previous cluster", "shared rows", "previous size", "size", "note") if rows else ()
    return (ReportSection("Since the previous analysis", tuple(paragraphs), None, columns, rows),)


def _batch_line(batch: dict) -> str:
    created = (batch.get("created") or "")[:10]
    kind = {"update": "update", "re-analysis": "re-analysis"}.get(batch.get("kind"), batch.get("kind"))
    when = f", {created}" if created else ""
    return f"Batch {batch['batch']} ({kind}{when}): {batch['rows']:,} new rows from {batch['input']}."


def _cell(value) -> str:
    return "–" if value is None else str(value)
