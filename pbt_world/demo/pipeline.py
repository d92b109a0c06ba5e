"""`pbt demo` end to end: world -> agents -> servers -> trees -> pairs -> DPO x3 per agent -> serve -> suites -> report.

Everything model-facing goes through the real services on loopback: the KServe agent servers
(`pbt serve agent`), the orchestrator and the evaluator over gRPC, DPO under torchrun. Stages
report progress through a `rich` console; any failure raises `StageError` (non-zero exit).
"""

from __future__ import annotations

import logging
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from rich.console import Console

from pbt.store import ObjectStore, layout, open_store
from pbt.view.terminal import stage_progress
from pbt_world.agents import agent_prefix, ensure_agents, ensure_world, world_prefix
from pbt_world.balanced_items import balanced_items
from pbt_world.config import AgentTrainConfig
from pbt_world.demo import stages
from pbt_world.demo.services import ServiceGroup
from pbt_world.demo.settings import METHODS, VARIANTS, DemoSettings
from pbt_world.demo.significance import balanced_paired
from pbt_world.files import dump_jsonl
from pbt_world.generate import World

log = logging.getLogger(__name__)


def store_url_of(store: ObjectStore) -> str:
    """The URL servers and training use to open the same store (S3 credentials come from env)."""
    url = store.url
    if url.startswith("file://"):
        return url[len("file://") :]
    return url


