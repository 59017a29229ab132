"""The distributed parts, proven on one machine.

Unit tests (no cluster): GPUs per embed actor and the shared-output rule. Integration tests (``-m integration``):

1. a real single-machine cluster (``ray start --head``) running ``jobs/embed.py`` through ``ray job submit`` with the
   runtime env of ``runtime_env.yaml``;
2. a three-node cluster (``ray.cluster_utils.Cluster``: a head with no CPUs, two workers declaring two GPUs each) where
   every embed actor holds one logical GPU of its own;
3. the same shape with a worker node killed mid-job: every row still comes out exactly once;
4. a node added while the job runs: its fetch+decode and embed actors process rows (their node ids say so).

Every cluster here lives in its own short temp dir (``--temp-dir`` / ``RAY_TMPDIR``) with its own ports, and is
stopped by the processes this module started (their PIDs, or processes whose command line or environment names that
temp dir): never ``ray stop``, which kills every Ray process on the machine, other people's included.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import logging
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import uuid
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pacsv
import pytest

from clustering import io as cio
from clustering.config import ConfigError, IngestConfig, StageOptions
from clustering.ingest.clip_embedder import ClipEmbedder
from clustering.ingest.dataset import embed_gpus
from clustering.ingest.fetch import FetchDecode
from clustering.ingest.job import check_shared_output

ROOT = Path(__file__).resolve().parents[1]
RAY_CLI = str(Path(sys.executable).with_name("ray"))
RECORD_DIR_ENV = "CLIPCLUSTER_TEST_EMBEDDER_RECORDS"
# The node-kill test holds every embed call once this many shards exist, until the gate file appears (after the kill):
# the kill then lands at the same point of the job on any machine, however fast.
HOLD_AFTER_SHARDS_ENV = "CLIPCLUSTER_TEST_HOLD_AFTER_SHARDS"
GATE_ENV = "CLIPCLUSTER_TEST_GATE"
SLOW_EMBED_ENV = "CLIPCLUSTER_TEST_SLOW_EMBED"
BROKEN_STATUSES = {"decode_error", "not_image"}  # the sample's truncated, HTML-as-JPEG and empty files


# --- unit: pool sizes and the shared-output rule ----------------------------------------------------------------------


def config(**kwargs) -> IngestConfig:
    kwargs.setdefault("output", "/tmp/clipcluster-never-written")
    return IngestConfig(input="urls.csv", **kwargs)


def test_gpus_per_embed_actor_as_asked_or_from_the_cluster(ray_local):
    assert embed_gpus(StageOptions(num_gpus_per_actor=0.5)) == 0.5
    assert embed_gpus(StageOptions()) == 0.0  # the local runtime has no GPU: the embed actors compute on CPU


def test_a_local_output_path_is_refused_on_a_multi_node_cluster(tmp_path):
    local = str(tmp_path / "shards")
    for output in (local, Path(local).as_uri()):
        with pytest.raises(ConfigError, match=r"--output: .* 3 nodes.*--shared-output"):
            check_shared_output(config(output=output), nodes=3)
    check_shared_output(config(output=local, shared_output=True), nodes=3)  # an NFS/Lustre mount every node sees
    check_shared_output(config(output=local), nodes=1)


def test_any_remote_uri_is_accepted_on_a_multi_node_cluster(monkeypatch):
    # Resolving s3:// must not look the bucket's region up on the internet: point it at a closed loopback port.
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    for output in ("s3://bucket/run/shards", "memory://run/shards"):
        check_shared_output(config(output=output), nodes=4)


# --- jobs/pipeline.py: one command for both jobs ----------------------------------------------------------------------


def load_pipeline():
    spec = importlib.util.spec_from_file_location("jobs_pipeline", ROOT / "jobs" / "pipeline.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_pipeline_config_sections_flags_and_defaults(tmp_path):
    pipeline = load_pipeline()
    my = tmp_path / "my.yaml"
    my.write_text(
        "embed:\n  input: posts.csv\n  output: s3://b/shards\n  rows-per-shard: 500\n"
        "analyze:\n  output: results/\n  min_cluster_sizes: 10,20\n"
    )
    ingest, analysis = pipeline.build_configs(["--config", str(my)])
    assert (ingest.input, ingest.output, ingest.rows_per_shard) == ("posts.csv", "s3://b/shards", 500)
    assert (analysis.input, analysis.output) == ("s3://b/shards", "results/")  # the analysis reads what ingest wrote
    argv = ["--config", str(my), "--shards", "other/", "--model", "m/", "--set", "embed.batch_size=8"]
    ingest, analysis = pipeline.build_configs([*argv, "--set", "analyze.seed=7", "--output", "out/"])
    assert (ingest.output, analysis.input, ingest.model, ingest.batch_size) == ("other/", "other/", "m/", 8)
    assert (analysis.seed, analysis.output) == (7, "out/")
    ingest, analysis = pipeline.build_configs(["--input", "a.csv", "--shards", "s/", "--output", "o/"])
    assert (ingest.input, ingest.output, analysis.input, analysis.output) == ("a.csv", "s/", "s/", "o/")


@pytest.mark.parametrize(
    ("yaml_text", "argv", "needle"),
    [
        ("input: a.csv\noutput: s/\n", [], "expects sections 'embed:' and 'analyze:'"),
        ("embed: {input: a.csv, output: s/}\nanalyze: {input: elsewhere/, output: o/}\n", [], "differs from"),
        ("embed: {input: a.csv}\nanalyze: {output: o/}\n", [], "--shards is required"),
        ("embed: {input: a.csv, output: s/, colour: red}\nanalyze: {output: o/}\n", [], "[embed]: unknown option"),
        ("embed: {input: a.csv, output: s/}\n", ["--set", "embed.batch_size"], "--set: expected"),
        ("embed: {input: a.csv, output: s/}\nanalyze: {output: o/}\n", ["--set", "analyze.seed=-1"], "--seed"),
    ],
)
def test_pipeline_bad_config_is_one_clear_error(tmp_path, yaml_text, argv, needle):
    my = tmp_path / "my.yaml"
    my.write_text(yaml_text)
    with pytest.raises(ConfigError, match=re.escape(needle)):
        load_pipeline().build_configs(["--config", str(my), *argv])


@pytest.mark.slow
def test_pipeline_runs_ingest_then_analysis(ray_local, tiny_model_dir, tmp_path, capsys):
    from clustering.devtools.devserver import ImageServer
    from clustering.devtools.sample import make_sample

    sample = make_sample(tmp_path / "sample", n_images=60, seed=11)
    with ImageServer(sample.outdir) as server:
        write_sample_csv(sample.manifest, server.base_url, tmp_path / "urls.csv")
        (tmp_path / "my.yaml").write_text(
            f"embed:\n  model: {tiny_model_dir}\n  id_column: post_id\n  allow_private_networks: true\n"
            "  progress: false\nanalyze:\n  progress: false\n  explorer: false\n"
        )
        argv = ["--config", str(tmp_path / "my.yaml"), "--input", str(tmp_path / "urls.csv")]
        argv += ["--shards", str(tmp_path / "shards"), "--output", str(tmp_path / "analysis")]
        assert load_pipeline().main(argv) == 0
    printed = capsys.readouterr().out
    assert "rows: 60 out" in printed and "report:" in printed
    assert cio.read_shards(str(tmp_path / "shards")).num_rows == 60
    assert (tmp_path / "analysis" / "report.html").is_file()
    assert (tmp_path / "analysis" / "assignments.parquet").is_file()


# --- helpers shared by the integration tests -------------------------------------------------------------------------


def free_ports(count: int) -> list[int]:
    """Ports free on 127.0.0.1 right now (held open together so they differ)."""
    with contextlib.ExitStack() as stack:
        sockets = [stack.enter_context(socket.socket()) for _ in range(count)]
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in sockets]


def short_temp_dir() -> str:
    # Ray puts unix sockets under its temp dir and their paths must stay under 108 bytes: pytest's tmp_path is too long.
    return tempfile.mkdtemp(prefix="cc-ray-", dir="/tmp")


def cluster_env(temp_dir: str) -> dict[str, str]:
    """Environment of every process of one test cluster: its own temp dir, the venv first on PATH, no token auth.

    ``ray start`` and ``ray job submit`` must agree on RAY_AUTH_MODE (with token auth on one side only, submission
    fails with an authentication error); both run with this environment.
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RAY_ADDRESS", "RAY_AUTH"))}
    env.update(
        RAY_TMPDIR=temp_dir,
        RAY_AUTH_MODE="disabled",
        # Keep every address on loopback: on Linux Ray swaps 127.0.0.1 for the host's routable IP unless told not to.
        RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER="0",
        RAY_GRACEFUL_SHUTDOWN_DRAIN_TIMEOUT_S="0",  # nothing to drain at teardown: stop at once (else ~30 s)
        RAY_USAGE_STATS_ENABLED="0",
        PATH=f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}",
        PYTHONPATH=str(ROOT),
    )
    return env


