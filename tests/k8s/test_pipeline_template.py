"""The retraining pipeline's WorkflowTemplate: valid against the vendored Argo CRDs, committed
renders are fresh, and its steps are the one step list (pbt.pipeline.steps.STEPS)."""

from __future__ import annotations

import pytest
import yaml
from k8s_checks import K8S, ROOT, validate_object

from pbt.pipeline.spec import load_spec
from pbt.pipeline.steps import STEPS
from pbt.pipeline.workflow import (
    RUN_PARAM,
    SPEC_PATH,
    pytorchjob_manifest,
    render_sync_workflow,
    render_workflow_template,
    to_yaml,
)

pytestmark = pytest.mark.k8s

SPECS = sorted((K8S / "pipelines" / "specs").glob("*.yaml"))
EXAMPLE = ROOT / "examples" / "pipeline" / "tiny.yaml"


@pytest.mark.parametrize("path", [*SPECS, EXAMPLE], ids=lambda p: p.name)
def test_rendered_objects_validate_against_the_crds(crd_schemas, path):
    spec = load_spec(path)
    for obj in (render_workflow_template(spec), render_sync_workflow(spec)):
        assert validate_object(obj, crd_schemas) == [], obj["kind"]
    job = pytorchjob_manifest(spec, next(s for s in STEPS if s.kind == "pytorchjob"), "run-1")
    assert validate_object(job, crd_schemas) == []


@pytest.mark.parametrize("path", SPECS, ids=lambda p: p.name)
def test_committed_template_equals_a_fresh_render(path):
    spec = load_spec(path)
    committed = (K8S / "pipelines" / f"pbt-retrain-{path.stem}.yaml").read_text()
    assert committed == to_yaml(render_workflow_template(spec), render_sync_workflow(spec)), (
        f"stale: run `make pipeline-templates` for {path.name}"
    )
    listed = yaml.safe_load((K8S / "pipelines" / "kustomization.yaml").read_text())["resources"]
    assert f"pbt-retrain-{path.stem}.yaml" in listed


def test_template_runs_the_step_list_in_order_with_its_arguments():
    spec = load_spec(SPECS[0])
    wt = render_workflow_template(spec)
    templates = {t["name"]: t for t in wt["spec"]["templates"]}
    order = [group[0]["template"] for group in templates["pipeline"]["steps"]]
    assert order == [s.name for s in STEPS]
    for step in STEPS:
        tpl = templates[step.name]
        if step.kind == "pytorchjob":
            manifest = yaml.safe_load(tpl["resource"]["manifest"])
            assert tpl["resource"]["successCondition"] and tpl["resource"]["failureCondition"]
            for replica in manifest["spec"]["pytorchReplicaSpecs"].values():
                args = replica["template"]["spec"]["containers"][0]["args"]
                assert args == ["-m", "pbt", *step.argv(SPEC_PATH, RUN_PARAM)]
        else:
            assert tpl["container"]["command"] == ["pbt"]
            assert tpl["container"]["args"] == step.argv(SPEC_PATH, RUN_PARAM)
            outs = [p["name"] for p in tpl["outputs"]["parameters"]]
            assert outs == list(step.outputs)
    # the spec travels with init only; later steps read it from the store
    assert yaml.safe_load(templates["init"]["inputs"]["artifacts"][0]["raw"]["data"]) == spec.model_dump(
        mode="json"
    )
