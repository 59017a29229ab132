"""cluster.yaml and runtime_env.yaml are checked by Ray's own code, the way `ray up` and `ray job submit` read them."""

from __future__ import annotations

import copy
import re
import sys
from pathlib import Path

import jsonschema
import pytest
import ray
import yaml
from ray.autoscaler._private.util import prepare_config, validate_config

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def cluster_config() -> dict:
    return yaml.safe_load((ROOT / "cluster.yaml").read_text())


def ray_up_checks(config: dict) -> dict:
    """What `ray up` does before it talks to the cloud: fill in the provider's defaults, then validate the result
    against ray/autoscaler/ray-schema.json plus the launcher's own cross-field rules (commands._bootstrap_config)."""
    prepared = prepare_config(copy.deepcopy(config))
    validate_config(prepared)
    return prepared


def test_cluster_yaml_passes_rays_launcher_validation(cluster_config):
    prepared = ray_up_checks(cluster_config)
    assert prepared["head_node_type"] == "head"
    assert set(prepared["available_node_types"]) == {"head", "gpu_worker", "cpu_worker"}


@pytest.mark.parametrize(
    ("breakage", "error"),
    [
        (lambda c: c["available_node_types"]["gpu_worker"].update(min_worker=1), jsonschema.ValidationError),
        (lambda c: c["available_node_types"]["head"].update(resources={"CPU": 0.5}), jsonschema.ValidationError),
        (lambda c: c.update(max_wrokers=3), jsonschema.ValidationError),
        (lambda c: c["available_node_types"]["gpu_worker"].pop("node_config"), jsonschema.ValidationError),
        (lambda c: c.update(head_node_type="no-such-type"), ValueError),
        (lambda c: c["available_node_types"]["gpu_worker"].update(min_workers=99), ValueError),
    ],
    ids=["typo-in-node-type", "fractional-resource", "typo-top-level", "no-node-config", "bad-head-type", "min>max"],
)
def test_a_broken_config_is_rejected_so_the_validator_really_runs(cluster_config, breakage, error):
    breakage(cluster_config)
    with pytest.raises(error):
        ray_up_checks(cluster_config)


def test_head_does_no_work_and_gpu_workers_autoscale(cluster_config):
    types = cluster_config["available_node_types"]
    assert types["head"]["resources"] == {"CPU": 0}
    assert "--num-cpus=0" in " ".join(cluster_config["head_start_ray_commands"])
    gpu = types["gpu_worker"]
    assert gpu["node_config"]["InstanceType"].startswith(("g5.", "g6.", "p3.", "p4", "p5"))
    assert gpu["max_workers"] > gpu["min_workers"]
    cpu = types["cpu_worker"]
    assert cpu["min_workers"] == 0 and not cpu["node_config"]["InstanceType"].startswith(("g", "p"))


def test_versions_are_pinned_to_what_this_checkout_runs(cluster_config):
    python = f"py{sys.version_info.major}{sys.version_info.minor}"
    assert cluster_config["docker"]["image"] == f"rayproject/ray:{ray.__version__}-{python}-gpu"
    pyproject = (ROOT / "pyproject.toml").read_text()
    assert re.search(rf'"ray\[[a-z,]+\]=={re.escape(ray.__version__)}"', pyproject)
    assert any(f"'{ray.__version__}'" in c for c in cluster_config["setup_commands"])


def test_project_is_installed_and_file_limits_raised(cluster_config):
    assert "." in cluster_config["file_mounts"].values()
    assert any("pip install" in c and "-e" in c for c in cluster_config["setup_commands"])
    for key in ("head_start_ray_commands", "worker_start_ray_commands"):
        starts = [c for c in cluster_config[key] if "ray start" in c]
        assert starts and all("ulimit -n 65536" in c for c in starts), key
    assert "--ulimit nofile=65536:65536" in cluster_config["docker"]["run_options"]
    assert {".venv", ".git", "demo-output", ".numba_cache"} <= set(cluster_config["rsync_exclude"])


def test_runtime_env_file_is_what_ray_job_submit_accepts_and_never_uploads_the_venv(tmp_path):
    from ray._private.runtime_env.packaging import get_uri_for_directory
    from ray.dashboard.modules.dashboard_sdk import parse_runtime_env_args
    from ray.runtime_env import RuntimeEnv

    env = parse_runtime_env_args(runtime_env=str(ROOT / "runtime_env.yaml"), working_dir=str(ROOT))
    RuntimeEnv(**env)  # Ray's own validation of every field
    assert env["env_vars"]["RAY_USAGE_STATS_ENABLED"] == "0"
    excludes = env["excludes"]
    assert {".venv", ".git", "demo-output", ".numba_cache"} <= set(excludes)

    # The package Ray would upload: build a small tree with everything that must stay home and hash it both ways.
    tree = tmp_path / "checkout"
    (tree / "clustering").mkdir(parents=True)
    (tree / "clustering" / "a.py").write_text("x = 1\n")
    base = get_uri_for_directory(tree, include_gitignore=False, excludes=excludes)
    for junk in (".venv/lib/big.so", "demo-output/shards/part-00000.parquet", ".numba_cache/x.nbi", ".git/objects/a"):
        (tree / junk).parent.mkdir(parents=True, exist_ok=True)
        (tree / junk).write_bytes(b"0" * 1024)
    assert get_uri_for_directory(tree, include_gitignore=False, excludes=excludes) == base
    (tree / "clustering" / "b.py").write_text("y = 2\n")  # while real code changes do change the package
    assert get_uri_for_directory(tree, include_gitignore=False, excludes=excludes) != base


def test_kuberay_rayjob_matches_the_pinned_ray_and_sizes_one_actor_per_gpu():
    docs = list(yaml.safe_load_all((ROOT / "deploy" / "kuberay-rayjob.yaml").read_text()))
    assert len(docs) == 1 and docs[0]["apiVersion"] == "ray.io/v1" and docs[0]["kind"] == "RayJob"
    spec = docs[0]["spec"]
    cluster = spec["rayClusterSpec"]
    assert cluster["rayVersion"] == ray.__version__
    assert cluster["headGroupSpec"]["rayStartParams"]["num-cpus"] == "0"
    entrypoint = spec["entrypoint"].split()
    assert entrypoint[:2] == ["python", "/home/ray/clipcluster/jobs/embed.py"]
    (group,) = cluster["workerGroupSpecs"]
    gpus = group["replicas"] * group["template"]["spec"]["containers"][0]["resources"]["limits"]["nvidia.com/gpu"]
    assert int(entrypoint[entrypoint.index("--embed-actors") + 1]) == gpus
    assert int(entrypoint[entrypoint.index("--min-embed-actors") + 1]) == gpus  # every GPU busy from the start
    env = yaml.safe_load(spec["runtimeEnvYAML"])
    assert env["env_vars"]["RAY_USAGE_STATS_ENABLED"] == "0"
