"""`pbt trees build` (local and through a server) and `pbt debate run`, with scripted agents from files."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from pbt.cli.main import cli
from pbt.net import free_port, wait_for_port
from pbt.store import LocalStore

pytestmark = pytest.mark.integration


def write_config(tmp_path: Path, nq: Path, **store) -> Path:
    (tmp_path / "a.json").write_text(json.dumps({"moon": "1972"}))
    (tmp_path / "b.json").write_text(json.dumps({"moon": "1969"}))
    path = tmp_path / "run.yaml"
    path.write_text(
        "agents:\n"
        f"  a: {{endpoint: 'scripted:{tmp_path / 'a.json'}'}}\n"
        f"  b: {{endpoint: 'scripted:{tmp_path / 'b.json'}'}}\n"
        "extraction: {mode: rules}\n"
        "tree: {max_turns: 3}\n"
        f"dataset: {{format: nq_open, path: '{nq}'}}\n"
        f"store: {{url: '{store.get('url', tmp_path / 'store')}'}}\n"
    )
    return path


def test_trees_build_local_with_shard_and_resume(data_dir: Path, tmp_path: Path) -> None:
    config = write_config(tmp_path, data_dir / "nq_open" / "NQ-open.dev.jsonl")
    runner = CliRunner()
    args = [
        "trees",
        "build",
        "--config",
        str(config),
        "--local",
        "--limit",
        "6",
        "--shard",
        "1/2",
        "--job-id",
        "cli",
    ]
    result = runner.invoke(cli, args)
    assert result.exit_code == 0, result.output
    assert f"3 trees in file://{tmp_path / 'store'}/trees/cli/" in result.output
    keys = sorted(LocalStore(tmp_path / "store").list("trees/cli/"))
    assert keys == [
        "trees/cli/NQ-open-000001.json",
        "trees/cli/NQ-open-000003.json",
        "trees/cli/NQ-open-000005.json",
        "trees/cli/_manifests/shard-1-of-2.json",
    ]
    again = runner.invoke(cli, args)
    assert again.exit_code == 0 and "3 trees in" in again.output
    bad = runner.invoke(cli, [*args[:-4], "--shard", "2/2"])
    assert bad.exit_code != 0 and "shard" in bad.output


def test_trees_build_through_the_orchestrator(data_dir: Path, tmp_path: Path) -> None:
    config = write_config(tmp_path, data_dir / "nq_open" / "NQ-open.dev.jsonl")
    port = free_port()
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "pbt",
            "serve",
            "orchestrator",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--store",  # the config names the same store
            str(tmp_path / "store"),
            "--allow-local-backends",  # scripted: agent specs
            "--data-root",  # the dataset file
            str(data_dir),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for_port(port, timeout=60, proc=server)
        address = f"127.0.0.1:{port}"
        result = CliRunner().invoke(
            cli,
            [
                "trees",
                "build",
                "--config",
                str(config),
                "--orchestrator",
                address,
                "--limit",
                "4",
                "--job-id",
                "remote",
            ],
        )
        assert result.exit_code == 0, result.output
        assert "4 trees in" in result.output and "manifest:" in result.output
        assert (
            len([k for k in LocalStore(tmp_path / "store").list("trees/remote/") if "_manifests" not in k])
            == 4
        )
        # a dataset only this side can read, sent inline: same question ids as a server-side file
        moved = tmp_path / "client-only.yaml"
        moved.write_text(config.read_text().replace("nq_open, path:", "nq_open, name: NQ-open, path:"))
        sent = CliRunner().invoke(
            cli,
            [
                "trees",
                "build",
                "--config",
                str(moved),
                "--orchestrator",
                address,
                "--limit",
                "2",
                "--job-id",
                "sent",
                "--send-questions",
            ],
        )
        assert sent.exit_code == 0, sent.output
        keys = sorted(k for k in LocalStore(tmp_path / "store").list("trees/sent/") if "_manifests" not in k)
        assert keys == ["trees/sent/NQ-open-000000.json", "trees/sent/NQ-open-000001.json"]
        # a request the server rejects: the CLI reports the status and the field
        config.write_text(config.read_text().replace("nq_open, path:", "nq_open, name: x, path:"))
        conflict = CliRunner().invoke(
            cli, ["trees", "build", "--config", str(config), "--orchestrator", address, "--job-id", "remote"]
        )
        assert conflict.exit_code != 0 and "FAILED_PRECONDITION" in conflict.output
    finally:
        server.terminate()
        server.wait(timeout=30)


def test_debate_run_json(tmp_path: Path) -> None:
    (tmp_path / "s.json").write_text(json.dumps({"capital of France": "Paris"}))
    (tmp_path / "w.json").write_text(json.dumps({"capital of France": "Lyon"}))
    result = CliRunner().invoke(
        cli,
        [
            "debate",
            "run",
            "--question",
            "What is the capital of France?",
            "--gold",
            "Paris",
            "--agent",
            f"weak=scripted:{tmp_path / 'w.json'}?persuasion=always",
            "--agent",
            f"strong=scripted:{tmp_path / 's.json'}",
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["final_answers"] == {"weak": "Paris", "strong": "Paris"} and data["agreed"]
    assert [t["round"] for t in data["turns"]] == [0, 0, 1]