class Ui:
    """Progress output: one line per finished step, a live bar for long streams."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self.started = time.monotonic()
        self.timings: dict[str, float] = {}

    def say(self, text: str) -> None:
        elapsed = time.monotonic() - self.started
        self.console.print(f"[dim]{elapsed:7.1f}s[/dim] {text}")

    @contextmanager
    def step(self, name: str):
        t0 = time.monotonic()
        self.say(f"[bold]{name}[/bold] ...")
        yield
        self.timings[name] = round(time.monotonic() - t0, 1)
        self.say(f"[green]done[/green] {name} ({self.timings[name]:.1f}s)")

    @contextmanager
    def bar(self):
        """A live progress bar on a terminal; elsewhere (logs, CI) a line every 25% or 30 seconds."""
        if not self.console.is_terminal:
            last: dict[str, tuple[float, float]] = {}

            def log_update(what: str, done: float, total: float) -> None:
                frac = done / total if total else 0.0
                prev_frac, prev_t = last.get(what, (-1.0, 0.0))
                now = time.monotonic()
                if frac >= 1.0 or frac - prev_frac >= 0.25 or now - prev_t >= 30:
                    last[what] = (frac, now)
                    self.say(f"  {what}: {done:.0f}/{total:.0f}")

            yield log_update
            return
        with stage_progress(self.console, transient=True) as update:
            yield update


def balanced_items_file(world: World, world_dir: Path, work: Path, agent: AgentTrainConfig) -> Path:
    """The balanced suite's items: the world's own file, or, for agents that voice uncertainty
    (``hedge_unknown`` > 0), the same items with agent A's answer on unknown facts hedged, as the
    agent says it (written under ``work``)."""
    if agent.hedge_unknown <= 0:
        return world_dir / "balanced" / "world.jsonl"
    path = work / "balanced-hedged.jsonl"
    dump_jsonl(path, balanced_items(world, "a", hedge=True))
    return path


def extract_pairs(
    address: str, trees: stages.TreesResult, settings: DemoSettings, url: str, seed: int, record: dict, ui: Ui
) -> dict[str, str]:
    """ExtractPreferences for the seed's trees; returns the labelled pair file each agent's variants
    train on (``a``, ``b``). With ``pair_agents: own`` each agent gets the pairs of its own replies
    (one more extraction per agent, ``<job>-a`` / ``<job>-b``), or every labelled pair where its own
    lack a code (said in ``record["pair_source"]`` and the report); otherwise both get the one file."""
    common = {
        "store_url": url,
        "seed": seed,
        "pair_filter": settings.pair_filter,
        "split_fractions": (1.0, 0.0, 0.0),  # every pair trains: the balanced suite has the world's own items
        "pbt_balance": settings.pbt_balance,
    }
    own = settings.pair_agents == "own"
    prefs = stages.extract_preferences(
        address, job_id=trees.job_id, pair_agents="both" if own else settings.pair_agents, **common
    )
    record["pairs"] = prefs.counts
    record["artifacts"]["pairs"] = prefs.manifest_uri
    ui.say("pairs: " + ", ".join(f"{k}={v}" for k, v in sorted(prefs.counts.items())))
    if not prefs.counts.get("pbt.train"):
        raise stages.StageError(
            f"seed {seed}: no PBT training pairs came out of {trees.trees} trees "
            f"(counts {prefs.counts}); the agents never disagreed in a labellable way"
        )
    record["pair_source"] = dict.fromkeys(("a", "b"), "own" if own else settings.pair_agents)
    if not own:
        return {"a": prefs.labelled_key, "b": prefs.labelled_key}
    keys, record["pairs_by_agent"] = {}, {}
    for agent in ("a", "b"):
        mine = stages.extract_preferences(
            address, job_id=trees.job_id, pair_agents=agent, output_id=f"{trees.job_id}-{agent}", **common
        )
        counts = {c: mine.counts.get(f"{c}.train", 0) for c in ("accept", "resist")}
        record["pairs_by_agent"][agent] = mine.counts
        record["artifacts"][f"pairs_{agent}"] = mine.manifest_uri
        ui.say(f"agent {agent}'s own replies: accept {counts['accept']}, resist {counts['resist']} pairs")
        missing = missing_codes(counts)
        keys[agent] = mine.labelled_key
        if missing:
            record["pair_source"][agent] = f"both: its own replies gave no {' or '.join(missing)} pairs"
            ui.say(
                f"[yellow]agent {agent}'s own replies gave no {' or '.join(missing)} pairs: its variants train "
                "on every labelled pair[/yellow]"
            )
            keys[agent] = prefs.labelled_key
    return keys


def missing_codes(counts: dict[str, int]) -> list[str]:
    """The codes an agent's own pairs lack: its three variants share one pair budget, the smaller of
    the accept and resist counts, so without one of them no variant could train on its own pairs."""
    return [c for c in ("accept", "resist") if not counts.get(c)]


def train_both(parallel: bool, runs: dict[str, dict[str, Any]]) -> dict[str, stages.TrainResult]:
    """`stages.train_dpo` for each agent's run of one mode (``runs``: agent -> its arguments), as two
    processes at once when ``parallel`` (their start-up, mostly imports, overlaps)."""
    if not parallel:
        return {agent: stages.train_dpo(**kw) for agent, kw in runs.items()}
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(len(runs)) as pool:
        futures = {agent: pool.submit(stages.train_dpo, **kw) for agent, kw in runs.items()}
        return {agent: f.result() for agent, f in futures.items()}


def run_seed(
    seed: int, settings: DemoSettings, store: ObjectStore, ui: Ui, cache: ObjectStore | None = None
) -> dict[str, Any]:
    """The whole pipeline for one world seed; returns the seed's record for the report."""
    url = store_url_of(store)
    work = settings.work / f"seed{seed}"
    work.mkdir(parents=True, exist_ok=True)
    run = f"{settings.run_id}-s{seed}"
    record: dict[str, Any] = {"seed": seed, "artifacts": {}, "timings": {}}
    t_seed = time.monotonic()
    cache = cache or store

    with ui.step(f"seed {seed}: world and agents (trained once, then cached in the store)"):
        world, world_dir = ensure_world(settings.world_config(seed), store, work / "world")
        if cache is not store:  # the agents' manifests point at the world in the cache
            ensure_world(settings.world_config(seed), cache, work / "world")
        with ui.bar() as update:
            agent_dirs = ensure_agents(
                world, settings.agent, cache, work / "agents",
                progress=lambda a, s, n, loss: update(f"train agent {a}", s, n),
            )  # fmt: skip

        record["artifacts"]["world"] = store.uri(f"{world_prefix(world.config)}/manifest.json")
        for a in ("a", "b"):
            key = f"{agent_prefix(world.config, settings.agent, a)}/manifest.json"
            record["artifacts"][f"agent_{a}"] = cache.uri(key)
            record[f"agent_{a}"] = cache.get_json(key)["metrics"]
        record["world"] = {
            "facts": len(world.facts),
            "a_knows": len(world.known("a")),
            "b_knows": len(world.known("b")),
            "train_questions": len(world.by_split("train")),
            "eval_questions": len(world.by_split("eval")),
        }

    with ServiceGroup(work) as services:
        with ui.step(f"seed {seed}: start agent servers (a = strong, b = weak), orchestrator, evaluator"):
            a = services.start_agent("a", agent_dirs["a"], threads=settings.threads)
            b = services.start_agent("b", agent_dirs["b"], threads=settings.threads)
            orch = services.start_grpc("orchestrator", url)
            evaluator = services.start_grpc("evaluator", url)
            ui.say(
                f"agents on {a.address}, {b.address}; orchestrator {orch.address}; evaluator {evaluator.address}"
            )

        tree_config = stages.trees_run_config(
            agent_a=f"http://{a.address}/v1", agent_b=f"http://{b.address}/v1",
            personas_file=world_dir / "personas.yaml", questions_file=world_dir / "questions" / "train.jsonl",
            settings=settings, store_url=url, seed=seed,
        )  # fmt: skip
        with ui.step(f"seed {seed}: build dialogue trees on world questions (orchestrator BuildTrees)"):
            with ui.bar() as update:
                trees = stages.build_trees(
                    orch.address, job_id=f"{run}-trees", progress=update, limit=settings.questions,
                    config=tree_config,
                )  # fmt: skip
            record["trees"] = {
                "trees": trees.trees, "nodes": trees.nodes, "reused": trees.reused, "uri": trees.output_uri,
            }  # fmt: skip
            record["artifacts"]["trees"] = trees.manifest_uri
            reused = f" ({trees.reused} reused from an earlier run)" if trees.reused else ""
            ui.say(f"{trees.trees} trees{reused}, {trees.nodes} nodes built -> {trees.output_uri}")

        with ui.step(f"seed {seed}: extract accept / resist / PBT pairs (orchestrator ExtractPreferences)"):
            pair_keys = extract_pairs(orch.address, trees, settings, url, seed, record, ui)

        balanced_pairs = balanced_items_file(world, world_dir, work, settings.agent)
        n_items = sum(1 for line in balanced_pairs.read_text().splitlines() if line.strip())
        # the world's file is covered by the world stage's manifest; the hedged copy is kept with the report
        items_key = layout.demo_seed_key(settings.run_id, seed, balanced_pairs.name)
        store.put_file(items_key, balanced_pairs)
        record["balanced_items"] = {
            "items": n_items,
            "path": str(balanced_pairs),
            "uri": store.uri(items_key),
        }
        ui.say(f"balanced items: {n_items} world items on held-out facts (half resist, half accept)")

        variants: dict[str, tuple[str, str]] = {
            "base": (f"http://{a.address}/v1", "a"),
            "weak": (f"http://{b.address}/v1", "b"),
        }
        record["training"] = {}
        for mode in VARIANTS:
            names = {"a": mode, "b": stages.weak_name(mode)}
            how = "at the same time" if settings.dpo_parallel else "one after the other"
            with ui.step(
                f"seed {seed}: DPO {mode} of the strong and the weak agent, {how} (torchrun -m training.dpo)"
            ):
                results = train_both(
                    settings.dpo_parallel,
                    {
                        agent: dict(
                            mode=mode,
                            run_id=f"{run}-dpo-{name}",
                            pairs_key=pair_keys[agent],
                            base_model=agent_dirs[agent],
                            settings=settings,
                            store=store,
                            store_url=url,
                            seed=seed,
                            work=work,
                            agent=agent,
                        )  # fmt: skip
                        for agent, name in names.items()
                    },
                )
            for agent, name in names.items():
                result = results[agent]
                record["training"][name] = {
                    "run_id": result.run_id,
                    "agent": agent,
                    "seconds": result.seconds,
                    **result.metrics,
                }
                record["artifacts"][f"dpo_{name.replace('-', '_')}"] = store.uri(result.manifest_key)
                adapter = store.get_dir(result.adapter_key, work / "adapters" / name)
                with ui.step(f"seed {seed}: serve the {name} variant (agent server with the adapter)"):
                    svc = services.start_agent(
                        name, agent_dirs[agent], adapter=adapter, threads=settings.threads
                    )
                    variants[name] = (f"http://{svc.address}/v1", name)

        with ui.step(
            f"seed {seed}: four suites on both agents, untrained and 3 variants each (evaluator RunEvaluation)"
        ):
            if not n_items:
                ui.say("[yellow]no balanced items: the balanced suite is skipped for this seed[/yellow]")
            models = {k: variants[k] for k in (*METHODS, *map(stages.weak_name, METHODS))}
            with ui.bar() as update:
                config = stages.eval_config(
                    eval_id=f"{run}-eval", models=models, teams=stages.demo_teams(), world_dir=world_dir,
                    pairs_key=str(balanced_pairs), settings=settings, store_url=url, balanced=bool(n_items),
                )  # fmt: skip
                ev = stages.run_evaluation(evaluator.address, config, progress=update)
            record["evaluation"] = {
                "eval_id": ev.eval_id,
                "results_uri": ev.results_uri,
                "seconds": ev.seconds,
            }
            record["artifacts"]["evaluation"] = f"{ev.results_uri.rstrip('/')}/summary.json"
            record["summary"] = ev.summary
            record["paired"] = balanced_paired(store, ev.eval_id)  # PBT vs base, item by item
            record["report_markdown"] = ev.report_markdown
        services.check_alive()
    record["seconds"] = round(time.monotonic() - t_seed, 1)
    return record


def run_demo(settings: DemoSettings, console: Console | None = None) -> dict[str, Any]:
    """Run every seed, write the combined report to the store, return its document."""
    from pbt_world.demo.report import write_demo_report

    console = console or Console()
    ui = Ui(console)
    store = open_store(settings.store_url)
    ui.say(f"store: {store.url}; work folder: {settings.work}; seeds: {settings.seeds}")
    cache = open_store(settings.agent_cache_url) if settings.agent_cache_url else store
    records = [run_seed(seed, settings, store, ui, cache) for seed in settings.seeds]
    with ui.step("report"):
        doc = write_demo_report(store, settings, records, total_seconds=time.monotonic() - ui.started)
    return doc