def kill_processes_of(temp_dir: str) -> list[int]:
    """SIGKILL what is left of one test cluster: processes whose command line or RAY_TMPDIR names its temp dir.

    Reads /proc (Linux, like CI) rather than psutil, which Ray only vendors for its own use.
    """
    killed = []
    marker, env_marker = temp_dir.encode(), f"RAY_TMPDIR={temp_dir}".encode()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes()
            environ = (entry / "environ").read_bytes().split(b"\0")
        except OSError:  # gone already, or not ours to read
            continue
        if marker in cmdline or env_marker in environ:
            with contextlib.suppress(ProcessLookupError):
                os.kill(int(entry.name), signal.SIGKILL)
                killed.append(int(entry.name))
    return killed


def stop_process(proc: subprocess.Popen, *, grace: float) -> None:
    """SIGTERM one process we started, then SIGKILL it if it outlives ``grace`` seconds."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


def write_sample_csv(manifest: Path, base_url: str, dest: Path) -> dict[str, str]:
    """The sample's URL table with http:// URLs on the local server; returns post_id -> kind."""
    table = pacsv.read_csv(manifest, convert_options=pacsv.ConvertOptions(strings_can_be_null=False))
    urls = [f"{base_url}/{path}" for path in table["path"].to_pylist()]
    table = table.set_column(table.schema.get_field_index("url"), "url", pa.array(urls, pa.string()))
    pacsv.write_csv(table.drop_columns(["path"]), dest)
    return dict(zip(table["post_id"].to_pylist(), table["kind"].to_pylist(), strict=True))


