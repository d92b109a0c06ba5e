"""The push step (on when promotion.git_secret is set) and `pbt promote --push`, against a bare
repository behind a file:// remote: the values change is committed on promote/RUN and pushed."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from pbt.cli.main import cli
from pbt.errors import ConflictError, ValidationError
from pbt.pipeline import run as pipeline_run
from pbt.store import LocalStore
from pbt.store.layout import pipeline_step_key as record_key
from pbt.store.layout import verdict_key

ROOT = Path(__file__).resolve().parents[2]
TINY = ROOT / "examples" / "pipeline" / "tiny.yaml"
VALUES = "k8s/environments/production/values.yaml"
SPEC = "store:pipelines/r1/spec.yaml"
IDENTITY = ["-c", "user.name=t", "-c", "user.email=t@example.com"]


def git(*args: str, cwd: Path) -> str:
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True).stdout


@pytest.fixture
def remote(tmp_path) -> str:
    """file:// URL of a bare repository whose main branch holds the production values file."""
    bare, work = tmp_path / "remote.git", tmp_path / "seed"
    git("init", "--bare", "-q", "--initial-branch=main", str(bare), cwd=tmp_path)
    git("init", "-q", "--initial-branch=main", str(work), cwd=tmp_path)
    (work / VALUES).parent.mkdir(parents=True)
    (work / VALUES).write_text((ROOT / VALUES).read_text())
    git("add", ".", cwd=work)
    git(*IDENTITY, "commit", "-qm", "base", cwd=work)
    git("push", "-q", str(bare), "HEAD:refs/heads/main", cwd=work)
    return f"file://{bare}"


def _verdict(passed: bool = True) -> dict:
    return {
        "run": "r1",
        "passed": passed,
        "failed_gates": [] if passed else ["balanced_accuracy"],
        "eval_id": "r1-eval",
        "promotion": {
            "values_file": VALUES,
            "role": "b",
            "adapter_name": "dpo-r1",
            "adapter_path": "training/r1-dpo/adapter",
            "branch_prefix": "promote/",
        },
    }


def _store_at_push(tmp_path: Path, promotion: dict, passed: bool = True) -> LocalStore:
    data = yaml.safe_load(TINY.read_text())
    data["promotion"] = {**data["promotion"], **promotion}
    spec_file = tmp_path / "spec.yaml"
    spec_file.write_text(yaml.safe_dump(data))
    store = LocalStore(tmp_path / "store")
    pipeline_run.run_step("init", str(spec_file), "r1", store=store)
    store.put_json(verdict_key("r1"), _verdict(passed))
    for step in ("trees", "prefs", "train", "load", "evaluate", "gate", "propose"):
        outputs = {"verdict": verdict_key("r1")} if step == "gate" else {}
        store.put_json(record_key("r1", step), {"outputs": outputs})
    return store


def _branch_values(remote: str, branch: str) -> str:
    return git("show", f"{branch}:{VALUES}", cwd=Path(remote.removeprefix("file://")))


def test_the_push_step_commits_the_change_on_a_branch_of_the_remote(tmp_path, remote):
    store = _store_at_push(tmp_path, {"git_secret": "pbt-git", "git_remote": remote})
    assert pipeline_run.run_step("push", SPEC, "r1", store=store) == {"branch": "promote/r1"}
    pushed = yaml.safe_load(_branch_values(remote, "promote/r1"))["agents"]["roles"]["b"]
    assert pushed["servedAdapter"] == "dpo-r1"
    assert {"name": "dpo-r1", "path": "training/r1-dpo/adapter"} in pushed["adapters"]
    assert _branch_values(remote, "main") == (ROOT / VALUES).read_text()  # main is untouched
    log = git("log", "-1", "--format=%an|%s", "promote/r1", cwd=Path(remote.removeprefix("file://")))
    assert log.strip() == "pbt pipeline|promote dpo-r1 (run r1, eval r1-eval)"
    assert store.get_json(record_key("r1", "push"))["outputs"] == {"branch": "promote/r1"}


def test_the_push_step_refuses_a_failed_verdict_and_pushes_nothing(tmp_path, remote):
    store = _store_at_push(tmp_path, {"git_secret": "pbt-git", "git_remote": remote}, passed=False)
    with pytest.raises(ConflictError, match="failing gates: balanced_accuracy"):
        pipeline_run.run_step("push", SPEC, "r1", store=store)
    heads = git("branch", "--list", cwd=Path(remote.removeprefix("file://")))
    assert "promote/r1" not in heads


def test_the_push_step_is_off_without_a_git_secret(tmp_path, remote):
    store = _store_at_push(tmp_path, {})
    with pytest.raises(ValidationError, match="step 'push' is off"):
        pipeline_run.run_step("push", SPEC, "r1", store=store)


def test_an_unreachable_remote_is_a_clear_error(tmp_path):
    missing = f"file://{tmp_path}/nowhere.git"
    store = _store_at_push(tmp_path, {"git_secret": "pbt-git", "git_remote": missing})
    with pytest.raises(ValidationError, match=f"git clone of {missing} failed"):
        pipeline_run.run_step("push", SPEC, "r1", store=store)


def test_a_git_secret_needs_a_remote(tmp_path):
    with pytest.raises(ValidationError, match="git_remote"):
        _store_at_push(tmp_path, {"git_secret": "pbt-git"})


