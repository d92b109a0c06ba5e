"""Smoke runs of the built images, each the way the chart runs it (`make images-check`).

Every container runs as the chart's user 10001:10001 on a read-only root filesystem with a
writable tmpfs at /tmp and its inputs bind-mounted read-only, on the host's network (loopback):

- agent: the tiny model at /mnt/models answers an OpenAI chat completion; then base at
  /mnt/models/base with an adapter at /mnt/models/adapters/<name> (the chart's LoRA layout);
- orchestrator: gRPC health SERVING, then `pbt trees build --orchestrator` builds 2 trees through
  the tiny agent; then, as the step image of the retraining pipeline, its push step as the
  rendered WorkflowTemplate runs it (argv, environment, git Secret mount): `git` commits the
  values change and pushes it to a bare repository under /tmp (file://);
- evaluator: gRPC health SERVING, then `pbt eval run --server` evaluates 3 items through it;
- training: `torchrun -m training.dpo --config /etc/pbt/training.yaml` for 2 steps, pairs read
  from and the adapter written to an S3 server on loopback (moto);
- training-gpu (only when named): torch is a CUDA build, `torch.cuda.is_available()` is False
  without a GPU, `pbt train --help` answers, then the training smoke above on the CPU.

With Docker: `docker run --read-only --tmpfs /tmp --user 10001:10001 --network host`. With buildah
(no OCI runtime here): the image is mounted (`buildah from` + `buildah mount`), bind-mounted
read-only in a private mount namespace (`unshare --mount`) with a tmpfs on /tmp and /dev, /proc
from the host, /etc/hosts and /etc/resolv.conf mounted as the kubelet does, and the entry point runs under `chroot --userspec=10001:10001` with the image's
environment and working directory only. Enforced: read-only root (the kernel refuses writes),
the user and group (no capabilities), the mounts. Not enforced: network, PID and IPC isolation,
cgroup limits, seccomp.
"""

from __future__ import annotations

import contextlib
import json
import os
import shlex
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import yaml
from images import ROOT, Failure, builder

from pbt.errors import UnavailableError
from pbt.net import free_port
from pbt_world.demo.services import grpc_ready, http_ready

sys.path.insert(0, str(ROOT / "tests"))  # test helpers: the tiny agent, pair files
from agent_process import AgentProcess  # noqa: E402

USER = "10001:10001"
PY = sys.executable