def check_every_row_once(output: str, kinds: dict[str, str]) -> pa.Table:
    """Shards hold each input row exactly once, with the status its file deserves."""
    table = cio.read_shards(output)
    ids = table["id"].to_pylist()
    assert table.num_rows == len(kinds), (table.num_rows, len(kinds))
    assert len(set(ids)) == len(ids) and set(ids) == set(kinds)
    for row_id, status in zip(ids, table["status"].to_pylist(), strict=True):
        expected = BROKEN_STATUSES if kinds[row_id] == "broken" else {"ok"}
        assert status in expected, (row_id, kinds[row_id], status)
    assert Path(output, "_SUCCESS").exists()
    return table


# --- 1. a real single-machine cluster and `ray job submit` ----------------------------------------------------------


class HeadNode:
    """``ray start --head --block`` in a temp dir of its own; stopped through the process it started."""

    def __init__(self, *, num_cpus: int) -> None:
        self.temp_dir = short_temp_dir()
        self.env = cluster_env(self.temp_dir)
        (
            gcs,
            self.dashboard_port,
            agent_http,
            agent_grpc,
            runtime_env_agent,
            metrics,
            node_manager,
            object_manager,
        ) = free_ports(8)
        self.log_path = Path(self.temp_dir) / "ray-start.log"
        command = [
            RAY_CLI,
            "start",
            "--head",
            "--block",  # stays in the foreground: SIGTERM to it stops exactly this cluster
            f"--num-cpus={num_cpus}",
            "--num-gpus=0",
            "--node-ip-address=127.0.0.1",
            f"--port={gcs}",
            "--include-dashboard=true",
            "--dashboard-host=127.0.0.1",
            f"--dashboard-port={self.dashboard_port}",
            f"--dashboard-agent-listen-port={agent_http}",
            f"--dashboard-agent-grpc-port={agent_grpc}",
            f"--runtime-env-agent-port={runtime_env_agent}",
            f"--metrics-export-port={metrics}",
            f"--node-manager-port={node_manager}",
            f"--object-manager-port={object_manager}",
            f"--temp-dir={self.temp_dir}",
            "--disable-usage-stats",
        ]
        self._log = self.log_path.open("wb")
        self.proc = subprocess.Popen(command, env=self.env, stdout=self._log, stderr=subprocess.STDOUT)

    @property
    def address(self) -> str:
        return f"http://127.0.0.1:{self.dashboard_port}"

    def wait_ready(self, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"ray start exited with {self.proc.returncode}:\n{self.log_path.read_text()}")
            with (
                contextlib.suppress(OSError),
                urllib.request.urlopen(f"{self.address}/api/jobs/", timeout=2) as response,
            ):
                if response.status == 200:
                    return
            time.sleep(1)
        raise TimeoutError(f"the dashboard never answered at {self.address}:\n{self.log_path.read_text()}")

    def ray(self, *args: str, timeout: float) -> subprocess.CompletedProcess:
        """Run a ``ray`` CLI command against this cluster, from the checkout, with the cluster's environment."""
        return subprocess.run([RAY_CLI, *args], env=self.env, cwd=ROOT, capture_output=True, text=True, timeout=timeout)

    def stop(self) -> None:
        stop_process(self.proc, grace=60)
        self._log.close()
        kill_processes_of(self.temp_dir)
        shutil.rmtree(self.temp_dir, ignore_errors=True)


