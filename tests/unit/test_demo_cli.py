"""The demo tests' runner stops the whole process group a timed-out command started."""

from __future__ import annotations

import os
import sys
import time

import pytest
from demo_cli import run_group

SPAWNS_A_CHILD = """
import subprocess, sys, time
child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
open(sys.argv[1], "w").write(str(child.pid))
time.sleep(120)
"""


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie waiting for its reaper is gone for our purpose
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(") ")[1][0] != "Z"
    except FileNotFoundError:
        return False


def test_a_timed_out_command_fails_the_test_and_leaves_no_process(tmp_path):
    pid_file = tmp_path / "child.pid"
    with pytest.raises(pytest.fail.Exception, match="ran past 3s and was stopped"):
        run_group([sys.executable, "-c", SPAWNS_A_CHILD, str(pid_file)], timeout=3, cwd=tmp_path, grace=5)
    child = int(pid_file.read_text())
    deadline = time.monotonic() + 10
    while _alive(child) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not _alive(child), "the command's child outlived the timeout"


def test_a_command_that_ends_gives_its_output_and_status(tmp_path):
    proc = run_group([sys.executable, "-c", "print('hi'); raise SystemExit(3)"], timeout=30, cwd=tmp_path)
    assert proc.returncode == 3 and proc.stdout == "hi\n"