def test_pbt_promote_push_in_a_checkout_pushes_to_a_file_remote(tmp_path, remote, monkeypatch):
    checkout = tmp_path / "checkout"
    git("clone", "-q", remote, str(checkout), cwd=tmp_path)
    git("config", "user.name", "t", cwd=checkout)
    git("config", "user.email", "t@example.com", cwd=checkout)
    verdict = tmp_path / "verdict.json"
    verdict.write_text(json.dumps(_verdict()))
    monkeypatch.chdir(checkout)
    monkeypatch.setenv("PBT_GIT_REMOTE", remote)
    out = CliRunner().invoke(cli, ["promote", str(verdict), "--push"])
    assert out.exit_code == 0, out.output
    assert "pushed branch promote/r1" in out.output and "+      servedAdapter: dpo-r1" in out.output
    assert "servedAdapter: dpo-r1" in _branch_values(remote, "promote/r1")


# ---------------------------------------------------------------- retried pushes


def _remote_head(remote: str, branch: str) -> str:
    return git("rev-parse", f"refs/heads/{branch}", cwd=Path(remote.removeprefix("file://"))).strip()


def test_a_retried_push_step_after_a_lost_record_says_already_pushed(tmp_path, remote, caplog):
    store = _store_at_push(tmp_path, {"git_secret": "pbt-git", "git_remote": remote})
    assert pipeline_run.run_step("push", SPEC, "r1", store=store) == {"branch": "promote/r1"}
    first = _remote_head(remote, "promote/r1")
    store.delete(record_key("r1", "push"))  # the pod died after pushing, before recording
    assert pipeline_run.run_step("push", SPEC, "r1", store=store) == {"branch": "promote/r1"}
    assert _remote_head(remote, "promote/r1") == first  # nothing new pushed
    assert f"branch promote/r1 of {remote} already pushed (commit {first})" in caplog.text
    assert store.get_json(record_key("r1", "push"))["outputs"] == {"branch": "promote/r1"}


def _checkout(tmp_path: Path, remote: str, name: str) -> Path:
    checkout = tmp_path / name
    git("clone", "-q", remote, str(checkout), cwd=tmp_path)
    git("config", "user.name", "t", cwd=checkout)
    git("config", "user.email", "t@example.com", cwd=checkout)
    return checkout


def _promote_push(tmp_path: Path, checkout: Path, remote: str, monkeypatch, verdict: dict | None = None):
    ref = tmp_path / "verdict.json"
    ref.write_text(json.dumps(verdict or _verdict()))
    monkeypatch.chdir(checkout)
    monkeypatch.setenv("PBT_GIT_REMOTE", remote)
    return CliRunner().invoke(cli, ["promote", str(ref), "--push"])


def test_pbt_promote_push_again_from_a_fresh_checkout_is_already_pushed(tmp_path, remote, monkeypatch):
    out = _promote_push(tmp_path, _checkout(tmp_path, remote, "one"), remote, monkeypatch)
    assert out.exit_code == 0, out.output
    first = _remote_head(remote, "promote/r1")
    assert f"pushed branch promote/r1 (commit {first})" in out.output
    again = _promote_push(tmp_path, _checkout(tmp_path, remote, "two"), remote, monkeypatch)
    assert again.exit_code == 0, again.output
    assert f"branch promote/r1 already pushed (commit {first}); nothing to push" in again.output
    assert _remote_head(remote, "promote/r1") == first


def test_a_remote_branch_holding_another_change_is_refused_naming_both_commits(tmp_path, remote, monkeypatch):
    other = dict(_verdict(), promotion={**_verdict()["promotion"], "adapter_path": "training/other/adapter"})
    out = _promote_push(tmp_path, _checkout(tmp_path, remote, "one"), remote, monkeypatch, other)
    assert out.exit_code == 0, out.output
    theirs = _remote_head(remote, "promote/r1")
    checkout = _checkout(tmp_path, remote, "two")
    again = _promote_push(tmp_path, checkout, remote, monkeypatch)
    assert again.exit_code != 0
    ours = git("rev-parse", "HEAD", cwd=checkout).strip()
    message = " ".join(again.output.split())
    assert f"branch promote/r1 of {remote} already exists at commit {theirs[:12]}" in message
    assert f"whose {VALUES} differs from this run's commit {ours[:12]}; not pushing" in message
    assert _remote_head(remote, "promote/r1") == theirs  # untouched


def test_a_remote_branch_without_the_values_file_is_refused(tmp_path, remote, monkeypatch):
    other = _checkout(tmp_path, remote, "other")
    git("checkout", "-qb", "promote/r1", cwd=other)
    git("rm", "-q", VALUES, cwd=other)
    git("commit", "-qm", "unrelated", cwd=other)
    git("push", "-q", "origin", "promote/r1", cwd=other)
    out = _promote_push(tmp_path, _checkout(tmp_path, remote, "two"), remote, monkeypatch)
    assert out.exit_code != 0
    assert f"which has no {VALUES}, unlike this run's commit" in " ".join(out.output.split())


@pytest.mark.parametrize(
    ("remote", "shown"),
    [
        ("https://x-access-token:ghp_secret@github.com/org/repo.git", "https://***@github.com/org/repo.git"),
        ("https://user@git.example/repo.git", "https://***@git.example/repo.git"),
        ("https://github.com/org/repo.git", "https://github.com/org/repo.git"),
        ("file:///tmp/remote.git", "file:///tmp/remote.git"),
    ],
)
def test_a_remote_is_shown_without_its_credential(remote, shown):
    from pbt.pipeline.promote import without_credentials

    assert without_credentials(remote) == shown