class Container:
    """One image run as the chart runs it; `with Container(...) as c:` starts and always stops it."""

    def __init__(self, image: str, tag: str, args: list[str], *, logs: Path, entrypoint: list[str] | None = None,
                 env: dict[str, str] | None = None, mounts: dict[str, str] | None = None, append: bool = True):  # fmt: skip
        self.image, self.tag, self.logs = image, tag, logs
        self.args, self.entrypoint, self.append = args, entrypoint, append
        self.env = env or {}
        # what the kubelet mounts into every container, then the pod's volumes
        self.tool = builder()
        kubelet = {
            f: f for f in ("/etc/hosts", "/etc/resolv.conf") if Path(f).is_file() and self.tool != "docker"
        }
        self.mounts = {**kubelet, **(mounts or {})}
        self.proc: subprocess.Popen | None = None
        self.ctr: str | None = None
        self.view: str | None = None
        self.log = logs / f"run-{image}-{int(time.time() * 1000) % 10**6}.log"

    def config(self) -> dict:
        out = subprocess.run(
            ["buildah", "inspect", "--type", "image", self.tag], capture_output=True, text=True
        )
        if out.returncode:
            raise Failure(f"{self.image}: inspect {self.tag} failed: {out.stderr.strip()}")
        return json.loads(out.stdout)["OCIv1"]["config"]

    def command(self) -> list[str]:
        if self.tool == "docker":
            cmd = ["docker", "run", "--rm", "--read-only", "--tmpfs", "/tmp:mode=1777", "--user", USER,
                   "--network", "host"]  # fmt: skip
            for host, path in self.mounts.items():
                cmd += ["-v", f"{host}:{path}:ro"]
            for key, value in self.env.items():
                cmd += ["-e", f"{key}={value}"]
            if self.entrypoint:
                cmd += ["--entrypoint", self.entrypoint[0]]
                return [*cmd, self.tag, *self.entrypoint[1:], *self.args]
            return [*cmd, self.tag, *self.args]
        cfg = self.config()
        entry = self.entrypoint or cfg.get("Entrypoint") or []
        argv = [*entry, *(cfg.get("Cmd") or [] if self.append and not self.entrypoint else []), *self.args]
        env = [e for e in cfg.get("Env", [])] + [f"{k}={v}" for k, v in self.env.items()]
        workdir = cfg.get("WorkingDir") or "/"
        self.ctr = run_ok(["buildah", "from", "--pull-never", self.tag], self.image, "buildah from").strip()
        rootfs = run_ok(["buildah", "mount", self.ctr], self.image, "buildah mount").strip()
        for host, path in self.mounts.items():  # mount points, as the kubelet makes them
            point = Path(rootfs, path.lstrip("/"))
            if Path(host).is_dir():
                point.mkdir(parents=True, exist_ok=True)
            else:
                point.parent.mkdir(parents=True, exist_ok=True)
                point.touch()
        view = self.view = tempfile.mkdtemp(prefix=f"pbt-smoke-{self.image}-")
        script = [
            "set -e",
            f"mount --bind {rootfs} {view}",
            f"mount -o remount,ro,bind {view}",
            f"mount -t tmpfs -o mode=1777 tmpfs {view}/tmp",
            f"mount --rbind /dev {view}/dev",
            f"mount --rbind /proc {view}/proc",
        ]
        for host, path in self.mounts.items():
            target = f"{view}/{path.lstrip('/')}"
            script += [f"mount --bind {shlex.quote(host)} {target}", f"mount -o remount,ro,bind {target}"]
        script.append(
            shlex.join(
                [
                    "exec",
                    "chroot",
                    f"--userspec={USER}",
                    view,
                    "/usr/bin/env",
                    "-i",
                    "-C",
                    workdir,
                    *env,
                    *argv,
                ]
            )
        )
        return ["unshare", "--mount", "--propagation", "private", "sh", "-c", "\n".join(script)]

    def __enter__(self) -> Container:
        cmd = self.command()
        self.fh = self.log.open("w")
        self.proc = subprocess.Popen(cmd, stdout=self.fh, stderr=subprocess.STDOUT)
        return self

    def exited(self) -> int | None:
        return None if self.proc is None else self.proc.poll()

    def tail(self, n: int = 20) -> str:
        lines = self.log.read_text(errors="replace").strip().splitlines()[-n:]
        return "\n    ".join(lines)

    def fail(self, step: str, why: str) -> Failure:
        return Failure(f"{self.image}: {step}: {why}\n  container log ({self.log}):\n    {self.tail()}")

    def wait(self, timeout: float) -> int:
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            raise self.fail("run", f"still running after {timeout:.0f} s") from None

    def __exit__(self, *exc: object) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self.fh.close()
        if self.view:
            os.rmdir(self.view)
        if self.ctr:
            subprocess.run(["buildah", "umount", self.ctr], capture_output=True)
            subprocess.run(["buildah", "rm", self.ctr], capture_output=True)


def run_ok(cmd: list[str], image: str, step: str, timeout: float = 600, **kw) -> str:
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, **kw)
    if out.returncode:
        raise Failure(
            f"{image}: {step} failed (exit {out.returncode}):\n    {(out.stderr or out.stdout).strip()[-2500:]}"
        )
    return out.stdout


