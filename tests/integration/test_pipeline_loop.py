"""The retraining loop end to end on the tiny model, through the real agent server.

Run 1 trains a candidate that learns its pairs' answers and is compared with the promoted model
(the base): it passes the gates and `pbt promote` renders the production values change. Run 2
trains with a deliberately worse config (a learning rate too small to move the weights) and is
compared with run 1's adapter, now the promoted one: the gate step fails naming the gate, and
`pbt promote` refuses the verdict. Both candidates and the promoted adapter are loaded at
runtime into one agent server, side by side with the base model.

The trees are built by scripted agents (`pbt.backends.scripted`: they answer from a table and
give in at a seeded rate), so the pairs' chosen replies carry the gold answer; everything else is
the product: the tree engine, ExtractPreferences, DPO (with an SFT term) on the tiny model, the
agent server's runtime LoRA loading, the evaluator's balanced suite, the gates and promotion.
"""

from __future__ import annotations

import os

import pytest
import yaml
from agent_process import AgentProcess
from click.testing import CliRunner

from pbt.cli.main import cli
from pbt.cli.pipeline import invoke_cli
from pbt.pipeline.run import local_argvs, run_local
from pbt.pipeline.spec import load_spec
from pbt.pipeline.steps import STEPS, steps_for
from pbt.pipeline.workflow import SPEC_PATH, render_workflow_template
from pbt.store import LocalStore

pytestmark = [pytest.mark.integration, pytest.mark.e2e, pytest.mark.slow, pytest.mark.timeout(600)]


def _spec(tmp, agent_url, version, *, training, promoted=None):
    """examples/pipeline/tiny.yaml with this test's agent server, model and training overrides."""
    spec = yaml.safe_load(open("examples/pipeline/tiny.yaml").read())
    spec["version"] = version
    spec["training"]["base_model"] = str(tmp / "tiny")
    spec["training"]["options"].update(training)
    spec["serving"]["agent"] = agent_url
    spec["serving"]["promoted"] = promoted
    path = tmp / f"spec-v{version}.yaml"
    path.write_text(yaml.safe_dump(spec))
    return path


@pytest.fixture()
def loop(tmp_path, tiny_model_dir, monkeypatch):
    import shutil

    shutil.copytree(tiny_model_dir, tmp_path / "tiny")
    monkeypatch.setenv("PBT_STORE", str(tmp_path / "store"))
    monkeypatch.setenv("PBT_WORK_DIR", str(tmp_path / "work"))
    with AgentProcess(tmp_path / "tiny", model_name="tiny", extra_args=("--enable-lora",)) as agent:
        yield tmp_path, agent


def test_two_runs_first_promoted_second_refused(loop):
    tmp, agent = loop
    store = LocalStore(tmp / "store")
    lines: list[str] = []
    spec1 = _spec(tmp, agent.url, 1, training={})
    records = run_local(load_spec(spec1), str(spec1), "tiny-v1", invoke=invoke_cli, echo=lines.append)
    assert list(records) == [s.name for s in STEPS]
    verdict = store.get_json("promotions/tiny-v1/verdict.json")
    assert verdict["passed"], verdict
    balanced = next(g for g in verdict["gates"] if g["name"] == "balanced_accuracy")["values"]
    assert balanced["candidate"]["mean"] > balanced["promoted"]["mean"]
    assert "PASSED" in store.get_text("promotions/tiny-v1/report.md")
    out = CliRunner().invoke(cli, ["promote", str(tmp / "store/promotions/tiny-v1/verdict.json")])
    assert out.exit_code == 0, out.output
    assert "+      servedAdapter: dpo-tiny-v1" in out.output
    assert "path: training/tiny-v1-dpo/adapter}" in out.output
    # re-running the same run resumes: every step is recorded, nothing is redone
    again = run_local(load_spec(spec1), str(spec1), "tiny-v1", invoke=invoke_cli, echo=lines.append)
    assert again == records

    # the worse config: a learning rate too small to move the weights, and two steps
    worse = {"learning_rate": 1.0e-9, "max_steps": 2}
    spec2 = _spec(tmp, agent.url, 2, training=worse, promoted=records["train"]["adapter"])
    out = CliRunner().invoke(cli, ["pipeline", "run", "--local", str(spec2), "--run", "tiny-v2"])
    assert out.exit_code == 1 and "step gate failed" in out.output and "balanced_accuracy" in out.output
    verdict2 = store.get_json("promotions/tiny-v2/verdict.json")
    assert not verdict2["passed"] and "balanced_accuracy" in verdict2["failed_gates"]
    assert not store.exists("pipelines/tiny-v2/steps/propose.json")
    out = CliRunner().invoke(cli, ["promote", str(tmp / "store/promotions/tiny-v2/verdict.json")])
    assert out.exit_code == 1 and "failing gates: balanced_accuracy" in out.output
    # the agent serves the base, the passed candidate and the promoted adapter side by side
    import httpx

    ids = {m["id"] for m in httpx.get(f"{agent.url}/v1/models").json()["data"]}
    assert {"tiny", "cand-tiny-v1", "promoted"} <= ids and "cand-tiny-v2" not in ids  # refused: unloaded


def test_local_runner_and_template_run_the_same_steps_with_the_same_arguments():
    spec = load_spec("examples/pipeline/tiny.yaml")
    wt = render_workflow_template(spec)
    templates = {t["name"]: t for t in wt["spec"]["templates"]}
    run = "{{workflow.parameters.run}}"
    assert steps_for(spec) == STEPS
    for step, argv in zip(STEPS, local_argvs(spec, SPEC_PATH, run), strict=True):
        tpl = templates[step.name]
        if step.kind == "pytorchjob":
            job = yaml.safe_load(tpl["resource"]["manifest"])
            args = job["spec"]["pytorchReplicaSpecs"]["Master"]["template"]["spec"]["containers"][0]["args"]
            assert args == ["-m", "pbt", *argv]
        else:
            assert tpl["container"]["args"] == argv
    assert os.path.exists("examples/pipeline/tiny.yaml")
