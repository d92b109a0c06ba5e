"""Run a `pbt` command line in its own process group, for the tests that run whole demos.

On a timeout the group gets SIGTERM (the demo stops its agent, orchestrator and evaluator servers
on SIGTERM, and torchrun stops its workers), then SIGKILL after a grace period: nothing the
command started outlives the test and slows the tests after it.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest


def _signal_group(proc: subprocess.Popen, sig: int) -> None:
    try:
        os.killpg(proc.pid, sig)
    except ProcessLookupError:
        pass


def run_pbt(args: list[str], **kw) -> subprocess.CompletedProcess:
    """`python -m pbt *args` through `run_group`."""
    return run_group([sys.executable, "-m", "pbt", *args], **kw)


def run_group(
    cmd: list[str], *, timeout: float, cwd: Path, env: dict[str, str] | None = None, grace: float = 60.0
) -> subprocess.CompletedProcess:
    """Run ``cmd`` as a process group; fails the test with the output's tail when it runs past
    ``timeout``, after stopping the whole group."""
    proc = subprocess.Popen(
        cmd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=cwd,
        env=env,
        start_new_session=True,
    )
    try:
        stdout, stderr = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        _signal_group(proc, signal.SIGTERM)
        try:
            stdout, stderr = proc.communicate(timeout=grace)
        except subprocess.TimeoutExpired:
            _signal_group(proc, signal.SIGKILL)
            stdout, stderr = proc.communicate()
        pytest.fail(
            f"{' '.join(cmd[:4])} ran past {timeout:.0f}s and was stopped:\n"
            f"{(stdout or '')[-4000:]}\n{(stderr or '')[-4000:]}"
        )
    finally:
        if proc.poll() is None:  # the test itself was interrupted (pytest-timeout, ^C)
            _signal_group(proc, signal.SIGTERM)
    return subprocess.CompletedProcess(proc.args, proc.returncode, stdout, stderr)
