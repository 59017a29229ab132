"""Typed config: YAML + flags, validation messages that name the option."""

from __future__ import annotations

import dataclasses

import pytest

from clustering.config import ConfigError, IngestConfig, build_parser, parse_args

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
