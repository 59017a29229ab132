"""Ingest then analyse in one command: embed a URL table on Ray, then cluster the shards on this node.

    python jobs/pipeline.py --config my.yaml
    python jobs/pipeline.py --input posts.csv --shards shards/ --output analysis/
    python jobs/pipeline.py --config my.yaml --set embed.batch_size=32 --set analyze.min_cluster_sizes=5,10,20

my.yaml has two sections, each taking the options of its own job (see `jobs/embed.py --help`, `jobs/analyze.py
--help`); the analysis reads the shards the ingest wrote, so `analyze.input` defaults to `embed.output`:

    embed:
      input: posts.csv
      output: s3://my-bucket/run-1/shards
      model: openai/clip-vit-base-patch32
    analyze:
      output: analysis/
      min_cluster_sizes: 10,20,40

Under `ray job submit` the ingest runs on the cluster and the analysis in the driver, on the head node: give the
analysis an output every machine can read (s3://...), or fetch it with `ray rsync-down`. Rerunning resumes the ingest
(finished shards are kept); the analysis refuses to overwrite an existing output unless `analyze.overwrite: true`.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from clustering.cli import run_entrypoint
from clustering.config import ConfigError, IngestConfig, from_mapping, load_yaml

log = logging.getLogger("jobs.pipeline")
SECTIONS = ("embed", "analyze")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="jobs/pipeline.py",
        description=__doc__.split("\n\n")[0],
        epilog="Any other option: --set embed.KEY=VALUE or --set analyze.KEY=VALUE (repeatable), or the YAML file.",
    )
    parser.add_argument("--config", metavar="FILE.yaml", help="YAML with 'embed:' and 'analyze:' sections")
    parser.add_argument("--input", help="URL table to embed (embed.input)")
    parser.add_argument("--shards", help="folder or URI for the embedding shards (embed.output and analyze.input)")
    parser.add_argument("--output", help="folder or URI for the analysis (analyze.output)")
    parser.add_argument("--model", help="CLIP model: hub id or local folder (embed.model)")
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="SECTION.KEY=VALUE",
        help="override one option of one section, e.g. --set embed.rows_per_shard=500",
    )
    return parser


def load_sections(path: str | None) -> dict[str, dict]:
    """The ``embed:`` and ``analyze:`` mappings of the YAML file (empty when there is no file)."""
    data = load_yaml(path) if path else {}
    unknown = [str(k) for k in data if k not in SECTIONS]
    if unknown:
        raise ConfigError(
            f"--config: {path} has top-level keys {unknown}; jobs/pipeline.py expects sections 'embed:' and "
            "'analyze:' (a flat file of options belongs to jobs/embed.py or jobs/analyze.py)"
        )
    sections = {}
    for name in SECTIONS:
        section = data.get(name) or {}
        if not isinstance(section, dict):
            raise ConfigError(f"--config: section '{name}:' of {path} must be a mapping of option: value")
        sections[name] = {str(k).replace("-", "_"): v for k, v in section.items()}
    return sections


def apply_flags(sections: dict[str, dict], args: argparse.Namespace) -> None:
    """Put the command-line flags on top of the YAML sections (flags win)."""
    embed, analyze = sections["embed"], sections["analyze"]
    if args.input is not None:
        embed["input"] = args.input
    if args.shards is not None:
        embed["output"] = analyze["input"] = args.shards
    if args.output is not None:
        analyze["output"] = args.output
    if args.model is not None:
        embed["model"] = args.model
    for item in args.set:
        key, sep, value = item.partition("=")
        section, dot, name = key.partition(".")
        if not sep or not dot or section not in SECTIONS or not name:
            raise ConfigError(f"--set: expected embed.KEY=VALUE or analyze.KEY=VALUE, got {item!r}")
        sections[section][name.replace("-", "_")] = value


def build_configs(argv: list[str] | None):
    """Both job configs, validated before anything runs: a typo in the analysis must not cost a GPU hour first."""
    from clustering.analysis.options import AnalyzeConfig  # lazily: the analysis stack is only needed from here on

    args = build_parser().parse_args(argv)
    sections = load_sections(args.config)
    apply_flags(sections, args)
    embed, analyze = sections["embed"], sections["analyze"]
    shards = embed.get("output")
    if not shards:
        raise ConfigError("--shards is required (or embed.output in the YAML): a folder or URI for the shards")
    if analyze.setdefault("input", shards) != shards:
        raise ConfigError(
            f"analyze.input ({analyze['input']}) differs from embed.output ({shards}): the analysis reads the shards "
            "this run writes; leave analyze.input out (or use --shards for both)"
        )
    source = args.config or "arguments"
    ingest = from_mapping(IngestConfig, embed, source=f"{source} [embed]")
    analysis = from_mapping(AnalyzeConfig, analyze, source=f"{source} [analyze]")
    return ingest, analysis


def main(argv: list[str] | None = None) -> int:
    def job() -> list[str]:
        ingest_config, analyze_config = build_configs(argv)
        from clustering.ingest.job import run_ingest, summary_lines

        ingest = run_ingest(ingest_config)
        for line in summary_lines(ingest):
            print(line, flush=True)
        nodes = ingest.stats.get("cluster", {}).get("nodes", 1)
        if nodes > 1 and "://" not in analyze_config.output:
            log.warning(
                "the analysis writes to %s on this node's disk (the cluster has %d nodes): fetch it with "
                "`ray rsync-down`, or use an s3:// output",
                analyze_config.output,
                nodes,
            )
        from clustering.analysis.run import run_analysis

        return run_analysis(analyze_config).summary_lines()

    return run_entrypoint("pipeline.py", job, on_interrupt="interrupted (rerun the same command to resume the ingest)")


if __name__ == "__main__":
    sys.exit(main())
