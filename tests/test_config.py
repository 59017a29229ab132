"""Typed config: YAML + flags, validation messages that name the option."""

from __future__ import annotations

import dataclasses
import importlib.util
import inspect
from pathlib import Path

import pytest
import yaml

from clustering.config import (
    ConfigError,
    DecodeOptions,
    DownloadOptions,
    IngestConfig,
    build_parser,
    parse_args,
)

ROOT = Path(__file__).resolve().parents[1]

ARGS = ["--input", "in.csv", "--output", "out"]


def parse(argv):
    return parse_args(IngestConfig, argv, prog="embed", description="d")


def test_yaml_then_flags_override(tmp_path):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("input: a.csv\noutput: shards\nbatch-size: 8\nallow_private_networks: true\nretries: 1\n")
    config = parse(["--config", str(cfg), "--retries", "5"])
    assert (config.input, config.batch_size, config.allow_private_networks, config.retries) == ("a.csv", 8, True, 5)


def test_bool_flags_have_negations():
    assert parse([*ARGS, "--no-progress"]).progress is False
    assert parse([*ARGS, "--allow-private-networks"]).allow_private_networks is True


@pytest.mark.parametrize(
    ("extra", "needle"),
    [
        (["--batch-size", "0"], "--batch-size must be at least 1"),
        (["--read-timeout", "-1"], "read_timeout must be positive"),
        (["--max-bytes", "ten"], "max_bytes: expected int"),
        (["--embed-actors", "0"], "--embed-actors must be at least 1"),
    ],
)
def test_bad_values_name_the_option(extra, needle):
    with pytest.raises(ConfigError, match=needle):
        parse([*ARGS, *extra])


def test_missing_required_and_unknown_yaml_key(tmp_path):
    with pytest.raises(ConfigError, match="--input is required"):
        parse(["--output", "x"])
    cfg = tmp_path / "c.yaml"
    cfg.write_text("input: a\noutput: b\nbatchsize: 3\n")
    with pytest.raises(ConfigError, match="unknown option 'batchsize'"):
        parse(["--config", str(cfg)])


def test_unreadable_or_invalid_yaml(tmp_path):
    with pytest.raises(ConfigError, match="cannot read"):
        parse(["--config", str(tmp_path / "none.yaml")])
    bad = tmp_path / "bad.yaml"
    bad.write_text("- just\n- a list\n")
    with pytest.raises(ConfigError, match="must hold a mapping"):
        parse(["--config", str(bad)])


def test_help_documents_every_field():
    text = build_parser(IngestConfig, prog="embed", description="d").format_help()
    for field in dataclasses.fields(IngestConfig):
        assert "--" + field.name.replace("_", "-") in text


def test_bad_flags_get_one_line_and_status_2(capsys):
    for argv in ([*ARGS, "--colour", "red"], [*ARGS, "--batch-size"]):
        with pytest.raises(SystemExit) as exit_info:
            parse(argv)
        assert exit_info.value.code == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("embed: error:")


# --- stage options: declared once, in their stage, settable everywhere -------------------------------------------


def _other_value(field: dataclasses.Field):
    """A valid value that differs from the field's default."""
    default = field.default
    if isinstance(default, bool):
        return not default
    if isinstance(default, (int, float)):
        return default + 1
    if isinstance(default, tuple):
        return ("PNG", "GIF")
    return "test-agent/1"


STAGE_FIELDS = [(cls, f) for cls in (DownloadOptions, DecodeOptions) for f in dataclasses.fields(cls)]


@pytest.mark.parametrize(("stage", "field"), STAGE_FIELDS, ids=[f.name for _, f in STAGE_FIELDS])
def test_every_stage_option_is_settable_from_cli_and_yaml(tmp_path, stage, field):
    value = _other_value(field)
    as_text = ",".join(value) if isinstance(value, tuple) else str(value)
    flag = "--" + field.name.replace("_", "-")
    cli = [flag] if value is True else [f"--no-{flag[2:]}"] if value is False else [flag, as_text]
    cfg = tmp_path / "c.yaml"
    cfg.write_text(yaml.safe_dump({"input": "a.csv", "output": "out", field.name.replace("_", "-"): value}))
    for config in (parse([*ARGS, *cli]), parse(["--config", str(cfg)])):
        part = config.download_options() if stage is DownloadOptions else config.decode_options()
        assert type(part) is stage
        assert getattr(part, field.name) == value


def test_stage_options_are_declared_once_in_their_stage():
    own = set(inspect.get_annotations(IngestConfig))
    for stage in (DownloadOptions, DecodeOptions):
        names = {f.name for f in dataclasses.fields(stage)}
        assert not own & names  # the job config re-declares none of them...
        assert names <= {f.name for f in dataclasses.fields(IngestConfig)}  # ...and offers all of them


def test_help_has_a_section_per_stage_with_its_options():
    help_text = build_parser(IngestConfig, prog="embed", description="d").format_help()
    text = help_text[help_text.index("\noptions:") :]  # the sections, not the usage line
    download = text.index("Download stage: how one URL is fetched")
    decode = text.index("Decode stage: safety limits and the stored thumbnail")
    for flag in ("--backoff-base", "--allow-local-files", "--user-agent"):
        assert text.index(flag) > download
    for flag in ("--thumbnail-quality", "--formats", "--max-pixels"):
        assert text.index(flag) > decode
    flat = " ".join(text.split())  # argparse wraps long lines
    assert "(default: JPEG,PNG,GIF,WEBP,BMP,TIFF,MPO)" in flat
    assert "(default: None) (default" not in flat


def test_formats_are_normalised_and_checked():
    assert parse([*ARGS, "--formats", " jpeg, png ,JPEG"]).decode_options().formats == ("JPEG", "PNG")
    with pytest.raises(ConfigError, match="formats: JPG not known to Pillow"):
        parse([*ARGS, "--formats", "JPEG,JPG"])
    with pytest.raises(ConfigError, match="formats: name at least one image format"):
        parse([*ARGS, "--formats", ","])


def test_stage_validation_runs_for_the_job_config():
    with pytest.raises(ConfigError, match=r"thumbnail_quality must be in 1\.\.95, got 0"):
        parse([*ARGS, "--thumbnail-quality", "0"])
    with pytest.raises(ConfigError, match="backoff_base must be zero or more"):
        parse([*ARGS, "--backoff-base", "-1"])


def test_local_files_and_private_networks_are_off_by_default():
    options = parse(ARGS).download_options()
    assert (options.allow_local_files, options.allow_private_networks) == (False, False)


def test_pipeline_entrypoint_takes_stage_options_from_yaml_and_set(tmp_path):
    spec = importlib.util.spec_from_file_location("jobs_pipeline_config", ROOT / "jobs" / "pipeline.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    cfg = tmp_path / "run.yaml"
    cfg.write_text(
        "embed:\n  input: a.csv\n  output: shards\n  backoff_base: 2\n  formats: [png]\nanalyze:\n  output: a\n"
    )
    ingest, _ = module.build_configs(["--config", str(cfg), "--set", "embed.thumbnail_quality=90"])
    assert (ingest.backoff_base, ingest.formats, ingest.thumbnail_quality) == (2.0, ("PNG",), 90)
