"""The job's start-up order: Ray starts before the driver imports Ray Data and the stages, which load beside it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_the_job_module_and_the_output_checks_load_no_ray_data_and_no_stage():
    """What runs before ``ray.init`` (the entrypoint, the job module, the output folder's check) must stay light: Ray
    Data's import alone takes most of a second, and Ray's processes are what the first image waits for."""
    code = (
        "import sys, tempfile; import clustering.ingest.job as job; "
        "job.write.check_output_target(tempfile.mkdtemp() + '/out', overwrite=False); "
        "print(sorted(m for m in sys.modules if m == 'ray' or m.startswith(('ray.data', 'torch', 'transformers', "
        "'PIL', 'aiohttp', 'clustering.ingest.dataset', 'clustering.ingest.fetch', 'clustering.ingest.clip_embedder', "
        "'clustering.ingest.read', 'clustering.ingest.source'))))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    assert done.stdout.strip() == "[]"


def test_the_files_of_a_write_are_still_named_by_part_names():
    """``PartNames`` is built on first use (it subclasses Ray Data's FilenameProvider) and pickles by name."""
    code = (
        "import pickle, sys; import clustering.ingest.write as write; assert 'ray.data' not in sys.modules; "
        "names = pickle.loads(pickle.dumps(write.PartNames())); "
        "from ray.data.datasource import FilenameProvider; assert isinstance(names, FilenameProvider); "
        "print(type(names) is write.PartNames, names.get_filename_for_task('w1', 7))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    assert done.stdout.split() == ["True", "part-w1_000007.parquet"]