@pytest.fixture
def sample_table(tmp_path):
    """A 40-row demo sample served on 127.0.0.1, as a CSV of http:// URLs (post_id, url, kind, ...)."""
    from clustering.devtools.devserver import ImageServer
    from clustering.devtools.sample import make_sample

    sample = make_sample(tmp_path / "sample", n_images=40, seed=3)
    with ImageServer(sample.outdir) as server:
        kinds = write_sample_csv(sample.manifest, server.base_url, tmp_path / "urls.csv")
        yield tmp_path / "urls.csv", kinds


@pytest.mark.integration
def test_ray_job_submit_on_a_single_machine_cluster(sample_table, tiny_model_dir, tmp_path):
    if importlib.util.find_spec("aiohttp_cors") is None:
        pytest.fail("the dashboard behind `ray job submit` needs ray[default]: depend on ray[data,default]==2.60.0")
    csv_path, kinds = sample_table
    output = tmp_path / "shards"
    head = HeadNode(num_cpus=2)
    try:
        head.wait_ready()
        submission = f"clipcluster-it-{uuid.uuid4().hex[:8]}"
        # Exactly what docs/cluster.md tells users to type, plus the loopback server's permission and a small shard.
        submit = head.ray(
            "job",
            "submit",
            "--address",
            head.address,
            "--submission-id",
            submission,
            "--runtime-env",
            "runtime_env.yaml",
            "--working-dir",
            ".",
            "--",
            "python",
            "jobs/embed.py",
            "--input",
            str(csv_path),
            "--output",
            str(output),
            "--model",
            tiny_model_dir,
            "--id-column",
            "post_id",
            "--rows-per-shard",
            "10",
            "--allow-private-networks",
            "--read-timeout",
            "10",
            "--no-progress",
            timeout=300,
        )
        job_log = submit.stdout + submit.stderr
        assert submit.returncode == 0, job_log
        status = head.ray("job", "status", "--address", head.address, submission, timeout=60)
        assert f"Job '{submission}' succeeded" in status.stdout, status.stdout + status.stderr
        # Ray's INFO lines went to the run's log file, not to the console; the console kept the summary.
        assert "rows: 40 out" in job_log and " INFO " not in job_log, job_log
        # The code Ray unpacked for the job: the checkout without the virtualenv or git history.
        unpacked = Path(head.temp_dir).glob("session_*/runtime_resources/working_dir_files/_ray_pkg_*")
        packages = [p for p in unpacked if p.is_dir()]
        assert packages, "no working_dir package found"
        for package in packages:
            assert (package / "jobs" / "embed.py").is_file() and (package / "clustering" / "io.py").is_file()
            assert not (package / ".venv").exists() and not (package / ".git").exists()
    finally:
        head.stop()
    assert head.proc.returncode is not None
    check_every_row_once(str(output), kinds)
    # The driver attached to this cluster (RAY_ADDRESS set by the job), it did not start a runtime of its own.
    assert "Connecting to existing Ray cluster" in (output / "_ingest.log").read_text()
    stats = json.loads((output / "_stats.json").read_text())
    assert stats["cluster"] == {"nodes": 1, "cpus": 2, "gpus": 0}


