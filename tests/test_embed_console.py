"""What a researcher sees at the console of ``python jobs/embed.py``: the summary, nothing of Ray's internals.

Ray's driver-side core worker prints one ERROR line at every run (``core_worker.cc``: Ray Data's actors get their
constructor arguments from the object store and may restart, ray-project/ray#53727): it must land in the run's
``_ingest.log`` and stay off the console, while any other error still reaches the console.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys

import pyarrow as pa
import pyarrow.csv as pacsv
import pytest

from tests.fixtures_images import EXPECTED_STATUS
from tests.test_cluster import ROOT, kill_processes_of, short_temp_dir

pytestmark = pytest.mark.slow

KNOWN_RAY_WARNING = "has constructor arguments in the object store and max_restarts > 0"


def test_the_console_shows_the_summary_and_the_log_keeps_rays_warning(image_server, tiny_model_dir, tmp_path):
    names = [n for n, status in EXPECTED_STATUS.items() if status == "ok"][:4]
    pacsv.write_csv(pa.table({"url": [image_server.url(n) for n in names]}), tmp_path / "urls.csv")
    output = tmp_path / "out"
    command = [sys.executable, "jobs/embed.py", "--input", str(tmp_path / "urls.csv"), "--output", str(output)]
    command += ["--model", tiny_model_dir, "--allow-private-networks"]  # progress on: logged, as the console is no tty
    temp_dir = short_temp_dir()  # the job's own Ray runtime, in its own folder, as a researcher starts it
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_ADDRESS")} | {"RAY_TMPDIR": temp_dir}
    try:
        proc = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300, check=False)
    finally:
        kill_processes_of(temp_dir)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    console = proc.stdout + proc.stderr
    assert "core_worker.cc" not in console, console
    assert " INFO " not in console and "Started a local Ray instance" not in console, console
    lines = [line for line in console.splitlines() if line.strip()]
    assert len(lines) == 3 and lines[0].startswith("files: ") and lines[1].startswith("rows: 4 out, 4 ok"), console
    assert lines[2].startswith("this run: 4 rows, 4 images embedded"), console
    log = (output / "_ingest.log").read_text()
    assert "core_worker.cc" in log and KNOWN_RAY_WARNING in log  # kept where a person debugging looks
    assert "Started a local Ray instance" in log


FILTER_SCRIPT = """
import logging, os, sys
logging.basicConfig(level=logging.INFO, format="LOGGED %(message)s", stream=sys.stdout)
from clustering.ingest.console import ray_notes_to_log

with ray_notes_to_log(logging.getLogger("job")):
    os.write(2, b"[2026-12-07 23:54:09,399 E 1 1] core_worker.cc:2465: Actor with class name: 'MapWorker(X)' and ID: "
                b"'ab' has constructor arguments in the object store and max_restarts > 0. If the arguments ...\\n")
    os.write(2, b"[2026-12-07 23:54:09,400 E 1 1] core_worker.cc:812: Failed to register worker to Raylet\\n")
    print("a Python error", file=sys.stderr, flush=True)
    os.write(2, b"\\rrows 1/3\\rrows 3/3\\n")  # a progress bar's carriage returns, unchanged
    if sys.argv[1] == "abort":
        os.write(2, b"last words before abort\\n")
        os.abort()
print("done", file=sys.stderr)
"""


@pytest.mark.parametrize("ending", ["exit", "abort"])
def test_only_rays_known_note_leaves_the_console_even_when_the_driver_aborts(ending):
    proc = subprocess.run(
        [sys.executable, "-c", FILTER_SCRIPT, ending], cwd=ROOT, capture_output=True, timeout=60, check=False
    )
    console, logged = proc.stderr.decode(), proc.stdout.decode()
    assert KNOWN_RAY_WARNING not in console
    assert "core_worker.cc:812: Failed to register worker to Raylet\n" in console  # another Ray error stays
    assert "a Python error\n" in console and "\rrows 1/3\rrows 3/3\n" in console
    if ending == "abort":
        assert proc.returncode == -signal.SIGABRT and console.endswith("last words before abort\n")
    else:
        assert proc.returncode == 0 and console.endswith("done\n")
        assert logged.startswith("LOGGED Ray (known") and KNOWN_RAY_WARNING in logged  # in the job's log instead


def test_a_terminal_stays_a_terminal_of_the_same_size():
    """Progress bars ask stderr whether it is a terminal and how wide it is: behind the filter, the answers hold."""
    import fcntl
    import pty
    import struct
    import termios

    main, terminal = pty.openpty()
    fcntl.ioctl(terminal, termios.TIOCSWINSZ, struct.pack("HHHH", 33, 111, 0, 0))
    code = (
        "import logging, os, sys\n"
        "from clustering.ingest.console import ray_notes_to_log\n"
        "with ray_notes_to_log(logging.getLogger()):\n"
        "    print(os.isatty(2), tuple(os.get_terminal_size(2)), flush=True)\n"
        "    os.write(2, b'through the terminal\\n')\n"
    )
    try:
        proc = subprocess.run(
            [sys.executable, "-c", code], cwd=ROOT, stdout=subprocess.PIPE, stderr=terminal, timeout=60, check=False
        )
        os.close(terminal)
        terminal = -1
        seen = b""
        with contextlib.suppress(OSError):  # EIO once every writer of the terminal is gone
            while chunk := os.read(main, 4096):
                seen += chunk
    finally:
        os.close(main)
        if terminal >= 0:
            os.close(terminal)
    assert proc.returncode == 0 and proc.stdout.decode().split() == ["True", "(111,", "33)"]
    assert b"through the terminal" in seen
