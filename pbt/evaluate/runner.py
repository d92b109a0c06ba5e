"""Running an evaluation: every enabled suite on every model and seed, into the results store.

`run_evaluation` is the single entry point the CLI, the gRPC servicer and the demo call. It
loads every suite's inputs first (so bad input fails before any model is called), then runs
each suite's unfinished examples with `config.concurrency` in flight (the agent server batches
concurrent requests), checkpoints records to ``examples.jsonl``, and writes the summaries,
``report.md`` and the team-debate figure. On an error the records finished so far are flushed
first, ``summary.json`` says ``failed`` with the message, and the error propagates.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import pbt.evaluate.results as R
from pbt import code_version
from pbt.answers import is_correct_eval
from pbt.backends.base import ChatBackend
from pbt.backends.factory import BackendFactory, agent_backend
from pbt.errors import ValidationError, shorten
from pbt.evaluate.base import Extractor, RunContext, Suite
from pbt.evaluate.config import EvalConfig
from pbt.store import ObjectStore

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ProgressEvent:
    """Progress of one suite: `done` of `total` examples (``skipped`` of them were already done)."""

    suite: str
    done: int
    total: int
    skipped: int = 0
    key: str = ""
    message: str = ""


ProgressFn = Callable[[ProgressEvent], None]


def build_suites(config: EvalConfig, store: ObjectStore | None) -> list[Suite]:
    """Instantiate (and load the inputs of) every enabled suite, in the canonical order."""
    from pbt.evaluate.are_you_sure import AreYouSureSuite
    from pbt.evaluate.balanced import BalancedSuite
    from pbt.evaluate.misinformation import MisinformationSuite
    from pbt.evaluate.team_debate import TeamDebateSuite

    makers = {
        "misinformation": lambda: MisinformationSuite(config),
        "are_you_sure": lambda: AreYouSureSuite(config, store),
        "balanced": lambda: BalancedSuite(config, store),
        "team_debate": lambda: TeamDebateSuite(config, store),
    }
    return [makers[name]() for name in config.suites.enabled()]


def make_extractor(
    config: EvalConfig, owned: list[ChatBackend], factory: BackendFactory | None = None
) -> Extractor:
    """The evaluation's extractor (`pbt.extract.factory.make_extractor`); a backend it opens joins `owned`."""
    from pbt.extract.factory import make_extractor as pick

    spec = config.extractor

    def backend() -> ChatBackend:
        opened = (factory or agent_backend)("extractor", spec.agent)
        owned.append(opened)
        return opened

    return pick(spec.kind, backend if spec.agent is not None else None, max_tokens=spec.max_tokens)


