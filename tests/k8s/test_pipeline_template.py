"""The retraining pipeline's WorkflowTemplate: valid against the vendored Argo CRDs, committed
renders are fresh, and its steps are the one step list (pbt.pipeline.steps.steps_for); the optional
parts (trees in an Indexed Job, the adapter volume shared with the agents, the push step) render
only when the spec asks for them, and agree with the chart."""

from __future__ import annotations

import pytest
import yaml
from k8s_checks import CHART, K8S, ROOT, validate_object

from pbt.pipeline.run import local_argvs
from pbt.pipeline.spec import load_spec, parse_spec
from pbt.pipeline.steps import STEPS, steps_for
from pbt.pipeline.workflow import (
    GIT_SECRET_PATH,
    RUN_PARAM,
    SPEC_PATH,
    pytorchjob_manifest,
    render_sync_workflow,
    render_workflow_template,
    to_yaml,
    trees_job_manifest,
)

pytestmark = pytest.mark.k8s

SPECS = sorted((K8S / "pipelines" / "specs").glob("*.yaml"))
EXAMPLE = ROOT / "examples" / "pipeline" / "tiny.yaml"
PRODUCTION_VALUES = K8S / "environments" / "production" / "values.yaml"


def _with_options(path=EXAMPLE, **sections):
    """The spec at `path` with the optional parts switched on (section -> keys merged in)."""
    data = yaml.safe_load(path.read_text())
    for section, keys in sections.items():
        data[section] = {**(data.get(section) or {}), **keys}
    return parse_spec(yaml.safe_dump(data))


FULL = dict(
    trees={"indexed_job": {"shards": 4, "parallelism": 2, "backoff_limit": 3}},
    cluster={"data_claim": "pbt-datasets"},
    serving={"adapter_volume": {"claim": "pbt-adapters", "mount_path": "/mnt/pbt-adapters"}},
    promotion={"git_secret": "pbt-git", "git_remote": "https://git.example.com/pbt/pbt.git"},
)


def _templates(wt):
    return {t["name"]: t for t in wt["spec"]["templates"]}


def _template_argvs(wt):
    """The command line (after `pbt`) of each step the template runs, in order."""
    templates = _templates(wt)
    argvs = []
    for group in templates["pipeline"]["steps"]:
        tpl = templates[group[0]["template"]]
        if "steps" in tpl:  # trees in an Indexed Job: the job, then the step that records it
            tpl = templates[tpl["steps"][-1][0]["template"]]
        if "resource" in tpl:
            manifest = yaml.safe_load(tpl["resource"]["manifest"])
            args = manifest["spec"]["pytorchReplicaSpecs"]["Master"]["template"]["spec"]["containers"][0][
                "args"
            ]
            assert args[:2] == ["-m", "pbt"]
            argvs.append(args[2:])
        else:
            assert tpl["container"]["command"] == ["pbt"]
            argvs.append(tpl["container"]["args"])
    return argvs


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
    assert order == [s.name for s in STEPS] == [s.name for s in steps_for(spec)]
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


@pytest.mark.parametrize("options", [{}, FULL], ids=["plain", "every-option"])
def test_local_runner_and_template_run_the_same_command_lines(options):
    spec = _with_options(**options)
    wt = render_workflow_template(spec)
    assert _template_argvs(wt) == local_argvs(spec, SPEC_PATH, RUN_PARAM)
    assert len(local_argvs(spec, SPEC_PATH, RUN_PARAM)) == len(STEPS) + (1 if options else 0)


def test_every_option_renders_objects_the_crds_and_kubernetes_accept(crd_schemas):
    spec = _with_options(**FULL)
    for obj in (render_workflow_template(spec), render_sync_workflow(spec)):
        assert validate_object(obj, crd_schemas) == [], obj["kind"]
    trees = next(s for s in steps_for(spec) if s.name == "trees")
    assert validate_object(trees_job_manifest(spec, trees, "run-1"), crd_schemas) == []