# --- 2, 3 and 4. multi-node clusters (ray.cluster_utils) in a child process -------------------------------------


def _record(kind: str, **fields) -> None:
    import ray

    record = {"kind": kind, "pid": os.getpid(), "node_id": ray.get_runtime_context().get_node_id(), **fields}
    Path(os.environ[RECORD_DIR_ENV], f"{kind}-{uuid.uuid4().hex}.json").write_text(json.dumps(record))


class RecordingEmbedder(ClipEmbedder):
    """The real embedder, plus a note of where each actor instance runs and which GPUs Ray gave it; it holds its
    calls while the node-kill test sets up the kill, and takes ``SLOW_EMBED_ENV`` seconds more per call."""

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        import ray

        _record(
            "embed-actor",
            gpu_ids=[str(g) for g in ray.get_gpu_ids()],
            cuda_visible_devices=os.environ.get("CUDA_VISIBLE_DEVICES"),
            device=self.device,
            time=time.time(),
        )
        self.output = os.environ.get("CLIPCLUSTER_TEST_OUTPUT")

    def __call__(self, batch):
        hold_after = int(os.environ.get(HOLD_AFTER_SHARDS_ENV, "0"))
        if hold_after:
            gate = Path(os.environ[GATE_ENV])
            while len(cio.list_shards(self.output)) >= hold_after and not gate.exists():
                time.sleep(0.05)
        time.sleep(float(os.environ.get(SLOW_EMBED_ENV, "0")))
        out = super().__call__(batch)
        _record("embed", rows=batch.num_rows)
        return out


class RecordingFetch(FetchDecode):
    """The real fetch+decode stage, plus a note of the node that processed each batch and how many rows it held."""

    async def __call__(self, batch):
        out = await super().__call__(batch)
        _record("fetch", rows=batch.num_rows)
        return out


