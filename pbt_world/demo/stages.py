"""The demo's stages that go through the real services: gRPC calls and torchrun training.

Each function takes what the stage needs (endpoints, store, settings) and returns what the next
stage needs plus the URI of the stage's lineage manifest.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

if TYPE_CHECKING:
    from pbt.evaluate import EvalConfig

from pbt.errors import PbtError
from pbt.store import ObjectStore, layout
from pbt_world.demo.settings import METHODS, VARIANTS, DemoSettings

log = logging.getLogger(__name__)

Progress = Callable[[str, float, float], None]  # (what, done, total)


class StageError(PbtError):
    """A demo stage failed; the message names the stage and where to look."""


def _grpc_error(stage: str, exc: Exception) -> StageError:
    import grpc

    if isinstance(exc, grpc.RpcError):
        return StageError(f"{stage}: {exc.code().name}: {exc.details()}")  # type: ignore[attr-defined]
    return StageError(f"{stage}: {exc}")


@dataclass
class TreesResult:
    job_id: str
    output_uri: str
    manifest_uri: str
    trees: int
    nodes: int  # built by this call (a resumed job reuses the trees already in the store)
    seconds: float
    reused: int = 0


def trees_run_config(
    *,
    agent_a: str,
    agent_b: str,
    personas_file: Path,
    questions_file: Path,
    settings: DemoSettings,
    store_url: str,
    seed: int,
):
    """The orchestrator `RunConfig` of the demo's tree jobs (world agents, rule extraction, the
    demo's tree shape, sampling temperature and agreement rule)."""
    from pbt.config import RunConfig

    return RunConfig.model_validate(
        {
            "agents": {
                "a": {"endpoint": agent_a, "model": "a", "max_in_flight": 32},
                "b": {"endpoint": agent_b, "model": "b", "max_in_flight": 32},
            },
            "personas": {"file": str(personas_file)},
            "sampling": {
                "temperature": settings.tree_temperature,
                "top_p": 1.0,
                "max_tokens": 40,
                "min_tokens": 4,
                "seed": seed,
            },
            "extraction": {"mode": "rules"},
            "tree": {
                "max_turns": settings.max_turns,
                "branching": settings.branching,
                "stop_on_agreement": settings.stop_on_agreement,
                "trees_per_question": settings.trees_per_question,
            },
            "dataset": {"format": "nq_open", "path": str(questions_file), "name": f"world{seed}"},
            "store": {"url": store_url},
            "max_trees_in_flight": 16,
        }
    )


def build_trees(address: str, *, job_id: str, config, limit: int | None, progress: Progress) -> TreesResult:
    """BuildTrees through the orchestrator with a `trees_run_config` (``limit``: questions, None = all)."""
    import asyncio

    from pbt.rpc import OrchestratorClient

    async def call() -> Any:
        summary = None
        async with OrchestratorClient(address) as orchestrator:
            async for event in orchestrator.build_trees(config, job_id=job_id, limit=limit, timeout=3600):
                kind = event.WhichOneof("event")
                if kind == "progress":
                    progress("trees", event.progress.trees_done, max(event.progress.trees_total, 1))
                elif kind == "summary":
                    summary = event.summary
        return summary

    try:
        summary = asyncio.run(call())
    except Exception as exc:  # grpc.RpcError and friends
        raise _grpc_error("building trees (orchestrator BuildTrees)", exc) from exc
    if summary is None:
        raise StageError("building trees: the orchestrator ended the stream without a summary")
    return TreesResult(
        job_id=summary.job_id,
        output_uri=summary.output_uri,
        manifest_uri=summary.manifest_uri,
        trees=summary.progress.trees_done,
        nodes=summary.progress.nodes,
        seconds=summary.progress.elapsed_s,
        reused=summary.progress.trees_skipped,
    )


@dataclass
class PrefsResult:
    output_id: str
    output_uri: str
    manifest_uri: str
    counts: dict[str, int]

    @property
    def labelled_key(self) -> str:
        """The pairs every variant trains on: training balances them, with one pair budget."""
        return layout.pairs_key(self.output_id, "labelled")