def test_trees_in_an_indexed_job_then_the_step_that_records_them():
    spec = _with_options(**FULL)
    templates = _templates(render_workflow_template(spec))
    trees = next(s for s in steps_for(spec) if s.name == "trees")
    assert trees.kind == "indexed_job"
    assert [g[0]["template"] for g in templates["trees"]["steps"]] == ["trees-shards", "trees-record"]
    assert [p["name"] for p in templates["trees"]["outputs"]["parameters"]] == ["trees"]
    resource = templates["trees-shards"]["resource"]
    assert resource["successCondition"] == "status.succeeded > 3"  # all 4 shards
    assert resource["failureCondition"] == "status.failed > 3"  # the Job's backoffLimit ran out
    job = yaml.safe_load(resource["manifest"])
    assert job["metadata"]["name"] == f"{RUN_PARAM}-trees"
    assert (job["spec"]["completionMode"], job["spec"]["completions"], job["spec"]["parallelism"]) == (
        "Indexed",
        4,
        2,
    )
    assert job["spec"]["backoffLimit"] == 3
    pod = job["spec"]["template"]["spec"]
    container = pod["containers"][0]
    assert container["args"] == [*trees.argv(SPEC_PATH, RUN_PARAM), "--shard", "$(SHARD_INDEX)/4"]
    env = {e["name"]: e for e in container["env"]}
    assert env["SHARD_INDEX"]["valueFrom"]["fieldRef"]["fieldPath"] == (
        "metadata.annotations['batch.kubernetes.io/job-completion-index']"
    )
    assert {"AWS_ACCESS_KEY_ID", "S3_ENDPOINT"} <= set(env)
    assert {"name": "data", "mountPath": "/data", "readOnly": True} in container["volumeMounts"]
    assert {v["name"] for v in pod["volumes"]} == {m["name"] for m in container["volumeMounts"]}
    record = templates["trees-record"]["container"]
    assert record["args"] == trees.argv(SPEC_PATH, RUN_PARAM)
    assert {"name": "data", "mountPath": "/data", "readOnly": True} in record["volumeMounts"]
    # without indexed_job: one container step, no Job
    plain = _templates(render_workflow_template(load_spec(EXAMPLE)))
    assert "container" in plain["trees"] and "trees-shards" not in plain


def test_the_trees_job_pods_take_their_shard_like_the_charts_generation_job():
    spec = _with_options(**FULL)
    trees = next(s for s in steps_for(spec) if s.name == "trees")
    pod = trees_job_manifest(spec, trees, "run-1")["spec"]["template"]
    generation = (CHART / "templates" / "generation.yaml").read_text()
    env = pod["spec"]["containers"][0]["env"][0]
    assert env["name"] == "SHARD_INDEX" and env["valueFrom"]["fieldRef"]["fieldPath"] in generation
    assert "- $(SHARD_INDEX)/{{ $g.shards }}" in generation and "completionMode: Indexed" in generation
    for label in ("pbt.io/agent-client", "pbt.io/store-client"):
        assert pod["metadata"]["labels"][label] == "true" and f'{label}: "true"' in generation


def test_the_load_step_and_the_agents_mount_the_same_adapter_volume(rendered):
    spec = load_spec(K8S / "pipelines" / "specs" / "llama3-8b.yaml")
    volume = spec.serving.adapter_volume
    assert volume is not None
    wt = render_workflow_template(spec)
    claims = {v["name"]: v for v in wt["spec"]["volumes"]}
    load = _templates(wt)["load"]["container"]
    mount = next(m for m in load["volumeMounts"] if m["mountPath"] == volume.mount_path)
    assert claims[mount["name"]]["persistentVolumeClaim"]["claimName"] == volume.claim
    assert not mount.get("readOnly")  # the step writes the adapters
    for name, tpl in _templates(wt).items():  # no other step mounts it
        if name != "load" and "container" in tpl:
            assert mount["name"] not in {m["name"] for m in tpl["container"]["volumeMounts"]}, name
    # the agent of the promoted role, which spec serving.agent names, mounts it at the same path
    isvc = next(
        o
        for o in rendered["env-production"]
        if o["kind"] == "InferenceService"
        and o["metadata"]["labels"]["pbt.io/agent-role"] == spec.promotion.role
    )
    assert (
        spec.serving.agent
        == f"http://{isvc['metadata']['name']}-predictor.{spec.cluster.namespace}.svc.cluster.local"
    )
    predictor = isvc["spec"]["predictor"]
    pvcs = {
        v["name"]: v["persistentVolumeClaim"] for v in predictor["volumes"] if "persistentVolumeClaim" in v
    }
    agent_mount = next(m for m in predictor["model"]["volumeMounts"] if m["mountPath"] == volume.mount_path)
    assert pvcs[agent_mount["name"]] == {"claimName": volume.claim, "readOnly": True}
    assert agent_mount["readOnly"] is True
    # the chart creates that claim, ReadWriteMany (the step writes while the agents read)
    claim = next(o for o in rendered["env-production"] if o["kind"] == "PersistentVolumeClaim")
    assert claim["metadata"]["name"] == volume.claim
    assert claim["spec"]["accessModes"] == ["ReadWriteMany"]
    env = {e["name"]: e.get("value") for e in predictor["model"]["env"]}
    assert env["VLLM_ALLOW_RUNTIME_LORA_UPDATING"] == "True"
    assert "--enable-lora" in predictor["model"]["args"]


