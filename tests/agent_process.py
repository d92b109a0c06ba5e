"""Run the agent server as a child process (tests, benchmarks and `make images-check`)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import IO

import httpx

from pbt.errors import UnavailableError
from pbt.net import free_port


class AgentProcess:
    """``pbt serve agent`` in a subprocess; ready when KServe's ``/v2/health/ready`` answers 200.

    Use as a context manager: ``with AgentProcess(model_dir) as agent: HttpBackend(agent.openai_url)``.
    ``src``: run the ``pbt`` of that source tree (its folder first on PYTHONPATH, the working
    directory) in this interpreter; ``env``: extra environment; ``ready_timeout``: seconds the
    context manager waits for readiness.
    """

    def __init__(
        self,
        model_dir: str | Path,
        *,
        port: int | None = None,
        host: str = "127.0.0.1",
        adapter: str | Path | None = None,
        model_name: str | None = None,
        threads: int | None = 1,
        extra_args: tuple[str, ...] = (),
        log: IO | int | None = subprocess.DEVNULL,
        src: str | Path | None = None,
        env: dict[str, str] | None = None,
        ready_timeout: float = 90.0,
    ) -> None:
        self.model_dir = Path(model_dir)
        self.host = host
        self.port = port or free_port()
        self.adapter = adapter
        self.model_name = model_name or self.model_dir.name
        self.threads = threads
        self.extra_args = extra_args
        self.log = log
        self.src = Path(src) if src is not None else None
        self.env = env or {}
        self.ready_timeout = ready_timeout
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def openai_url(self) -> str:
        return f"{self.url}/openai/v1"

    @property
    def ready_url(self) -> str:
        return f"{self.url}/v2/health/ready"

    def command(self) -> list[str]:
        cmd = [sys.executable, "-m", "pbt", "serve", "agent", "--model-dir", str(self.model_dir)]
        cmd += ["--host", self.host, "--port", str(self.port), "--model-name", self.model_name]
        if self.adapter:
            cmd += ["--adapter", str(self.adapter)]
        if self.threads:
            cmd += ["--threads", str(self.threads)]
        return cmd + list(self.extra_args)

    def start(self, timeout: float | None = None) -> AgentProcess:
        env = dict(os.environ, PYTHONUNBUFFERED="1", **self.env)
        if self.src is not None:
            env["PYTHONPATH"] = str(self.src)
        self.proc = subprocess.Popen(self.command(), stdout=self.log, stderr=self.log, env=env, cwd=self.src)
        self.wait_ready(self.ready_timeout if timeout is None else timeout)
        return self

    def wait_ready(self, timeout: float = 90.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                raise UnavailableError(
                    f"agent server exited with code {self.proc.returncode}", endpoint=self.url
                )
            try:
                if httpx.get(self.ready_url, timeout=2.0).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.2)
        raise UnavailableError(f"not ready after {timeout:.0f}s", endpoint=self.url)

    def stop(self, timeout: float = 15.0) -> None:
        """SIGTERM (graceful), then SIGKILL if it does not exit within `timeout`."""
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)

    def kill(self) -> None:
        """Stop at once (a crash, for restart tests)."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)

    def __enter__(self) -> AgentProcess:
        return self.start() if self.proc is None else self

    def __exit__(self, *exc: object) -> None:
        self.stop()