def run_scenario(spec_path: str) -> None:
    """Child-process entry: start a Cluster, run one scenario against it, write the findings, shut it down.

    A child process keeps these clusters away from the pytest session's own local Ray runtime.
    """
    import ray
    from ray.cluster_utils import Cluster

    import clustering.ingest.clip_embedder
    import clustering.ingest.dataset
    from clustering.devtools.devserver import ImageServer
    from clustering.devtools.sample import make_sample
    from clustering.ingest.job import run_ingest

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    spec = json.loads(Path(spec_path).read_text())
    workdir = Path(spec["workdir"])
    records = workdir / "records"
    records.mkdir()
    sample = make_sample(workdir / "sample", n_images=spec["rows"], seed=5)
    node_args = {"node_ip_address": "127.0.0.1", "object_store_memory": 100 * 2**20}
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 0, "include_dashboard": False, **node_args})
    try:
        gpus = spec.get("worker_gpus", 2)
        workers = [
            cluster.add_node(num_cpus=spec["worker_cpus"], num_gpus=gpus, **node_args) for _ in range(spec["workers"])
        ]
        cluster.wait_for_nodes()
        env_vars = {
            RECORD_DIR_ENV: str(records),
            "CLIPCLUSTER_TEST_OUTPUT": str(workdir / "shards"),
            HOLD_AFTER_SHARDS_ENV: str(spec.get("kill_after_shards", 0)),
            GATE_ENV: str(workdir / "gate"),
            SLOW_EMBED_ENV: str(spec.get("slow_embed", 0)),
        }
        ray.init(address=cluster.address, runtime_env={"env_vars": env_vars})
        clustering.ingest.clip_embedder.ClipEmbedder = RecordingEmbedder  # embed_images looks it up at call time
        clustering.ingest.dataset.FetchDecode = RecordingFetch
        with ImageServer(sample.outdir, latency=spec["latency"]) as server:
            kinds = write_sample_csv(sample.manifest, server.base_url, workdir / "urls.csv")
            base = {
                "input": str(workdir / "urls.csv"),
                "output": str(workdir / "shards"),
                "model": spec["model"],
                "id_column": "post_id",
                "allow_private_networks": True,
                "progress": False,
                **spec["config"],
            }
            findings = {"kinds": kinds, "output": base["output"], "nodes": [n.node_id for n in workers]}
            try:  # a plain local path on a multi-node cluster is refused before any work...
                run_ingest(IngestConfig(**base))
            except ConfigError as exc:
                findings["refused"] = str(exc)
            config = IngestConfig(**base, shared_output=True)  # ...and accepted once declared shared
            if spec.get("kill_after_shards"):
                findings.update(run_and_kill_a_node(cluster, workers, config, workdir, spec["kill_after_shards"]))
            elif spec.get("join"):
                findings.update(run_and_add_a_node(cluster, config, workdir, {**node_args, **spec["join"]}))
            else:
                findings["files_written"] = run_ingest(config).files_written
        findings["records"] = [json.loads(p.read_text()) for p in sorted(records.glob("*.json"))]
        Path(spec["findings"]).write_text(json.dumps(findings))
    finally:
        ray.shutdown()
        cluster.shutdown()


def _job_in_a_thread(config: IngestConfig) -> tuple[threading.Thread, dict]:
    from clustering.ingest.job import run_ingest

    outcome: dict = {}

    def job() -> None:
        try:
            outcome["files_written"] = run_ingest(config).files_written
        except BaseException as exc:  # reported to the test, which fails on it
            outcome["error"] = f"{type(exc).__name__}: {exc}"

    thread = threading.Thread(target=job, name="ingest")
    thread.start()
    return thread, outcome


def run_and_kill_a_node(cluster, workers, config: IngestConfig, workdir: Path, after_shards: int) -> dict:
    """Run the job in a thread; once ``after_shards`` files are written (the embed actors then hold), kill a worker
    node hosting an embed actor, then open the gate."""
    thread, outcome = _job_in_a_thread(config)
    deadline = time.monotonic() + 240
    while len(cio.list_shards(config.output)) < after_shards and thread.is_alive() and time.monotonic() < deadline:
        time.sleep(0.1)
    written_before = len(cio.list_shards(config.output))
    embed_nodes = {json.loads(p.read_text())["node_id"] for p in (workdir / "records").glob("embed-actor-*.json")}
    victim = next((w for w in workers if w.node_id in embed_nodes), workers[0])
    finished_before = not thread.is_alive()
    cluster.remove_node(victim, allow_graceful=False)  # SIGKILL its raylet, workers and object store
    (workdir / "gate").touch()
    thread.join(timeout=300)
    return {
        "killed_node": victim.node_id,
        "shards_before_kill": written_before,
        "finished_before_kill": finished_before,
        "still_running": thread.is_alive(),
        **outcome,
    }