def extract_preferences(
    address: str,
    *,
    job_id: str,
    store_url: str,
    seed: int,
    pair_filter: str = "none",
    split_fractions: tuple[float, float, float] | None = None,
    pbt_balance: str = "overall",
    pair_agents: str = "both",
    output_id: str | None = None,
) -> PrefsResult:
    """ExtractPreferences through the orchestrator: accept / resist / PBT pairs, split by tree
    (`split_fractions` train/dev/test, default the orchestrator's), filtered by `pair_filter`, the
    PBT file trimmed as `pbt_balance` says, from the replies of `pair_agents`, under `output_id`
    (default: the tree job's id)."""
    import asyncio

    from pbt.rpc import OrchestratorClient
    from pbt.v1 import common_pb2

    async def call() -> Any:
        async with OrchestratorClient(address) as orchestrator:
            return await orchestrator.extract_preferences(
                job_id=job_id,
                output_id=output_id or job_id,
                store=common_pb2.StoreSpec(url=store_url),
                seed=seed,
                pair_filter=pair_filter,
                split_fractions=list(split_fractions or ()),
                pbt_balance=pbt_balance,
                pair_agents=pair_agents,
                timeout=600,
            )

    try:
        reply = asyncio.run(call())
    except Exception as exc:
        raise _grpc_error("extracting preference pairs (orchestrator ExtractPreferences)", exc) from exc
    return PrefsResult(
        output_id=output_id or job_id,
        output_uri=reply.output_uri,
        manifest_uri=reply.manifest_uri,
        counts=dict(reply.counts),
    )


@dataclass
class TrainResult:
    mode: str
    run_id: str
    adapter_key: str
    manifest_key: str
    metrics: dict[str, Any]
    seconds: float


def dpo_config(settings: DemoSettings, seed: int, agent: str = "a") -> dict[str, Any]:
    """The flat training YAML (training.args) of a world DPO run of agent ``a`` or ``b``."""
    d = settings.dpo_for(agent)
    return {
        "stage": "dpo",
        "dev_pairs": "none",
        "overlong": "truncate",
        "dtype": "float32",
        "quantization": "none",
        "lora_r": d.lora_r,
        "lora_alpha": d.lora_alpha,
        "lora_dropout": 0.0,
        "lora_target_modules": list(d.target_modules),
        "beta": d.beta,
        "loss_type": ["sigmoid", "sft"] if d.sft_weight > 0 else ["sigmoid"],
        "loss_weights": [1.0, d.sft_weight] if d.sft_weight > 0 else [1.0],
        "max_length": 384,
        "learning_rate": d.learning_rate,
        "lr_scheduler_type": "constant",
        "warmup_steps": 0,
        "per_device_train_batch_size": d.batch_size,
        "per_device_eval_batch_size": 16,
        "gradient_accumulation_steps": 1,
        "max_steps": -1,
        "num_train_epochs": d.epochs,
        "eval_strategy": "no",
        "save_strategy": "no",
        "select_by": "last",
        "eval_train_at_end": False,
        "logging_steps": 5,
        "seed": seed,
        "use_cpu": True,
        "bf16": False,
        "dataloader_num_workers": 0,
        "report_to": "none",
        "disable_tqdm": True,
        "resume": "never",
        "upload_checkpoints": False,
    }


def train_dpo(
    *,
    mode: str,
    run_id: str,
    pairs_key: str,
    base_model: Path,
    settings: DemoSettings,
    store: ObjectStore,
    store_url: str,
    seed: int,
    work: Path,
    agent: str = "a",
) -> TrainResult:
    """One DPO variant of world agent ``agent`` with ``torchrun -m training.dpo`` (gloo on CPU);
    adapter and manifest in the store."""
    import time

    cfg_path = work / f"dpo-{run_id}.yaml"
    cfg_path.write_text(yaml.safe_dump(dpo_config(settings, seed, agent), sort_keys=True))
    log_path = work / "logs" / f"dpo-{run_id}.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    args = [
        sys.executable, "-m", "torch.distributed.run", "--standalone",
        "--nproc_per_node", str(settings.dpo_for(agent).nproc), "-m", "training.dpo",
        "--config", str(cfg_path), "--pairs", f"store:{pairs_key}", "--base_model", str(base_model),
        "--mode", mode, "--run_id", run_id, "--store", store_url,
        "--output_dir", str(work / "dpo" / run_id),
    ]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "2", "PBT_LOG_LEVEL": "INFO"}
    started = time.monotonic()
    with open(log_path, "wb") as out:
        proc = subprocess.run(args, stdout=out, stderr=subprocess.STDOUT, env=env, check=False)
    if proc.returncode != 0:
        tail = "\n".join(log_path.read_text(errors="replace").splitlines()[-30:])
        raise StageError(
            f"DPO {mode} (torchrun training.dpo) exited with {proc.returncode}; end of {log_path}:\n{tail}"
        )
    manifest_key = layout.training_manifest_key(run_id)
    if not store.exists(manifest_key):
        raise StageError(f"DPO {mode}: finished but {store.uri(manifest_key)} is missing")
    manifest = store.get_json(manifest_key)
    metrics = store.get_json(manifest["outputs"]["metrics"]) if manifest["outputs"].get("metrics") else {}
    return TrainResult(
        mode=mode,
        run_id=run_id,
        adapter_key=manifest["outputs"]["adapter"],
        manifest_key=manifest_key,
        metrics={k: v for k, v in metrics.items() if k != "log_history"},
        seconds=round(time.monotonic() - started, 1),
    )