def wait_until(container: Container, step: str, check, timeout: float) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    last = ""
    while time.monotonic() < deadline:
        if container.exited() is not None:
            raise container.fail(step, f"the container exited with code {container.exited()}")
        try:
            if check():
                return
        except Exception as exc:  # not up yet
            last = str(exc)[:200]
        time.sleep(0.5)
    raise container.fail(step, f"not ready after {timeout:.0f} s ({last})")


def chat(url: str, model: str) -> str:
    import httpx

    body = {"model": model, "messages": [{"role": "user", "content": "What is the capital of France?"}],
            "max_tokens": 4}  # fmt: skip
    reply = httpx.post(f"{url}/openai/v1/chat/completions", json=body, timeout=120)
    reply.raise_for_status()
    return reply.json()["choices"][0]["message"]["content"]


def make_models(work: Path) -> tuple[Path, Path]:
    """The tiny model (pbt.models.tiny) and a LoRA adapter of it, built with this machine's venv."""
    code = """
import sys, torch
from pathlib import Path
from peft import LoraConfig, get_peft_model
from transformers import AutoModelForCausalLM
from pbt.models.tiny import build_tiny_model
model = build_tiny_model(Path(sys.argv[1]), seed=0)
torch.manual_seed(1)
base = AutoModelForCausalLM.from_pretrained(model)
lora = LoraConfig(r=4, lora_alpha=64, target_modules=["q_proj", "v_proj"], init_lora_weights=False)
get_peft_model(base, lora).save_pretrained(sys.argv[2])
"""
    model, adapter = work / "models" / "base", work / "models" / "adapters" / "smoke"
    run_ok([PY, "-c", code, str(model), str(adapter)], "agent", "making the tiny model and adapter")
    return model, adapter


def smoke_agent(tag: str, model: Path, adapter: Path, logs: Path) -> None:
    port = free_port()
    flags = ["--host", "127.0.0.1", "--port", str(port), "--model-name", "tiny", "--threads", "1"]
    with Container("agent", tag, flags, logs=logs, mounts={str(model): "/mnt/models"}) as c:
        wait_until(c, "ready (/v2/health/ready)", http_ready(f"http://127.0.0.1:{port}/v2/health/ready"), 180)
        text = chat(f"http://127.0.0.1:{port}", "tiny")
        print(f"   agent: chat completion from /mnt/models: {text!r}", flush=True)
    args = [
        "serve",
        "agent",
        "--model-dir",
        "/mnt/models/base",
        "--adapter",
        "/mnt/models/adapters/smoke",
        *flags,
    ]
    mounts = {str(model): "/mnt/models/base", str(adapter): "/mnt/models/adapters/smoke"}
    with Container("agent", tag, args, logs=logs, mounts=mounts, append=False) as c:
        wait_until(c, "ready with an adapter", http_ready(f"http://127.0.0.1:{port}/v2/health/ready"), 180)
        text = chat(f"http://127.0.0.1:{port}", "tiny")
        print(f"   agent: chat completion with /mnt/models/adapters/smoke: {text!r}", flush=True)


def host_agent(model: Path, logs: Path) -> AgentProcess:
    """The tiny agent for the gRPC services' requests: from this machine's venv (loopback)."""
    agent = AgentProcess(model, model_name="tiny", threads=1, log=(logs / "host-agent.log").open("w"))
    try:
        return agent.start(timeout=180)
    except UnavailableError as exc:
        agent.stop()
        raise Failure(
            f"tiny agent (host venv) did not start ({exc}); see {logs / 'host-agent.log'}"
        ) from None