def run_and_add_a_node(cluster, config: IngestConfig, workdir: Path, node: dict) -> dict:
    """Run the job in a thread; once the first batch is embedded, add a node, and let the job finish."""
    thread, outcome = _job_in_a_thread(config)
    deadline = time.monotonic() + 240
    while not list((workdir / "records").glob("embed-*-*.json")) and thread.is_alive() and time.monotonic() < deadline:
        time.sleep(0.05)
    started_before = not thread.is_alive()
    joined = cluster.add_node(**node)
    thread.join(timeout=300)
    return {
        "joined_node": joined.node_id,
        "finished_before_join": started_before,
        "still_running": thread.is_alive(),
        **outcome,
    }


def run_in_child(target: str, spec: dict, folder: Path, *, timeout: float, log_name: str = "job.log") -> int:
    """Run ``target`` ("module:function" of the tests, called with the spec file's path) in a fresh interpreter on a
    Ray temp folder of its own; whether it ends or times out, stop it (SIGTERM runs Ray's node shutdown hooks in the
    child) and kill whatever it started. Returns its exit status (non-zero when it had to be stopped); its output is
    in ``folder / log_name``."""
    spec_path = folder / "spec.json"
    spec_path.write_text(json.dumps(spec))
    module, function = target.split(":")
    code = f"import sys; from {module} import {function}; {function}(sys.argv[1])"
    temp_dir = short_temp_dir()
    with (folder / log_name).open("wb") as log:
        proc = subprocess.Popen([sys.executable, "-c", code, str(spec_path)], cwd=ROOT, env=cluster_env(temp_dir),
                                stdout=log, stderr=subprocess.STDOUT)  # fmt: skip
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            pass
        finally:
            stop_process(proc, grace=30)
            kill_processes_of(temp_dir)
            shutil.rmtree(temp_dir, ignore_errors=True)
    return proc.returncode


def scenario(tmp_path: Path, tiny_model_dir: str, **spec) -> dict:
    """Run :func:`run_scenario` in a child Python and return its findings; the child's clusters never outlive it."""
    spec.update(workdir=str(tmp_path / "work"), findings=str(tmp_path / "findings.json"), model=tiny_model_dir)
    Path(spec["workdir"]).mkdir()
    returncode = run_in_child("tests.test_cluster:run_scenario", spec, tmp_path, timeout=420, log_name="scenario.log")
    assert returncode == 0, (tmp_path / "scenario.log").read_text(errors="replace")[-20000:]
    return json.loads(Path(spec["findings"]).read_text())


def of_kind(records: list[dict], kind: str) -> list[dict]:
    return [r for r in records if r["kind"] == kind]


@pytest.mark.integration
def test_multi_node_cluster_gives_every_embed_actor_a_gpu_of_its_own(tmp_path, tiny_model_dir):
    found = scenario(
        tmp_path,
        tiny_model_dir,
        rows=40,
        workers=2,
        worker_cpus=3,
        latency=0.0,
        slow_embed=0.3,  # a backlog at the embed stage, so its pool grows past its first actor
        config={"rows_per_shard": 10, "download_batch_size": 5, "batch_size": 5},  # 8 blocks
    )
    assert "3 nodes" in found["refused"] and "--shared-output" in found["refused"]
    check_every_row_once(found["output"], found["kinds"])
    actors = of_kind(found["records"], "embed-actor")
    assert 1 <= len(actors) <= 4, actors  # autoscaled, never past the cluster's four logical GPUs
    slots = {(r["node_id"], gpu) for r in actors for gpu in r["gpu_ids"]}
    assert len(slots) == len(actors) and all(len(r["gpu_ids"]) == 1 for r in actors)  # distinct GPUs, one each
    assert {r["node_id"] for r in actors} <= set(found["nodes"])  # none on the CPU-less head
    assert {r["cuda_visible_devices"] for r in actors} <= {"0", "1"}  # Ray pins each actor to its GPU
    assert {r["device"] for r in actors} == {"cpu"}  # no CUDA here: the same actors compute on CPU
    stats = json.loads(Path(found["output"], "_stats.json").read_text())
    assert stats["cluster"] == {"nodes": 3, "cpus": 6, "gpus": 4}