@dataclass
class EvalResult:
    eval_id: str
    results_uri: str
    summary: dict[str, Any]
    report_markdown: str
    seconds: float


def weak_name(method: str) -> str:
    """The evaluator's name of the weak agent trained with ``method`` (``base``: the untrained one)."""
    return "weak" if method == "base" else f"weak-{method}"


def demo_teams() -> list[dict[str, Any]]:
    """The demo's teams (strong ``a``, weak ``b``), labelled weak+strong as the paper: same-method
    teams (Fig. 3: the strong and weak agent trained with the same method, base+base, accept+accept,
    resist+resist, pbt+pbt) and mixed teams (Fig. 4: the untrained weak agent with each strong one,
    base+base, base+accept, base+resist, base+pbt); base+base is in both tables."""
    teams = [
        {
            "a": m,
            "b": weak_name(m),
            "label": f"{m}+{m}",
            "tables": ["same_method", "mixed"] if m == "base" else ["same_method"],
        }
        for m in METHODS
    ]
    return teams + [{"a": m, "b": "weak", "label": f"base+{m}", "tables": ["mixed"]} for m in VARIANTS]


def eval_config(
    *,
    eval_id: str,
    models: dict[str, tuple[str, str]],
    teams: list[dict[str, Any]],
    world_dir: Path,
    pairs_key: str,
    settings: DemoSettings,
    store_url: str,
    balanced: bool = True,
) -> EvalConfig:
    """The evaluator's config for the demo: the four suites on ``models`` (name -> (endpoint, served
    name)); team debate of ``teams`` (`demo_teams`) in both speaking orders, with the turn budget
    read as ``settings.team_turns_count`` says. Its id is ``eval_id`` plus the config's fingerprint:
    a run resumed with other evaluation settings (sampled after greedy) evaluates afresh instead of
    colliding with the results of the first."""
    from pbt.evaluate import EvalConfig

    limit = settings.eval_questions
    config = EvalConfig.model_validate(
        {
            "eval_id": eval_id,
            "store": {"url": store_url},
            "models": [
                {"name": n, "endpoint": ep, "model": served, "max_in_flight": 16}
                for n, (ep, served) in models.items()
            ],
            "seeds": list(settings.eval_seeds),
            "personas": str(world_dir / "personas.yaml"),
            "suites": {
                "misinformation": {"files": [str(world_dir / "farm" / "world.jsonl")], "limit": limit},
                "are_you_sure": {"questions": str(world_dir / "questions" / "eval.jsonl"), "limit": limit},
                # the world's balanced items (held-out facts): every split counts
                "balanced": {"pairs": pairs_key, "split": None} if balanced else None,
                "team_debate": {
                    "questions": str(world_dir / "questions" / "eval.jsonl"),
                    "teams": teams,
                    **settings.team_debate_turns(),
                    "limit": limit,
                },
            },
            "extractor": {"kind": "rule"},
            "sampling": {"temperature": settings.eval_temperature, "max_tokens": 40},
            "concurrency": 32,
            "bootstrap_samples": 200,
        }
    )
    return config.model_copy(update={"eval_id": f"{eval_id}-{config.fingerprint()[:8]}"})


def run_evaluation(address: str, config: EvalConfig, progress: Progress) -> EvalResult:
    """RunEvaluation through the evaluator (the config from `eval_config`); streams progress."""
    import asyncio
    import time

    from pbt.rpc import EvaluatorClient
    from pbt.v1 import evaluator_pb2

    eval_id = config.eval_id
    # the YAML form of the request carries every field of EvalConfig as the evaluator parses it
    # (None kept: the balanced suite's split None means every split, unlike the default "test")
    config_yaml = yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False)

    async def call() -> Any:
        async with EvaluatorClient(address) as evaluator:
            return await evaluator.run_to_summary(
                config_yaml=config_yaml,
                on_progress=lambda suite, done, total: progress(f"eval {suite}", done, max(total, 1)),
                timeout=3600,
            )

    started = time.monotonic()
    try:
        summary = asyncio.run(call())
    except Exception as exc:
        raise _grpc_error("evaluation (evaluator RunEvaluation)", exc) from exc
    if summary.error or summary.state == evaluator_pb2.EVALUATION_STATE_FAILED:
        raise StageError(f"evaluation {eval_id} failed: {summary.error}")
    import json

    return EvalResult(
        eval_id=eval_id,
        results_uri=summary.results_uri,
        summary=json.loads(summary.summary_json),
        report_markdown=summary.report_markdown,
        seconds=round(time.monotonic() - started, 1),
    )
