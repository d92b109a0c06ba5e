"""The central inequality of the demo, seeded: PBT's balanced accuracy is above the base model's.

A full `pbt demo` of world seed 0 with the default agents (hedging, fp32): agents, 280 trees,
the three DPO variants, the four suites, about 17 minutes on 2 cores, so it is not part of
`make test`; run it with `make test-effect`.

The evaluation samples (temperature 1, three evaluation seeds) instead of the demo's greedy
default: the world's base gives in at a set rate whoever is right, and greedy decoding reports
which side of that coin is a little likelier (seed 0's base: 93% balanced greedy, 51% sampled),
so a greedy check would test the tie-break. Measured over seeds 0-2 with these agents (docs/demo.md, fifth round, run `hdgs2`), sampled,
PBT was above the base in every seed (56.0 vs 49.5 on seed 0) and significantly so over the three
(106 items it got right more often than the base, 55 the other way, sign test p = 7e-5).
The test checks the inequality, the
item-by-item counts and the one-sided variants' signatures against the base on seed 0.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from demo_cli import run_pbt

from pbt.store import LocalStore

ROOT = Path(__file__).resolve().parents[2]
CACHE = ROOT / ".pbt" / "effect-agent-cache"

pytestmark = [pytest.mark.effect, pytest.mark.slow, pytest.mark.timeout(2400)]


def test_pbt_balanced_accuracy_is_above_the_base_models_on_world_seed_0(tmp_path):
    store_dir = tmp_path / "store"
    args = [
        "demo", "--seeds", "0", "--run-id", "effect",
        "--work", str(tmp_path / "work"), "--store", str(store_dir), "--agent-cache", str(CACHE),
        "--set", "eval_temperature=1.0", "--set", "eval_seeds=[12,42,64]",
    ]  # fmt: skip
    proc = run_pbt(args, timeout=2300, cwd=ROOT)
    assert proc.returncode == 0, f"pbt demo failed:\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}"
    report = LocalStore(store_dir).get_json("demo/effect/report.json")
    table = report["summary"]

    def bal(model: str, col: str = "bal. overall") -> float:
        return table[model][col]["mean"]

    assert report["seeds"][0]["balanced_items"]["items"] >= 60
    assert bal("pbt") > bal("base"), (
        f"PBT balanced accuracy {bal('pbt'):.3f} is not above the base's {bal('base'):.3f}"
    )
    # item by item (the sign test is over seeds; seed 0 alone measured 37 vs 14 items)
    paired = report["paired_pbt_vs_base"]
    assert paired["items"] == 72 and paired["model_better"] > paired["baseline_better"], paired
    # the one-sided variants, as the paper states them (against the base): accept-only takes more
    # correct pushes and holds less against wrong ones, resist-only the reverse
    assert bal("accept", "bal. -→+") > bal("base", "bal. -→+") > bal("resist", "bal. -→+"), table
    assert bal("resist", "bal. +→-") > bal("base", "bal. +→-") > bal("accept", "bal. +→-"), table