@pytest.mark.integration
def test_a_node_added_while_the_job_runs_gets_fetch_and_embed_work(tmp_path, tiny_model_dir):
    found = scenario(
        tmp_path,
        tiny_model_dir,
        rows=320,
        workers=1,
        worker_cpus=1,  # one fetch actor and one embed actor (half a CPU each): full; reads and writes need none
        worker_gpus=1,
        latency=0.1,  # one request at a time: about a second per fetch batch, more per embed batch, so both queues
        slow_embed=1.2,  # back up and both pools have a reason to grow onto the new node
        join={"num_cpus": 2, "num_gpus": 1},  # with default flags, nothing sized at the start
        config={"rows_per_shard": 20, "download_batch_size": 8, "batch_size": 8, "max_in_flight": 1},
    )
    assert "error" not in found, found.get("error")
    assert not found["finished_before_join"] and not found["still_running"]
    check_every_row_once(found["output"], found["kinds"])
    joined = found["joined_node"]
    fetched_there = sum(r["rows"] for r in of_kind(found["records"], "fetch") if r["node_id"] == joined)
    embedded_there = sum(r["rows"] for r in of_kind(found["records"], "embed") if r["node_id"] == joined)
    assert fetched_there > 0, "no fetch+decode work ran on the node that joined"
    assert embedded_there > 0, "no embed actor ran on the GPU node that joined"
    assert any(r["node_id"] == joined for r in of_kind(found["records"], "embed-actor"))


@pytest.mark.integration
def test_a_worker_node_killed_mid_job_costs_no_row(tmp_path, tiny_model_dir):
    rows, rows_per_shard = 120, 10
    found = scenario(
        tmp_path,
        tiny_model_dir,
        rows=rows,
        workers=2,
        worker_cpus=4,
        latency=0.05,  # the embed actors hold after the first file until the kill: no need to slow the job down
        kill_after_shards=1,  # the kill lands once the first file appears
        config={
            "rows_per_shard": rows_per_shard,
            "download_batch_size": 10,
            "batch_size": 8,
            "max_in_flight": 2,
            "embed_actors": 2,
            "num_gpus_per_actor": 1,
            "download_actors": 2,
        },
    )
    assert "error" not in found, found.get("error")
    assert not found["still_running"], "the job never finished after the node was killed"
    assert not found["finished_before_kill"] and found["shards_before_kill"] >= 1
    assert found["files_written"] >= 1
    assert found["killed_node"] in {r["node_id"] for r in of_kind(found["records"], "embed-actor")}
    check_every_row_once(found["output"], found["kinds"])


# --- bench/gpu.py runs unchanged on a CPU-only machine --------------------------------------------------------------


@pytest.mark.integration
def test_gpu_bench_runs_on_cpu_with_the_tiny_model(tmp_path):
    temp_dir = short_temp_dir()  # the bench's local Ray runtime lives here and is cleaned up with it
    figures = tmp_path / "gpu.json"
    command = [sys.executable, "bench/gpu.py", "--architecture", "tiny", "--images", "24", "--batch-sizes", "8,16"]
    command += ["--job-images", "24", "--side", "512", "--json", str(figures)]
    try:
        proc = subprocess.run(command, cwd=ROOT, env=cluster_env(temp_dir), capture_output=True, text=True, timeout=300)
    finally:
        kill_processes_of(temp_dir)
        shutil.rmtree(temp_dir, ignore_errors=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    for label in ("model alone", "decode", "ratio", "whole job"):
        assert label in proc.stdout, proc.stdout
    found = json.loads(figures.read_text())
    assert [row["batch_size"] for row in found["model_alone"]] == [8, 16]
    # Timings are printed, not asserted; what must hold is that CPU runs fp32 and reports no GPU memory.
    assert all((row["device"], row["dtype"], row["peak_gpu_memory_mib"]) == ("cpu", "float32", None)
               for row in found["model_alone"])  # fmt: skip
    assert found["decode"]["ok"] == 24 and found["job"]["ok"] == 24 and found["job"]["gpus"] == 0
