"""Start and stop the demo's servers as subprocesses on loopback, on free ports.

Each server writes its output to ``<work>/logs/<name>.log``; when one fails to come up or
dies, the error names it and quotes the end of its log.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from pbt.errors import UnavailableError
from pbt.net import free_port

log = logging.getLogger(__name__)


def _tail(path: Path, lines: int = 25) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def http_ready(url: str) -> Callable[[], bool]:
    def check() -> bool:
        import httpx

        try:
            return httpx.get(url, timeout=2.0).status_code == 200
        except httpx.HTTPError:
            return False

    return check


def grpc_ready(address: str) -> Callable[[], bool]:
    def check() -> bool:
        import grpc
        from grpc_health.v1 import health_pb2, health_pb2_grpc

        try:
            with grpc.insecure_channel(address) as channel:
                reply = health_pb2_grpc.HealthStub(channel).Check(
                    health_pb2.HealthCheckRequest(), timeout=2.0
                )
                return reply.status == health_pb2.HealthCheckResponse.SERVING
        except grpc.RpcError:
            return False

    return check


@dataclass
class Service:
    name: str
    args: list[str]
    port: int
    log_path: Path
    ready: Callable[[], bool]
    env: dict[str, str] = field(default_factory=dict)
    proc: subprocess.Popen | None = None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        out = open(self.log_path, "ab")  # noqa: SIM115 - handed to the child, closed in stop()
        env = {**os.environ, **self.env}
        log.info("starting %s: %s", self.name, " ".join(self.args))
        self.proc = subprocess.Popen(
            self.args, stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True
        )
        out.close()

    def wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                raise UnavailableError(
                    f"{self.name} exited with status {self.proc.returncode} during start-up; "
                    f"end of {self.log_path}:\n{_tail(self.log_path)}",
                    endpoint=self.address,
                )
            if self.ready():
                return
            time.sleep(0.5)
        raise UnavailableError(
            f"{self.name} not ready after {timeout:.0f}s; end of {self.log_path}:\n{_tail(self.log_path)}",
            endpoint=self.address,
        )

    def check_alive(self) -> None:
        if self.proc is not None and self.proc.poll() is not None:
            raise UnavailableError(
                f"{self.name} died (status {self.proc.returncode}); end of {self.log_path}:\n{_tail(self.log_path)}",
                endpoint=self.address,
            )

    def stop(self, grace: float = 10.0) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        try:
            os.killpg(self.proc.pid, signal.SIGTERM)
        except ProcessLookupError:
            return
        try:
            self.proc.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=5)


class ServiceGroup:
    """The demo's running servers; stops all of them on exit (also on errors)."""

    def __init__(self, work: Path, env: dict[str, str] | None = None) -> None:
        self.work = work
        self.env = dict(env or {})
        self.services: dict[str, Service] = {}

    def _pbt(self, *args: str) -> list[str]:
        return [sys.executable, "-m", "pbt", *args]

    def start_agent(
        self, name: str, model_dir: Path, adapter: Path | None = None, threads: int = 1, timeout: float = 180
    ) -> Service:
        port = free_port()
        args = self._pbt(
            "serve", "agent", "--model-dir", str(model_dir), "--model-name", name,
            "--host", "127.0.0.1", "--port", str(port), "--device", "cpu", "--threads", str(threads),
        )  # fmt: skip
        if adapter is not None:
            args += ["--adapter", str(adapter)]
        svc = Service(
            name=f"agent server {name!r}",
            args=args,
            port=port,
            log_path=self.work / "logs" / f"agent-{name}.log",
            ready=http_ready(f"http://127.0.0.1:{port}/v2/health/ready"),
            env={**self.env, "OMP_NUM_THREADS": str(threads)},
        )
        return self._launch(name, svc, timeout)

    def start_grpc(self, name: str, store_url: str, timeout: float = 120) -> Service:
        port = free_port()
        # the request policy of a loopback demo: agents on 127.0.0.1, files under the work folder
        args = self._pbt(
            "serve", name, "--host", "127.0.0.1", "--port", str(port), "--store", store_url,
            "--agent-url-prefix", "http://127.0.0.1:", "--data-root", str(self.work),
        )  # fmt: skip
        svc = Service(
            name=f"{name} server",
            args=args,
            port=port,
            log_path=self.work / "logs" / f"{name}.log",
            ready=grpc_ready(f"127.0.0.1:{port}"),
            env=self.env,
        )
        return self._launch(name, svc, timeout)

    def _launch(self, key: str, svc: Service, timeout: float) -> Service:
        if key in self.services:
            raise ValueError(f"service {key!r} already started")
        self.services[key] = svc
        svc.start()
        svc.wait_ready(timeout)
        return svc

    def stop(self, key: str) -> None:
        svc = self.services.pop(key, None)
        if svc is not None:
            svc.stop()

    def check_alive(self) -> None:
        for svc in self.services.values():
            svc.check_alive()

    def stop_all(self) -> None:
        for key in list(self.services):
            self.stop(key)

    def __enter__(self) -> ServiceGroup:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop_all()
