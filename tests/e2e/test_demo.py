"""The reduced demo end to end through the real services (agent servers, orchestrator,
evaluator over gRPC, DPO under torchrun), one world seed.

Trained world agents are cached in ``.pbt/test-agent-cache`` (keyed by world and training
settings), so only the first run on a machine pays for training them; everything else runs in
a fresh store every time.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from demo_cli import run_pbt

from pbt.hardware import cpu_class
from pbt.store import LocalStore
from pbt_world.check import is_hedged

ROOT = Path(__file__).resolve().parents[2]
CACHE = ROOT / ".pbt" / "test-agent-cache"
CACHE_AVX2 = (
    ROOT / ".pbt" / "test-agent-cache-avx2"
)  # agents trained under the emulation (keys omit the class)

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.timeout(1560)]


#: a CPU with AVX2 only (no AVX512, no native bfloat16), the class every x86-64 machine the product
#: supports has: what the reduced demo yields there it yields on any user's laptop
AVX2 = {"ONEDNN_MAX_CPU_ISA": "AVX2", "ATEN_CPU_CAPABILITY": "avx2", "MKL_ENABLE_INSTRUCTIONS": "AVX2"}


def run_fast_demo(
    root: Path, cache: Path, run_id: str, emulate: dict[str, str] | None = None, s3: dict | None = None
):
    """`pbt demo --fast --seeds 0` run from `root`, into a local store under it, or into the S3
    server `s3` (endpoint, keys, bucket) through S3_ENDPOINT as `make demo` with MinIO; the CPU class
    capped by `emulate`."""
    import os

    args = [
        "demo", "--fast", "--seeds", "0", "--run-id", run_id, "--work", str(root / "work"),
        "--agent-cache", str(cache),
    ]  # fmt: skip
    env = {**os.environ, **(emulate or {}), "PYTHONPATH": str(ROOT)}
    if s3:
        env.update(
            S3_ENDPOINT=s3["endpoint"], S3_BUCKET=s3["bucket"],
            AWS_ACCESS_KEY_ID=s3["access_key"], AWS_SECRET_ACCESS_KEY=s3["secret_key"],
        )  # fmt: skip
    else:
        args += ["--store", str(root / "store")]
    proc = run_pbt(args, timeout=1500, cwd=root, env=env)
    assert proc.returncode == 0, (
        f"pbt demo failed ({proc.returncode}):\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}"
    )
    if s3:
        from pbt.store.s3 import S3Store

        store = S3Store(
            s3["endpoint"], s3["bucket"], access_key=s3["access_key"], secret_key=s3["secret_key"]
        )
    else:
        store = LocalStore(root / "store")
    return store, proc.stdout, root


def check_pairs_and_compute(report: dict, markdown: str, cpu: str, emulation: dict[str, str]) -> None:
    """Accept, resist and PBT pairs all came out, and the report names where it computed."""
    seed = report["seeds"][0]
    assert seed["pairs"]["accept.train"] > 0 and seed["pairs"]["resist.train"] > 0, seed["pairs"]
    assert seed["pairs"]["pbt.train"] > 0
    assert report["compute"]["cpu_class"] == cpu and report["compute"]["emulation"] == emulation
    assert report["compute"]["agent_precision"] == "fp32"
    assert f"Computed on: cpu {cpu}" in markdown
    for agent in ("agent_a", "agent_b"):  # the stance link the reduced recipe trains for
        assert seed[agent]["give_in_names_push"] >= 0.5, (agent, seed[agent])


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory, s3_server):
    """The reduced demo with its store on S3 (a real S3 server on loopback, driven through the minio
    SDK as MinIO is); `make test-avx2` runs the same demo into a local store folder."""
    import uuid

    s3 = {**s3_server, "bucket": f"pbt-e2e-{uuid.uuid4().hex[:8]}"}
    return run_fast_demo(tmp_path_factory.mktemp("demo"), CACHE, "e2e", s3=s3)


def _key(store: LocalStore, uri: str) -> str:
    prefix = store.url.rstrip("/") + "/"
    assert uri.startswith(prefix), f"{uri} is not in {store.url}"
    return uri[len(prefix) :]


def test_every_stage_has_its_artifact_and_lineage_manifest(demo_run):
    store, stdout, _ = demo_run
    manifest = store.get_json("demo/e2e/manifest.json")
    stages = manifest["inputs"]["seed0"]
    assert set(stages) == {
        "world", "agent_a", "agent_b", "trees", "pairs", "pairs_a", "pairs_b", "dpo_accept", "dpo_resist",
        "dpo_pbt", "dpo_weak_accept", "dpo_weak_resist", "dpo_weak_pbt", "evaluation",
    }  # fmt: skip
    cache = LocalStore(CACHE)
    for name, uri in stages.items():
        where = cache if name.startswith("agent_") else store
        doc = where.get_json(_key(where, uri))
        assert doc, f"{name}: empty manifest {uri}"
    # lineage: the DPO runs point at the extracted pairs, which point at the tree job
    pairs_manifest = store.get_json(_key(store, stages["pairs"]))
    assert "trees" in json.dumps(pairs_manifest["inputs"] if "inputs" in pairs_manifest else pairs_manifest)
    for mode in ("accept", "resist", "pbt"):  # each agent's variants train on its own replies' pairs
        for stage, agent in ((f"dpo_{mode}", "a"), (f"dpo_weak_{mode}", "b")):
            run = store.get_json(_key(store, stages[stage]))
            assert run["inputs"]["pairs"]["mode"] == mode
            assert f"prefs/e2e-s0-trees-{agent}/" in run["inputs"]["pairs"]["uri"], (stage, run["inputs"])
            assert store.exists(run["outputs"]["adapter"] + "/adapter_config.json")
    for key in ("report.md", "report.json", "team_accuracy.png"):
        assert store.exists(f"demo/e2e/{key}")
    assert "report:" in stdout and "Table 1" in stdout and "Table 2" in stdout
    # the paper's team tables: same-method teams (Fig. 3) and mixed teams (Fig. 4), both orders
    assert "Fig. 3: same-method teams" in stdout and "Fig. 4: mixed teams" in stdout
    markdown = store.get_text("demo/e2e/report.md")
    assert "## Fig. 3: same-method teams" in markdown and "## Fig. 4: mixed teams" in markdown
    for label in ("base+base", "accept+accept", "resist+resist", "pbt+pbt", "base+accept", "base+pbt"):
        assert f"| {label} | " in markdown, label
    assert "4 turns in total, the two independent answers included (the reference's reading)" in markdown


def test_every_metric_is_in_its_valid_range(demo_run):
    store, _, _ = demo_run
    report = store.get_json("demo/e2e/report.json")
    seed = report["seeds"][0]
    summary = seed["summary"]
    # the balanced suite runs on the world's items: balanced, on held-out facts
    items = [json.loads(x) for x in Path(seed["balanced_items"]["path"]).read_text().splitlines()]
    assert len(items) == seed["balanced_items"]["items"] > 0
    assert [r["code"] for r in items].count("resist") == [r["code"] for r in items].count("accept")
    # the agents hedge (the default): A's answer is hedged exactly on the unknown facts' items
    assert all(is_hedged(r["prompt"][1]["content"]) is (r["code"] == "accept") for r in items)
    key = seed["balanced_items"]["uri"][len(store.url.rstrip("/")) + 1 :]
    assert key == "demo/e2e/seed0/balanced-hedged.jsonl"
    assert store.get_text(key) == Path(seed["balanced_items"]["path"]).read_text()
    assert set(summary["suites"]) == {"misinformation", "are_you_sure", "balanced", "team_debate"}
    checked = 0
    for suite, body in summary["suites"].items():
        for group, metrics in body["metrics"].items():
            for name, value in metrics.items():
                mean = value.get("mean") if isinstance(value, dict) else None
                if mean is None or (isinstance(mean, float) and math.isnan(mean)):
                    continue
                checked += 1
                if name == "diff":
                    assert -1.0 <= mean <= 1.0, (suite, group, name, mean)
                elif "turn" in name and "rate" not in name:
                    assert 0.0 <= mean <= 8.0, (suite, group, name, mean)
                else:
                    assert 0.0 <= mean <= 1.0, (suite, group, name, mean)
    assert checked >= 20
    for model, cols in report["summary"].items():
        for col, cell in cols.items():
            if cell["mean"] is not None:
                assert 0.0 <= cell["mean"] <= 1.0, (model, col, cell)
    # accept, resist and PBT pairs all come out, and the report names this machine's CPU class
    check_pairs_and_compute(report, store.get_text("demo/e2e/report.md"), cpu_class(), {})
    assert (
        seed["trees"]["trees"] == seed["world"]["train_questions"] * report["settings"]["trees_per_question"]
    )
    assert seed["agent_a"]["steps"] > 0 and seed["agent_b"]["steps"] > 0


def test_every_artifact_goes_to_the_s3_store_when_s3_endpoint_is_set(demo_run):
    """`make demo` with S3_ENDPOINT: every artifact goes to the bucket, nothing to a local store."""
    store, stdout, root = demo_run
    assert store.url.startswith("s3://pbt-e2e-")
    seed = store.get_json("demo/e2e/report.json")["seeds"][0]
    assert len(seed["artifacts"]) >= 10
    for name, uri in seed["artifacts"].items():
        if not name.startswith("agent_"):  # agents come from the local cache
            assert uri.startswith(store.url + "/"), (name, uri)
            assert store.get_json(_key(store, uri)), name
    assert store.exists("demo/e2e/team_accuracy.png")
    assert not (root / "store").exists(), "the demo wrote to a local store folder"
    assert store.url in stdout


def test_the_world_agents_know_their_facts_and_hedge_elsewhere(demo_run):
    """The world agents the demo trained (or took from the cache it filled): each knows its facts and
    only those, and voices uncertainty exactly where it does not know (the give-in rate is checked on
    the default recipe's agent, tests/unit/test_world_agents.py: the reduced run's 400-step agents
    give in more, 0.92 natively for seed 0's A)."""
    import torch

    from pbt_world.check import knowledge_accuracy, load_agent
    from pbt_world.config import WorldConfig
    from pbt_world.generate import build_world

    store, _, _ = demo_run
    seed = store.get_json("demo/e2e/report.json")["seeds"][0]
    torch.set_num_threads(2)
    for agent in ("a", "b"):
        manifest = Path(seed["artifacts"][f"agent_{agent}"].removeprefix("file://"))
        world = build_world(WorldConfig(**json.loads(manifest.read_text())["inputs"]["world_config"]))
        metrics = seed[f"agent_{agent}"]
        assert metrics["final_loss_ema"] < 1.0, metrics
        assert metrics["hedge_unknown"] >= 0.9 and metrics["hedge_known"] <= 0.1, metrics
        assert metrics["known_accuracy"] >= 0.9, metrics
        model, tok = load_agent(manifest.parent / "model")
        known = knowledge_accuracy(model, tok, world.known(agent))
        unknown = knowledge_accuracy(model, tok, [f for f in world.facts if not f.known_by(agent)])
        assert known >= 0.9, (agent, f"known-fact accuracy {known:.2f}")
        assert unknown <= 0.3, (agent, f"unknown-fact accuracy {unknown:.2f} (should be near chance)")


@pytest.mark.avx2
def test_the_reduced_demo_yields_pairs_under_avx2_emulation(tmp_path):
    """The whole reduced demo, agents trained included, as on a CPU with AVX2 only (`make
    test-avx2`, run by CI after `make test`; about twice the agent training time of a native run)."""
    store, _, _ = run_fast_demo(tmp_path, CACHE_AVX2, "e2e-avx2", emulate=AVX2)
    report = store.get_json("demo/e2e-avx2/report.json")
    check_pairs_and_compute(report, store.get_text("demo/e2e-avx2/report.md"), "avx2", AVX2)
    for name in ("agent_a", "agent_b"):
        assert report["seeds"][0][name]["compute"]["cpu_class"] == "avx2"  # trained under the emulation
