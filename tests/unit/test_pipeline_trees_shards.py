"""The trees step in shards (the pods of the Indexed Job, `--shard i/N`), then unsharded: the
shards build the trees, the step that follows finds them all, builds nothing and records them."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from pbt.cli.main import cli
from pbt.errors import ValidationError
from pbt.pipeline import run as pipeline_run
from pbt.pipeline.spec import parse_spec
from pbt.store import LocalStore
from pbt.store.layout import pipeline_step_key as record_key

TINY = "examples/pipeline/tiny.yaml"
SPEC = "store:pipelines/r1/spec.yaml"


def _spec_file(tmp_path: Path, **trees) -> str:
    data = yaml.safe_load(Path(TINY).read_text())
    data["trees"].update(trees)
    path = tmp_path / "spec.yaml"
    path.write_text(parse_spec(yaml.safe_dump(data)).to_yaml())
    return str(path)


def _trees(store: LocalStore) -> set[str]:
    return {k for k in store.list("trees/r1-trees/") if "/_manifests/" not in k}


def test_shards_build_the_trees_and_the_step_records_them_building_nothing(tmp_path):
    # an orchestrator address nobody listens on: with indexed_job the step must not dial it
    data = yaml.safe_load(Path(TINY).read_text())
    data["trees"]["indexed_job"] = {"shards": 2}
    data["cluster"]["orchestrator"] = "127.0.0.1:9"
    spec_file = tmp_path / "spec.yaml"
    spec_file.write_text(yaml.safe_dump(data))
    store = LocalStore(tmp_path / "store")
    pipeline_run.run_step("init", str(spec_file), "r1", store=store)
    assert pipeline_run.run_step("trees", SPEC, "r1", store=store, shard="0/2") == {"trees": "r1-trees"}
    first = _trees(store)
    assert first and not store.exists(record_key("r1", "trees"))  # a shard records nothing
    pipeline_run.run_step("trees", SPEC, "r1", store=store, shard="1/2")
    assert _trees(store) > first and not store.exists(record_key("r1", "trees"))
    out = pipeline_run.run_step("trees", SPEC, "r1", store=store)
    assert out == {"trees": "r1-trees"} and store.get_json(record_key("r1", "trees"))["outputs"] == out
    manifest = store.get_json("trees/r1-trees/_manifests/shard-0-of-1.json")
    assert manifest["counts"]["trees_built_this_run"] == 0 and manifest["status"] == "complete"
    # the same trees as one unsharded run
    whole = LocalStore(tmp_path / "whole")
    pipeline_run.run_step("init", TINY, "r1", store=whole)
    pipeline_run.run_step("trees", SPEC, "r1", store=whole)
    assert _trees(store) == _trees(whole) and len(_trees(whole)) == 6 * 4


def test_shard_is_for_the_trees_step_only_and_must_be_i_of_n(tmp_path):
    store = LocalStore(tmp_path / "store")
    pipeline_run.run_step("init", _spec_file(tmp_path, indexed_job={"shards": 2}), "r1", store=store)
    with pytest.raises(ValidationError, match="--shard is for the trees step, not 'prefs'"):
        pipeline_run.run_step("prefs", SPEC, "r1", store=store, shard="0/2")
    with pytest.raises(ValidationError, match=r"invalid shard '2/2'.*--shard|--shard.*invalid shard '2/2'"):
        pipeline_run.run_step("trees", SPEC, "r1", store=store, shard="2/2")


def test_the_cli_passes_the_shard(tmp_path, monkeypatch):
    seen = {}

    def fake(name, spec_ref, run, store=None, *, shard=None):
        seen.update(name=name, spec_ref=spec_ref, run=run, shard=shard)
        return {"trees": f"{run}-trees"}

    monkeypatch.setattr(pipeline_run, "run_step", fake)
    out = CliRunner().invoke(
        cli, ["pipeline", "step", "trees", "--spec", SPEC, "--run", "r1", "--shard", "1/4"]
    )
    assert out.exit_code == 0, out.output
    assert seen == {"name": "trees", "spec_ref": SPEC, "run": "r1", "shard": "1/4"}


@pytest.mark.parametrize(
    "indexed_job, message",
    [({"shards": 0}, "trees.indexed_job.shards"), ({"shards": 2, "extra": 1}, "trees.indexed_job.extra")],
)
def test_a_bad_indexed_job_names_the_field(tmp_path, indexed_job, message):
    data = yaml.safe_load(Path(TINY).read_text())
    data["trees"]["indexed_job"] = indexed_job
    with pytest.raises(ValidationError, match=message.replace(".", r"\.")):
        parse_spec(yaml.safe_dump(data), source="spec.yaml")


def test_without_shards_the_step_builds_every_tree_itself_as_the_local_runner_does(tmp_path):
    store = LocalStore(tmp_path / "store")
    pipeline_run.run_step("init", _spec_file(tmp_path, indexed_job={"shards": 3}), "r1", store=store)
    assert pipeline_run.run_step("trees", SPEC, "r1", store=store) == {"trees": "r1-trees"}
    assert len(_trees(store)) == 6 * 4
    manifest = store.get_json("trees/r1-trees/_manifests/shard-0-of-1.json")
    assert manifest["counts"]["trees_built_this_run"] == 6 * 4
