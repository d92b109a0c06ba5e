"""The pipeline spec, the step records (resume, order, a changed spec) and `pbt pipeline render`."""

from __future__ import annotations

import pytest
import yaml
from click.testing import CliRunner

from pbt.cli.main import cli
from pbt.errors import ConflictError, ValidationError
from pbt.pipeline import run as pipeline_run
from pbt.pipeline.spec import load_spec, parse_spec
from pbt.pipeline.steps import STEPS
from pbt.store import LocalStore
from pbt.store.layout import pipeline_step_key as record_key

TINY = "examples/pipeline/tiny.yaml"


def _data():
    return yaml.safe_load(open(TINY).read())


@pytest.mark.parametrize(
    "change, field",
    [
        ({"name": "Not_A_Label"}, "name"),
        ({"version": 0}, "version"),
        ({"surprise": 1}, "surprise"),
        ({"training": {"base_model": "m", "options": {"run_id": "x"}}}, "training.options"),
        ({"evaluation": {"config": {"models": []}}}, "evaluation.config"),
        ({"pairs": {"filter": "magic"}}, "pairs.filter"),
    ],
)
def test_bad_specs_name_the_field(change, field):
    data = {**_data(), **change}
    with pytest.raises(ValidationError) as err:
        parse_spec(yaml.safe_dump(data), source="spec.yaml")
    assert field in str(err.value) and "spec.yaml" in str(err.value)


def test_steps_resume_from_their_records_and_refuse_out_of_order(tmp_path, monkeypatch):
    store = LocalStore(tmp_path / "store")
    calls: list[str] = []

    def fake(name):
        def work(spec, run, store):
            calls.append(name)
            return {name: f"{name}/{run}"}

        return work

    monkeypatch.setattr(pipeline_run, "WORK", {**pipeline_run.WORK, "trees": fake("trees")})
    with pytest.raises(ValidationError, match="step 'init' of run 'r1' has not finished"):
        pipeline_run.run_step("trees", "store:pipelines/r1/spec.yaml", "r1", store=store)
    assert pipeline_run.run_step("init", TINY, "r1", store=store) == {"spec": "pipelines/r1/spec.yaml"}
    spec_ref = STEPS[1].argv(TINY, "r1")[4]
    assert spec_ref == "store:pipelines/r1/spec.yaml"
    assert pipeline_run.run_step("trees", spec_ref, "r1", store=store) == {"trees": "trees/r1"}
    assert pipeline_run.run_step("trees", spec_ref, "r1", store=store) == {"trees": "trees/r1"}
    assert calls == ["trees"]  # the second call found the record
    assert store.get_json(record_key("r1", "trees"))["outputs"] == {"trees": "trees/r1"}
    # the same run id with another spec is refused, even though init has finished before
    other = tmp_path / "other.yaml"
    other.write_text(yaml.safe_dump({**_data(), "version": 9}))
    with pytest.raises(ConflictError, match="another spec"):
        pipeline_run.run_step("init", str(other), "r1", store=store)
    with pytest.raises(ValidationError, match="DNS label"):
        pipeline_run.run_step("init", TINY, "Bad Run", store=store)


def test_outputs_are_written_for_argo(tmp_path, monkeypatch):
    monkeypatch.setenv("PBT_PIPELINE_OUTPUTS", str(tmp_path / "out"))
    pipeline_run.run_step("init", TINY, "r2", store=LocalStore(tmp_path / "store"))
    assert (tmp_path / "out" / "spec").read_text() == "pipelines/r2/spec.yaml"


def test_render_cli_prints_the_template_and_the_hook():
    out = CliRunner().invoke(cli, ["pipeline", "render", TINY])
    assert out.exit_code == 0, out.output
    docs = list(yaml.safe_load_all(out.output))
    assert [d["kind"] for d in docs] == ["WorkflowTemplate"]
    out = CliRunner().invoke(cli, ["pipeline", "render", TINY, "--hook"])
    docs = list(yaml.safe_load_all(out.output))
    assert [d["kind"] for d in docs] == ["WorkflowTemplate", "Workflow"]
    assert docs[1]["spec"]["arguments"]["parameters"][0]["value"] == load_spec(TINY).default_run
    assert docs[1]["metadata"]["annotations"]["argocd.argoproj.io/hook"] == "PostSync"
    bad = CliRunner().invoke(cli, ["pipeline", "step", "nope", "--spec", TINY, "--run", "r"])
    assert bad.exit_code != 0