def test_agents_mount_no_adapter_volume_unless_configured(rendered):
    for obj in rendered["default"]:
        if obj["kind"] == "InferenceService":
            predictor = obj["spec"]["predictor"]
            assert "pipeline-adapters" not in {v["name"] for v in predictor.get("volumes", [])}


def test_the_push_step_renders_only_with_a_git_secret(crd_schemas):
    plain = render_workflow_template(load_spec(EXAMPLE))
    assert "push" not in _templates(plain)
    assert all(v["name"] != "git" for v in plain["spec"]["volumes"])
    spec = _with_options(promotion=FULL["promotion"])
    wt = render_workflow_template(spec)
    assert validate_object(wt, crd_schemas) == []
    templates = _templates(wt)
    assert templates["pipeline"]["steps"][-1] == [{"name": "push", "template": "push"}]
    push = templates["push"]["container"]
    assert push["args"] == [
        "pipeline",
        "step",
        "push",
        "--spec",
        f"store:pipelines/{RUN_PARAM}/spec.yaml",
        "--run",
        RUN_PARAM,
    ]
    secret = next(v for v in wt["spec"]["volumes"] if v["name"] == "git")
    assert secret["secret"]["secretName"] == "pbt-git"
    assert {"name": "git", "mountPath": GIT_SECRET_PATH, "readOnly": True} in push["volumeMounts"]
    env = {e["name"]: e.get("value") for e in push["env"]}
    # a read-only root: git's HOME (its global config, if ever written) is the writable /tmp emptyDir
    assert env["HOME"] == "/tmp" and {"name": "tmp", "mountPath": "/tmp"} in push["volumeMounts"]
    assert {"name": "tmp", "emptyDir": {}} in wt["spec"]["volumes"]
    assert push["securityContext"]["readOnlyRootFilesystem"] is True
    assert env["GIT_CONFIG_KEY_0"] == "credential.helper"
    assert env["GIT_CONFIG_VALUE_0"] == f"store --file={GIT_SECRET_PATH}/credentials"
    for name, tpl in templates.items():  # only the push step sees the credential
        if name != "push" and "container" in tpl:
            assert "git" not in {m["name"] for m in tpl["container"]["volumeMounts"]}, name
            assert "GIT_CONFIG_COUNT" not in {e["name"] for e in tpl["container"]["env"]}, name


def test_the_pipeline_role_may_apply_and_watch_what_its_resource_steps_create():
    role = next(
        d for d in yaml.safe_load_all((K8S / "pipelines" / "rbac.yaml").read_text()) if d["kind"] == "Role"
    )
    wt = render_workflow_template(_with_options(**FULL))
    kinds = [yaml.safe_load(t["resource"]["manifest"]) for t in wt["spec"]["templates"] if "resource" in t]
    assert sorted(k["kind"] for k in kinds) == ["Job", "PyTorchJob"]
    for obj in kinds:
        group = obj["apiVersion"].rpartition("/")[0]
        resource = obj["kind"].lower() + "s"
        assert any(
            group in r["apiGroups"]
            and resource in r["resources"]
            and {"create", "get", "watch", "patch"} <= set(r["verbs"])
            for r in role["rules"]
        ), obj["kind"]


@pytest.mark.parametrize(
    "volume, bad",
    [
        ({"mountPath": "mnt/x"}, "mountPath"),
        ({"claimName": "Not_A_Name"}, "claimName"),
        ({"size": 1}, "size"),
    ],
)
def test_the_chart_schema_refuses_a_bad_adapter_volume(volume, bad):
    import json

    import jsonschema

    schema = json.loads((CHART / "values.schema.json").read_text())
    errors = list(
        jsonschema.validators.validator_for(schema)(schema).iter_errors({"agents": {"adapterVolume": volume}})
    )
    assert errors and any(bad in e.message or bad in list(e.absolute_path) for e in errors)
