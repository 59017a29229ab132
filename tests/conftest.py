"""Shared fixtures: a tiny random-weight CLIP and a local 2-CPU Ray runtime. Stage-specific fixtures live in the
plugin modules below, each owned by the stage it serves."""

from __future__ import annotations

import os

import pytest

pytest_plugins = ["tests.fixtures_images", "tests.fixtures_analysis", "tests.fixtures_browser"]

os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory) -> str:
    """A random-weight CLIP saved to disk, loaded by the same from_pretrained path as the real model."""
    from clustering.devtools.tiny_model import build_tiny_clip

    return str(build_tiny_clip(tmp_path_factory.mktemp("tiny-clip")))


@pytest.fixture(scope="session")
def ray_local():
    """One local Ray runtime with 2 CPUs for the whole session (like Ray's ray_start_2_cpus_shared)."""
    import ray

    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()