def smoke_orchestrator(tag: str, agent_url: str, work: Path, logs: Path) -> None:
    port = free_port()
    args = ["--host", "127.0.0.1", "--port", str(port), "--log-level", "INFO", "--store", "/tmp/store",
            "--agent-url-prefix", "http://127.0.0.1:"]  # fmt: skip
    spec = f"{{endpoint: '{agent_url}', model: tiny, max_attempts: 3}}"
    config = work / "run.yaml"
    config.write_text(
        f"agents: {{a: {spec}, b: {spec}, extractor: {spec}}}\n"
        "sampling: {max_tokens: 4, min_tokens: 1, seed: 1}\n"
        "extraction: {mode: llm, max_tokens: 4}\n"
        "tree: {max_turns: 2, branching: [1, 2], stop_on_agreement: false}\n"
        f"dataset: {{format: nq_open, path: '{ROOT / 'examples/data/nq_open/NQ-open.dev.jsonl'}'}}\n"
    )
    with Container("orchestrator", tag, args, logs=logs) as c:
        wait_until(c, "gRPC health", grpc_ready(f"127.0.0.1:{port}"), 120)
        cmd = [PY, "-m", "pbt", "trees", "build", "--config", str(config), "--orchestrator", f"127.0.0.1:{port}",
               "--send-questions", "--limit", "2", "--job-id", "smoke"]  # fmt: skip
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
        if out.returncode or "2 trees in" not in out.stdout + out.stderr:
            raise c.fail("trees build (2 trees through the tiny agent)", (out.stdout + out.stderr)[-1500:])
        print("   orchestrator: health SERVING; built 2 trees through the tiny agent", flush=True)


def smoke_evaluator(tag: str, agent_url: str, work: Path, logs: Path) -> None:
    port = free_port()
    data = work / "data"
    data.mkdir(exist_ok=True)
    rows = (ROOT / "examples/data/nq_open/NQ-open.dev.jsonl").read_text().splitlines()[:3]
    (data / "q.jsonl").write_text("\n".join(rows) + "\n")
    config = work / "eval.yaml"
    config.write_text(
        "eval_id: smoke\nseeds: [1]\n"
        f"models: [{{name: tiny, endpoint: '{agent_url}', model: tiny}}]\n"
        "sampling: {max_tokens: 4}\nbootstrap_samples: 20\n"
        "suites: {are_you_sure: {questions: /data/q.jsonl, limit: 3}}\n"
    )
    args = ["--host", "127.0.0.1", "--port", str(port), "--store", "/tmp/store", "--data-root", "/data",
            "--agent-url-prefix", "http://127.0.0.1:"]  # fmt: skip
    with Container("evaluator", tag, args, logs=logs, mounts={str(data): "/data"}) as c:
        wait_until(c, "gRPC health", grpc_ready(f"127.0.0.1:{port}"), 120)
        cmd = [PY, "-m", "pbt", "eval", "run", "--config", str(config), "--server", f"127.0.0.1:{port}",
               "--quiet", "--no-site"]  # fmt: skip
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
        if out.returncode:
            raise c.fail("eval run (3 items through the tiny agent)", (out.stdout + out.stderr)[-1500:])
        print(f"   evaluator: health SERVING; evaluated 3 items: {out.stdout.strip()[-120:]}", flush=True)