def _summary_doc(
    config: EvalConfig, store: ObjectStore, state: str, suites: dict[str, Any], error: str = ""
) -> dict:
    return {
        "eval_id": config.eval_id,
        "state": state,
        "error": error,
        "results_uri": store.uri(R.eval_prefix(config.eval_id)),
        "models": [
            m.model_dump(mode="json", include={"name", "endpoint", "model", "lineage"}) for m in config.models
        ],
        "seeds": config.seeds,
        "suites": suites,
        "config": config.public_dump(),
        "lineage": {
            "code_version": code_version(),
            "config_fingerprint": config.fingerprint(),
            "inputs": _inputs(config),
            "models": {m.name: m.lineage for m in config.models},
        },
        "updated_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }


def _inputs(config: EvalConfig) -> dict[str, Any]:
    s = config.suites
    out: dict[str, Any] = {}
    if s.misinformation:
        out["misinformation"] = list(s.misinformation.files)
    if s.are_you_sure:
        out["are_you_sure"] = s.are_you_sure.questions
    if s.balanced:
        out["balanced"] = {"pairs": s.balanced.pairs, "trees": s.balanced.trees}
    if s.team_debate:
        out["team_debate"] = s.team_debate.questions
    return out


async def _run_suite(
    suite: Suite, ctx: RunContext, store: ObjectStore, progress: ProgressFn | None
) -> dict[str, Any]:
    config = ctx.config
    exlog = R.ExampleLog(store, config.eval_id, suite.name, checkpoint_every=config.checkpoint_every)
    units = suite.units()
    todo = [u for u in units if not exlog.done(u.key)]
    skipped = len(units) - len(todo)
    done = skipped
    if progress:
        progress(ProgressEvent(suite.name, done, len(units), skipped, message="started"))
    sem = asyncio.Semaphore(config.concurrency)
    errors: list[dict[str, str]] = []

    async def one(unit) -> None:
        nonlocal done
        try:
            async with sem:
                record = await suite.run_unit(unit, ctx)
        except ValidationError as exc:
            # the agent refused this item (a prompt over its context length, say): the item is
            # an error of the run, not the end of it; it is retried when the run is resumed
            log.warning("%s item %s failed: %s", suite.name, unit.key, exc)
            errors.append({"key": unit.key, "error": shorten(str(exc), 500)})
            done += 1
            if progress:
                progress(ProgressEvent(suite.name, done, len(units), skipped, key=unit.key))
            return
        await exlog.add(record)
        done += 1
        if progress:
            progress(ProgressEvent(suite.name, done, len(units), skipped, key=unit.key))

    try:
        async with asyncio.TaskGroup() as tg:
            for unit in todo:
                tg.create_task(one(unit))
    except BaseExceptionGroup as eg:
        exlog.flush_now()
        first = eg.exceptions[0]
        while isinstance(first, BaseExceptionGroup):
            first = first.exceptions[0]
        raise first from None
    except BaseException:
        exlog.flush_now()
        raise
    await exlog.flush()
    records = exlog.records()
    if errors and not records:
        raise ValidationError(f"every item of suite {suite.name} failed; the first: {errors[0]['error']}")
    summary = {
        "suite": suite.name,
        "n_examples": len(records),
        "n_errors": len(errors),
        "errors": sorted(errors, key=lambda e: e["key"])[:100],
        "metrics": await asyncio.to_thread(suite.summarize, records),  # bootstrap off the event loop
    }
    await asyncio.to_thread(store.put_json, R.suite_summary_key(config.eval_id, suite.name), summary)
    return summary


async def run_evaluation(
    config: EvalConfig,
    *,
    store: ObjectStore | None = None,
    backends: Mapping[str, ChatBackend] | None = None,
    extractor: Extractor | None = None,
    progress: ProgressFn | None = None,
    backend_factory: BackendFactory | None = None,
    on_start: Callable[[dict[str, Any]], None] | None = None,
) -> dict[str, Any]:
    """Run (or resume) the evaluation `config.eval_id`; returns the summary document.

    `backends` maps model names to ready backends (tests, the demo); models not in it are
    connected with `backend_factory(name, agent_config)` (default: `agent_backend`: http(s)://,
    local:DIR or a `pbt.backends.make_backend` spec). Backends created here are closed at the end.
    `on_start` receives ``{"eval_id", "results_uri", "suites", "resumed"}`` once inputs are valid.
    """
    factory = backend_factory or agent_backend
    store = store or config.store.open()
    suites = build_suites(config, store)  # load and validate every input before calling any model
    resumed = R.check_or_write_config(store, config.eval_id, config.public_dump(), config.fingerprint())
    log.info(
        "%s evaluation %s at %s",
        "resuming" if resumed else "starting",
        config.eval_id,
        store.uri(R.eval_prefix(config.eval_id)),
    )
    if on_start:
        on_start(
            {
                "eval_id": config.eval_id,
                "results_uri": store.uri(R.eval_prefix(config.eval_id)),
                "suites": [s.name for s in suites],
                "resumed": resumed,
            }
        )
    owned: list[ChatBackend] = []
    resolved: dict[str, ChatBackend] = dict(backends or {})
    summaries: dict[str, Any] = {}
    try:
        for m in config.models:
            if m.name not in resolved:
                resolved[m.name] = factory(m.name, m)
                owned.append(resolved[m.name])
        ctx = RunContext(
            config=config,
            backends=resolved,
            extractor=extractor or make_extractor(config, owned, factory),
            is_correct=is_correct_eval,
        )
        store.put_json(R.summary_key(config.eval_id), _summary_doc(config, store, "running", summaries))
        for suite in suites:
            summaries[suite.name] = await _run_suite(suite, ctx, store, progress)
            store.put_json(R.summary_key(config.eval_id), _summary_doc(config, store, "running", summaries))
    except BaseException as exc:
        if isinstance(exc, asyncio.CancelledError):
            msg = "cancelled (the caller went away or its deadline passed); re-run to resume"
        else:
            msg = str(exc) or type(exc).__name__
        store.put_json(R.summary_key(config.eval_id), _summary_doc(config, store, "failed", summaries, msg))
        raise
    finally:
        for b in owned:
            await b.aclose()
    doc = _summary_doc(config, store, "succeeded", summaries)
    store.put_json(R.summary_key(config.eval_id), doc)
    from pbt.evaluate.report import write_report

    await asyncio.to_thread(write_report, store, doc)
    return doc


def run_evaluation_sync(config: EvalConfig, **kwargs: Any) -> dict[str, Any]:
    """`run_evaluation` for synchronous callers (the CLI)."""
    return asyncio.run(run_evaluation(config, **kwargs))
