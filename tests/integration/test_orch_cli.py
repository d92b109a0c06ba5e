"""`pbt trees build` (local and through a server) and `pbt debate run`, with scripted agents from files."""

from __future__ import annotations

import asyncio
import json
import threading
from pathlib import Path

import pytest
from click.testing import CliRunner

from pbt.cli.main import cli
from pbt.store import LocalStore
from services.orchestrator.server import start_orchestrator

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


def test_trees_build_local_with_shard_and_resume(shared_dir: Path, tmp_path: Path) -> None:
    config = write_config(tmp_path, shared_dir / "data" / "nq_open" / "NQ-open.dev.jsonl")
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


def test_trees_build_through_the_orchestrator(shared_dir: Path, tmp_path: Path) -> None:
    config = write_config(tmp_path, shared_dir / "data" / "nq_open" / "NQ-open.dev.jsonl")
    loop = asyncio.new_event_loop()
    started = threading.Event()
    holder: dict = {}

    async def serve():
        holder["server"], holder["port"] = await start_orchestrator(store=LocalStore(tmp_path / "default"))
        started.set()
        await holder["server"].wait_for_termination()

    thread = threading.Thread(target=lambda: loop.run_until_complete(serve()), daemon=True)
    thread.start()
    assert started.wait(30)
    try:
        result = CliRunner().invoke(
            cli,
            [
                "trees",
                "build",
                "--config",
                str(config),
                "--orchestrator",
                f"127.0.0.1:{holder['port']}",
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
        bad = tmp_path / "bad.yaml"
        bad.write_text(config.read_text().replace("max_turns: 3", "max_turns: 0"))
        failed = CliRunner().invoke(
            cli, ["trees", "build", "--config", str(bad), "--orchestrator", f"127.0.0.1:{holder['port']}"]
        )
        assert failed.exit_code != 0 and "tree.max_turns" in failed.output
    finally:
        asyncio.run_coroutine_threadsafe(holder["server"].stop(0), loop).result(10)
        thread.join(10)
        loop.close()


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