@contextlib.contextmanager
def s3_server() -> Iterator[dict[str, str]]:
    """An S3 server on loopback (moto) and its bucket; yields the pods' S3 environment, which is
    also this process's while it runs."""
    keys = {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }
    port = free_port()
    s3 = {"S3_ENDPOINT": f"http://127.0.0.1:{port}", "S3_BUCKET": "pbt-smoke", **keys}
    moto = subprocess.Popen([PY, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env={**os.environ, **keys})  # fmt: skip
    saved = {k: os.environ.get(k) for k in s3}
    try:
        time.sleep(2)
        os.environ.update(s3)
        yield s3
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        moto.terminate()
        moto.wait(timeout=10)


def smoke_training(tag: str, model: Path, logs: Path, image: str = "training") -> None:
    from pair_files import make_pairs

    from pbt.store import open_store

    with s3_server() as s3:
        store = open_store()
        store.put_jsonl("prefs/smoke/pairs.jsonl", make_pairs(8, 2))
        args = ["--standalone", "--nproc_per_node", "1", "-m", "training.dpo", "--config", "/etc/pbt/training.yaml",
                "--pairs", "store:prefs/smoke/pairs.jsonl", "--base_model", "/mnt/models", "--run_id", "smoke",
                "--max_steps", "2", "--dev_pairs", "none", "--eval_strategy", "no",
                "--load_best_model_at_end", "false", "--save_steps", "2", "--output_dir", "/tmp/out"]  # fmt: skip
        mounts = {
            str(model): "/mnt/models",
            str(ROOT / "training/configs/dpo-tiny.yaml"): "/etc/pbt/training.yaml",
        }
        with Container(image, tag, args, logs=logs, entrypoint=["torchrun"], env=s3, mounts=mounts) as c:
            code = c.wait(600)
            if code:
                raise c.fail("torchrun -m training.dpo (2 steps)", f"exit code {code}")
            if not store.exists("training/smoke/adapter/adapter_model.safetensors"):
                raise c.fail(
                    "torchrun -m training.dpo", "no adapter at s3://pbt-smoke/training/smoke/adapter/"
                )
    print(f"   {image}: 2 DPO steps; adapter written to s3://pbt-smoke/training/smoke/adapter/", flush=True)


CUDA_PROBE = """
import torch
assert torch.version.cuda, f"torch {torch.__version__} is not a CUDA build"
print(f"torch {torch.__version__} CUDA {torch.version.cuda}; cuda available: {torch.cuda.is_available()}")
"""


def smoke_training_gpu(tag: str, model: Path, logs: Path) -> None:
    """The CUDA image without a GPU: a CUDA build of torch that finds no device, then the CPU smoke."""
    for step, entry, args in (
        ("torch is a CUDA build", ["python", "-c", CUDA_PROBE], []),
        ("pbt train --help", None, []),
    ):
        with Container("training-gpu", tag, args, logs=logs, entrypoint=entry) as c:
            if c.wait(180):
                raise c.fail(step, f"exit code {c.exited()}")
            print(f"   training-gpu: {step}: {c.tail(1)[:160]}", flush=True)
    smoke_training(tag, model, logs, image="training-gpu")


# In the step image, as the push step's container (whose command is `pbt`): a bare repository under
# /tmp holding the production values file (mounted at /etc/pbt/values.yaml), the step, then what
# the step pushed.
PUSH_SCRIPT = """set -e
git init -q --bare --initial-branch=main /tmp/remote.git
git init -q --initial-branch=main /tmp/seed
mkdir -p /tmp/seed/$(dirname "$VALUES")
cp /etc/pbt/values.yaml "/tmp/seed/$VALUES"
git -C /tmp/seed add .
git -C /tmp/seed -c user.name=smoke -c user.email=smoke@example.invalid commit -qm base
git -C /tmp/seed push -q /tmp/remote.git HEAD:refs/heads/main
pbt "$@"
git --git-dir=/tmp/remote.git log -1 --format='pushed: %an: %s' promote/r1
git --git-dir=/tmp/remote.git show "promote/r1:$VALUES" | grep -q 'servedAdapter: dpo-r1'
echo "promote/r1 serves dpo-r1"
"""


def smoke_push(tag: str, work: Path, logs: Path) -> None:
    """The retraining pipeline's push step in the step image, argv and environment as rendered."""
    from pbt.pipeline import run as pipeline_run
    from pbt.pipeline.spec import PipelineSpec
    from pbt.pipeline.workflow import GIT_SECRET_PATH, RUN_PARAM, render_workflow_template
    from pbt.store import open_store
    from pbt.store.layout import pipeline_step_key, verdict_key

    data = yaml.safe_load((ROOT / "examples/pipeline/tiny.yaml").read_text())
    values = data["promotion"]["values_file"]
    secret = work / "git-secret"
    secret.mkdir(mode=0o755, exist_ok=True)
    (secret / "credentials").write_text("")
    with s3_server() as s3:
        data["cluster"].update(store_endpoint=s3["S3_ENDPOINT"], store_bucket=s3["S3_BUCKET"])
        data["promotion"].update(git_secret="pbt-git", git_remote="file:///tmp/remote.git")
        spec = PipelineSpec.model_validate(data)
        (work / "pipeline.yaml").write_text(spec.to_yaml())
        store = open_store()
        pipeline_run.run_step("init", str(work / "pipeline.yaml"), "r1", store=store)
        store.put_json(verdict_key("r1"), {
            "run": "r1", "passed": True, "failed_gates": [], "eval_id": "r1-eval",
            "promotion": {"values_file": values, "role": "b", "adapter_name": "dpo-r1",
                          "adapter_path": "training/r1-dpo/adapter", "branch_prefix": "promote/"}})  # fmt: skip
        for step in ("trees", "prefs", "train", "load", "evaluate", "gate", "propose"):
            outputs = {"verdict": verdict_key("r1")} if step == "gate" else {}
            store.put_json(pipeline_step_key("r1", step), {"outputs": outputs})
        templates = render_workflow_template(spec)["spec"]["templates"]
        container = next(t for t in templates if t["name"] == "push")["container"]
        assert container["image"] == spec.images.steps and container["command"] == ["pbt"], container
        env = {e["name"]: e["value"] for e in container["env"] if "value" in e}
        env |= {k: v for k, v in s3.items() if k.startswith("AWS_")} | {"VALUES": values}
        args = [a.replace(RUN_PARAM, "r1") for a in container["args"]]
        mounts = {str(secret): GIT_SECRET_PATH, str(ROOT / values): "/etc/pbt/values.yaml"}
        script = ["sh", "-c", PUSH_SCRIPT, "pbt"]
        with Container("orchestrator", tag, args, logs=logs, entrypoint=script, env=env, mounts=mounts) as c:
            if c.wait(180):
                raise c.fail(
                    "pipeline push step (git commit and push to file:///tmp/remote.git)",
                    f"exit code {c.exited()}",
                )
            record = store.get_json(pipeline_step_key("r1", "push"))
            if record["outputs"] != {"branch": "promote/r1"}:
                raise c.fail("pipeline push step", f"recorded {record}")
    pushed = " / ".join(c.log.read_text().strip().splitlines()[-2:])
    print(f"   orchestrator: pipeline push step with git: {pushed}", flush=True)


def smoke_all(tags: dict[str, str], logs: Path) -> None:
    with tempfile.TemporaryDirectory(prefix="pbt-smoke-") as tmp:
        work = Path(tmp)
        os.chmod(work, 0o755)
        model, adapter = make_models(work)
        for path in (work, *work.rglob("*")):
            path.chmod(0o755 if path.is_dir() else 0o644)
        if "agent" in tags:
            start = time.monotonic()
            smoke_agent(tags["agent"], model, adapter, logs)
            print(f"   agent: ok in {time.monotonic() - start:.0f} s", flush=True)
        services = [n for n in ("orchestrator", "evaluator") if n in tags]
        if services:
            with host_agent(model, logs) as agent:
                for name in services:
                    start = time.monotonic()
                    if name == "orchestrator":
                        smoke_orchestrator(tags[name], agent.openai_url, work, logs)
                        smoke_push(tags[name], work, logs)
                    else:
                        smoke_evaluator(tags[name], agent.openai_url, work, logs)
                    print(f"   {name}: ok in {time.monotonic() - start:.0f} s", flush=True)
        for name, smoke in (("training", smoke_training), ("training-gpu", smoke_training_gpu)):
            if name in tags:
                start = time.monotonic()
                smoke(tags[name], model, logs)
                print(f"   {name}: ok in {time.monotonic() - start:.0f} s", flush=True)
