"""The steps' work, their records in the store, and the local runner.

`run_step(name, spec_ref, run)` is what ``pbt pipeline step`` runs, in a WorkflowTemplate
container or on this machine: it skips a step whose record exists (re-submitting resumes),
checks that the previous step finished, does the work, and records the step's outputs (store
keys) in ``pipelines/RUN/steps/NAME.json`` (and, for Argo's output parameters, as files under
``$PBT_PIPELINE_OUTPUTS``). `run_local` runs every step's command line (`Step.argv`, the same as
the template's) through the ``pbt`` CLI in this process.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from pbt.errors import ConflictError, PbtError, ValidationError
from pbt.pipeline.gate import make_verdict, render_report
from pbt.pipeline.serving import load_adapter, prune_adapters, served_paths, unload_quietly
from pbt.pipeline.spec import PipelineSpec, check_run_id, load_spec, parse_spec
from pbt.pipeline.steps import STEP_NAMES, steps_for
from pbt.store import ObjectStore, layout, open_store
from pbt.store.layout import pipeline_spec_key as spec_key
from pbt.store.layout import pipeline_step_key as record_key
from pbt.store.layout import verdict_key
from pbt.store.layout import verdict_report_key as report_key

log = logging.getLogger(__name__)

CANDIDATE, PROMOTED = "candidate", "promoted"


def _rank() -> int:
    return int(os.environ.get("RANK", "0"))


def read_record(store: ObjectStore, run: str, step: str) -> dict[str, Any] | None:
    key = record_key(run, step)
    return store.get_json(key) if store.exists(key) else None


def _need(store: ObjectStore, run: str, step: str) -> dict[str, Any]:
    rec = read_record(store, run, step)
    if rec is None:
        raise ValidationError(f"step {step!r} of run {run!r} has not finished (no {record_key(run, step)})")
    return rec["outputs"]


# ---------------------------------------------------------------- the steps' work


def _init(spec: PipelineSpec, run: str, store: ObjectStore) -> dict[str, str]:
    key = spec_key(run)
    text = spec.to_yaml()
    if store.exists(key) and parse_spec(store.get_text(key)) != spec:
        raise ConflictError(f"run {run!r} was started with another spec ({store.uri(key)}); use a new run id")
    store.put_text(key, text)
    return {"spec": key}


def _trees(spec: PipelineSpec, run: str, store: ObjectStore, shard: str | None = None) -> dict[str, str]:
    from pbt.config import RunConfig

    config = RunConfig.model_validate(spec.trees.run_config)
    job_id = f"{run}-trees"
    limit = spec.trees.limit or None
    if spec.cluster.orchestrator and not spec.trees.indexed_job and shard is None:
        from pbt.rpc import OrchestratorClient

        async def remote() -> None:
            token = os.environ.get("PBT_GRPC_TOKEN")
            async with OrchestratorClient(spec.cluster.orchestrator, token=token) as orchestrator:
                async for _ in orchestrator.build_trees(config, job_id=job_id, limit=limit):
                    pass

        asyncio.run(remote())
    else:
        # with an Indexed Job the shards built the trees; this finds them all and builds what is missing
        from pbt.datasets import Shard
        from pbt.orchestrate import TreeJob

        part = Shard.parse(shard, field="--shard") if shard else None

        async def local() -> None:
            async for _ in TreeJob(config, store, job_id=job_id, shard=part, limit=limit).events():
                pass

        asyncio.run(local())
    return {"trees": job_id}


def _prefs(spec: PipelineSpec, run: str, store: ObjectStore) -> dict[str, str]:
    job_id = _need(store, run, "trees")["trees"]
    output_id = f"{run}-prefs"
    p = spec.pairs
    if spec.cluster.orchestrator:
        from pbt.rpc import OrchestratorClient

        async def remote() -> None:
            token = os.environ.get("PBT_GRPC_TOKEN")
            async with OrchestratorClient(spec.cluster.orchestrator, token=token) as orchestrator:
                await orchestrator.extract_preferences(
                    job_id=job_id,
                    output_id=output_id,
                    seed=p.seed,
                    pair_filter=p.filter,
                    split_fractions=list(p.split),
                )

        asyncio.run(remote())
    else:
        from pbt.orchestrate.preferences import extract_preferences

        extract_preferences(
            store, job_id, output_id=output_id, seed=p.seed, pair_filter=p.filter, fractions=p.split
        )
    return {"pairs": layout.pairs_key(output_id, "labelled")}


def _train(spec: PipelineSpec, run: str, store: ObjectStore) -> dict[str, str]:
    from pbt.jobs.training import training_entry

    parse_setup, run_training = training_entry("parse_setup"), training_entry("run_training")

    pairs = _need(store, run, "prefs")["pairs"]
    t = spec.training
    config = {
        "stage": "dpo",
        **t.options,
        "pairs": f"store:{pairs}",
        "base_model": t.base_model,
        "mode": t.mode,
        "run_id": f"{run}-dpo",
    }
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "training.yaml"
        path.write_text(yaml.safe_dump(config), encoding="utf-8")
        result = run_training(parse_setup("dpo", ["--config", str(path)]))
    return {"adapter": result.outputs["adapter"]}


def candidate_name(spec: PipelineSpec, run: str) -> str:
    return f"{spec.serving.candidate_prefix}-{run}"[:64]


def _load(spec: PipelineSpec, run: str, store: ObjectStore) -> dict[str, str]:
    adapter = _need(store, run, "train")["adapter"]
    s = spec.serving
    name = candidate_name(spec, run)
    loaded = {load_adapter(spec, store, name, adapter)}
    promoted = s.base_model_name
    if s.promoted:
        loaded.add(load_adapter(spec, store, s.promoted_name, s.promoted))
        promoted = s.promoted_name
    if s.adapter_volume:
        served = served_paths(spec) or set()
        for folder in prune_adapters(s.adapter_volume.mount_path, s.adapter_volume.keep, loaded | served):
            log.info("adapter volume: removed %s", folder)
    return {"candidate": name, "promoted": promoted}


def _evaluate(spec: PipelineSpec, run: str, store: ObjectStore) -> dict[str, str]:
    import copy

    from pbt.evaluate import parse_config

    served = _need(store, run, "load")
    pairs = _need(store, run, "prefs")["pairs"]
    data = copy.deepcopy(spec.evaluation.config)
    balanced = (data.get("suites") or {}).get("balanced")
    if isinstance(balanced, dict) and not balanced.get("pairs"):
        balanced["pairs"] = pairs  # the run's own pairs (their test split by default)
    eval_id = f"{run}-eval"
    endpoint = spec.serving.agent
    data["eval_id"] = eval_id
    data["models"] = [
        {"name": CANDIDATE, "endpoint": endpoint, "model": served["candidate"]},
        {"name": PROMOTED, "endpoint": endpoint, "model": served["promoted"]},
    ]
    config = parse_config(data, source=f"{spec.name} evaluation.config", prefix="evaluation.config.")
    if spec.cluster.evaluator:
        doc = asyncio.run(_evaluate_remote(spec.cluster.evaluator, config))
    else:
        from pbt.evaluate import run_evaluation_sync

        doc = run_evaluation_sync(config, store=store)
    if doc.get("state") != "succeeded":
        raise PbtError(f"evaluation {eval_id} {doc.get('state')}: {doc.get('error')}")
    return {"eval_id": eval_id, "summary": layout.summary_key(eval_id)}


def _gate(spec: PipelineSpec, run: str, store: ObjectStore) -> dict[str, str]:
    from pbt.evaluate import load_summary

    ev = _need(store, run, "evaluate")
    served = _need(store, run, "load")
    adapter = _need(store, run, "train")["adapter"]
    summary = load_summary(store, ev["eval_id"])
    verdict = make_verdict(
        run,
        summary,
        candidate={"name": CANDIDATE, "served_as": served["candidate"], "adapter": adapter},
        promoted={"name": PROMOTED, "served_as": served["promoted"], "adapter": spec.serving.promoted},
        gates=spec.gates,
        promotion={
            "values_file": spec.promotion.values_file,
            "role": spec.promotion.role,
            "adapter_name": f"dpo-{run}",
            "adapter_path": adapter,
            "branch_prefix": spec.promotion.branch_prefix,
        },
    )
    store.put_json(verdict_key(run), verdict)
    store.put_text(report_key(run), render_report(verdict))
    _write_outputs({"verdict": verdict_key(run), "report": report_key(run)})
    if not verdict["passed"]:
        unload_quietly(spec, served["candidate"])  # a refused candidate gives its slot back
        raise PbtError(
            f"run {run}: the candidate failed the gates {verdict['failed_gates']} "
            f"(verdict: {store.uri(verdict_key(run))})"
        )
    return {"verdict": verdict_key(run), "report": report_key(run)}


def _propose(spec: PipelineSpec, run: str, store: ObjectStore) -> dict[str, str]:
    from pbt.pipeline.promote import apply_promotion

    verdict = store.get_json(_need(store, run, "gate")["verdict"])
    if not verdict.get("passed"):
        raise PbtError(f"run {run}: verdict failed ({verdict.get('failed_gates')}); nothing to propose")
    promo = verdict["promotion"]
    key = layout.proposal_key(run)
    proposal: dict[str, Any] = {"verdict": verdict_key(run), **promo}
    values = Path(promo["values_file"])
    if values.is_file():  # a checkout (local runs): the new values file, ready to commit
        new = apply_promotion(
            values.read_text(encoding="utf-8"), promo["role"], promo["adapter_name"], promo["adapter_path"]
        )
        store.put_text(layout.proposal_values_key(run), new)
        proposal["values"] = layout.proposal_values_key(run)
    store.put_json(key, proposal)
    return {"proposal": key}


def _push(spec: PipelineSpec, run: str, store: ObjectStore) -> dict[str, str]:
    """`pbt promote --push` in a fresh clone of ``promotion.git_remote`` (git's credential comes
    from the environment: in Argo a credential-store file from ``promotion.git_secret``)."""
    import subprocess

    from pbt.pipeline.promote import promote

    p = spec.promotion
    if not (p.git_secret and p.git_remote):
        raise ValidationError(
            "pushing is off: set promotion.git_secret and promotion.git_remote", field="push"
        )
    verdict = store.get_json(_need(store, run, "gate")["verdict"])
    with tempfile.TemporaryDirectory() as tmp:
        clone, verdict_ref = Path(tmp) / "repo", Path(tmp) / "verdict.json"
        verdict_ref.write_text(json.dumps(verdict), encoding="utf-8")
        for args in (
            ("clone", "--quiet", "--depth", "1", p.git_remote, str(clone)),
            ("config", "user.name", "pbt pipeline"),
            ("config", "user.email", "pbt-pipeline@users.noreply.invalid"),
        ):
            cwd = clone if args[0] == "config" else None
            proc = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, timeout=300)
            if proc.returncode != 0:
                raise ValidationError(f"git {args[0]} of {p.git_remote} failed: {proc.stderr.strip()[:300]}")
        result = promote(str(verdict_ref), push=True, root=clone, remote=p.git_remote)
    if result.already_pushed:  # a retried step whose first try pushed but left no record
        log.warning("branch %s of %s already pushed (commit %s)", result.branch, p.git_remote, result.commit)
    return {"branch": result.branch or ""}


WORK: dict[str, Callable[[PipelineSpec, str, ObjectStore], dict[str, str]]] = {
    "init": _init,
    "trees": _trees,
    "prefs": _prefs,
    "train": _train,
    "load": _load,
    "evaluate": _evaluate,
    "gate": _gate,
    "propose": _propose,
    "push": _push,
}
assert tuple(WORK) == STEP_NAMES


def _write_outputs(outputs: dict[str, str]) -> None:
    folder = os.environ.get("PBT_PIPELINE_OUTPUTS")
    if not folder:
        return
    Path(folder).mkdir(parents=True, exist_ok=True)
    for name, value in outputs.items():
        (Path(folder) / name).write_text(str(value), encoding="utf-8")


def run_step(
    name: str, spec_ref: str, run: str, store: ObjectStore | None = None, *, shard: str | None = None
) -> dict[str, str]:
    """Run (or skip, when recorded) one step of `run`; returns its outputs.

    `shard` ('i/N', the ``trees`` step only) builds one shard of an Indexed Job and records
    nothing: the step's record is written by the unsharded run that follows the Job."""
    check_run_id(run)
    store = store or open_store()
    if shard is not None and name != "trees":
        raise ValidationError(f"--shard is for the trees step, not {name!r}", field="--shard")
    done = read_record(store, run, name)
    if done is not None and name != "init":  # init always checks the spec against the run's
        log.info("step %s of %s already done: %s", name, run, done["outputs"])
        _write_outputs(done["outputs"])
        return done["outputs"]
    index = STEP_NAMES.index(name)
    if index:
        _need(store, run, STEP_NAMES[index - 1])
    spec = load_spec(spec_ref, store)
    if name not in {s.name for s in steps_for(spec)}:
        raise ValidationError(
            f"step {name!r} is off in this spec (promotion.git_secret is not set)", field="step"
        )
    started = time.time()
    if shard is not None:
        return _trees(spec, run, store, shard=shard)
    outputs = WORK[name](spec, run, store)
    if _rank() == 0:
        store.put_json(
            record_key(run, name),
            {
                "step": name,
                "run": run,
                "outputs": outputs,
                "seconds": round(time.time() - started, 1),
                "finished_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            },
        )
    _write_outputs(outputs)
    return outputs


async def _evaluate_remote(address: str, config: Any) -> dict[str, Any]:
    from pbt.rpc import EvaluatorClient

    async with EvaluatorClient(address, token=os.environ.get("PBT_GRPC_TOKEN")) as evaluator:
        return await evaluator.evaluate(config)


def local_argvs(spec: PipelineSpec, spec_path: str, run: str) -> list[list[str]]:
    """The command lines the local runner runs (after ``pbt``): `Step.argv` of every step of `spec`."""
    return [step.argv(spec_path, run) for step in steps_for(spec)]


def run_local(
    spec: PipelineSpec,
    spec_path: str,
    run: str,
    *,
    invoke: Callable[[list[str]], None],
    echo: Callable[[str], None] = print,
) -> dict[str, dict[str, str]]:
    """Every step, in order, in this process; stops at the first failure.

    `invoke(argv)` runs ``pbt argv`` (the CLI passes itself, so this module does not import it) and
    raises a `PbtError` when the step fails."""
    check_run_id(run)
    records: dict[str, dict[str, str]] = {}
    steps = steps_for(spec)
    for step, argv in zip(steps, local_argvs(spec, spec_path, run), strict=True):
        echo(f"[{step.name}] pbt {' '.join(argv)}")
        started = time.monotonic()
        try:
            invoke(argv)
        except PbtError as exc:
            raise PbtError(f"step {step.name} failed: {exc}") from None
        records[step.name] = read_record(open_store(), run, step.name)["outputs"]
        echo(f"[{step.name}] done in {time.monotonic() - started:.1f}s: {records[step.name]}")
    return records
