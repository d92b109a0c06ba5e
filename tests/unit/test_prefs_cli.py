"""`pbt prefs` and `pbt trees` through click's CliRunner (the real command objects)."""

from __future__ import annotations

import copy
import hashlib
import json
from pathlib import Path

import prefs_trees as T
import pytest
from click.testing import CliRunner

from pbt.cli.main import cli
from pbt.prefs.dataset import manifest_path

REFS = [T.RESIST, T.ACCEPT, T.LEVELS, T.NOTHING, T.ALL_AGREE, T.NONE_NONE]


@pytest.fixture()
def ref_file(tmp_path: Path) -> Path:
    path = tmp_path / "trees.reference.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in REFS))
    return path


def run(*args: str):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def records(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_prefs_labelled_writes_pairs_manifest_and_summary(ref_file: Path, tmp_path: Path):
    out = tmp_path / "pairs.jsonl"
    result = run(
        "prefs",
        "--trees",
        str(ref_file),
        "--format",
        "reference",
        "--mode",
        "labelled",
        "--seed",
        "3",
        "--out",
        str(out),
    )
    assert result.exit_code == 0, result.output
    rows = records(out)
    assert {(r["tree_id"], r["chosen_node"], r["rejected_node"], r["code"]) for r in rows} == (
        T.RESIST_EXPECTED | T.ACCEPT_EXPECTED | {("t-levels", "12", "11", "accept")}
    )
    for r in rows:
        assert r["chosen"][0]["role"] == r["rejected"][0]["role"] == "assistant"
        assert r["prompt"][0]["role"] == "user" and "Question: Q?" in r["prompt"][0]["content"]
        assert "NEVER CHANGE" not in json.dumps(r["prompt"])  # persona prompts never leak into pairs
        assert r["prompt"][-1]["role"] == "user"  # Q, the other agent's persuasion turn
        assert r["split"] in ("train", "dev", "test")
    manifest = json.loads(manifest_path(out).read_text())
    assert manifest["mode"] == "labelled" and manifest["seed"] == 3
    assert manifest["inputs"][0]["sha256"] == hashlib.sha256(ref_file.read_bytes()).hexdigest()
    assert manifest["output"]["sha256"] == hashlib.sha256(out.read_bytes()).hexdigest()
    assert manifest["counts"]["trees_read"] == 6 and manifest["counts"]["trees_dropped_all_agree"] == 1
    assert manifest["counts"]["pairs_found"] == {"resist": 2, "accept": 4, "none": 4}
    assert "dropped (all agree)" in result.output and "pairs found" in result.output


def test_prefs_prompt_of_a_level3_pair(ref_file: Path, tmp_path: Path):
    out = tmp_path / "pairs.jsonl"
    # --eval-filter none: this pair may fall in dev/test, which are filtered (by rules) by default
    run(
        "prefs",
        *("--trees", str(ref_file), "--format", "reference", "--mode", "resist"),
        *("--eval-filter", "none", "--out", str(out)),
    )
    row = next(r for r in records(out) if r["chosen_node"] == "7")
    # B answers: instruction + A's level-0 turn (merged user message), B's level-1 turn, A's level-2 turn
    assert [m["role"] for m in row["prompt"]] == ["user", "assistant", "user"]
    assert row["prompt"][0]["content"].endswith("Question: Q?\n\nturn 1 by A: A=London B=None.")
    assert row["prompt"][1]["content"] == "turn 2 by B: A=London B=Paris."
    assert row["prompt"][2]["content"] == "turn 5 by A: A=Disagree B=Paris."
    assert row["chosen"] == [{"role": "assistant", "content": "turn 7 by B: A=London B=Paris."}]
    assert row["rejected"] == [{"role": "assistant", "content": "turn 8 by B: A=London B=London."}]
    assert (row["chosen_score"], row["rejected_score"], row["agent"], row["gold"]) == (1, 0, 1, ["paris"])


def test_prefs_pbt_mode_is_balanced(ref_file: Path, tmp_path: Path):
    out = tmp_path / "pbt.jsonl"
    result = run(
        "prefs",
        "--trees",
        str(ref_file),
        "--format",
        "reference",
        "--mode",
        "pbt",
        "--split",
        "1,0,0",
        "--out",
        str(out),
    )
    assert result.exit_code == 0, result.output
    codes = [r["code"] for r in records(out)]
    assert codes.count("accept") == codes.count("resist") == 2
    assert json.loads(manifest_path(out).read_text())["settings"]["pbt_balance"] == "overall"


def test_prefs_pbt_balance_option(ref_file: Path, tmp_path: Path):
    out = tmp_path / "pbt.jsonl"
    base = ["prefs", "--trees", str(ref_file), "--format", "reference", "--mode", "pbt", "--split", "1,0,0"]
    result = run(*base, "--out", str(out), "--pbt-balance", "position")
    assert result.exit_code == 0, result.output
    assert json.loads(manifest_path(out).read_text())["settings"]["pbt_balance"] == "position"
    codes = [r["code"] for r in records(out)]
    assert codes.count("accept") == codes.count("resist") == 2
    for name, agent in (("a", 0), ("b", 1)):
        only = tmp_path / f"{name}.jsonl"
        result = run(*base[:-4], "--mode", "all", "--out", str(only), "--pair-agents", name)
        assert result.exit_code == 0, result.output
        assert records(only) and {r["agent"] for r in records(only)} == {agent}
        assert json.loads(manifest_path(only).read_text())["settings"]["pair_agents"] == name
    bad = CliRunner().invoke(cli, [*base, "--out", str(tmp_path / "x.jsonl"), "--pbt-balance", "level"])
    assert bad.exit_code == 2 and "--pbt-balance" in bad.output
    assert not (tmp_path / "x.jsonl").exists()


def test_prefs_bad_line_fails_without_output(ref_file: Path, tmp_path: Path):
    bad = copy.deepcopy(T.RESIST)
    bad["data"][4]["parent"] = 99
    path = tmp_path / "bad.jsonl"
    path.write_text(ref_file.read_text() + json.dumps(bad) + "\n")
    out = tmp_path / "pairs.jsonl"
    result = CliRunner().invoke(
        cli, ["prefs", "--trees", str(path), "--format", "reference", "--mode", "labelled", "--out", str(out)]
    )
    assert result.exit_code != 0
    assert (
        f"{path}:7" in result.output
        and "data[4].parent" in result.output
        and "dangling parent" in result.output
    )
    assert not out.exists() and not manifest_path(out).exists()
    # nothing half-written either (no temporary file left behind)
    assert {p.name for p in tmp_path.iterdir()} == {"trees.reference.jsonl", "bad.jsonl"}


def test_prefs_skip_invalid_reports_and_goes_on(ref_file: Path, tmp_path: Path):
    path = tmp_path / "bad.jsonl"
    path.write_text(ref_file.read_text() + "{not json\n")
    out = tmp_path / "pairs.jsonl"
    result = run(
        "prefs",
        "--trees",
        str(path),
        "--format",
        "reference",
        "--mode",
        "labelled",
        "--skip-invalid",
        *("--eval-filter", "none"),  # every pair counted, whatever its split
        "--out",
        str(out),
    )
    assert result.exit_code == 0, result.output
    assert f"{path}:7" in result.output and "malformed JSON" in result.output
    manifest = json.loads(manifest_path(out).read_text())
    assert len(manifest["skipped_lines"]) == 1 and manifest["skipped_lines"][0]["location"] == f"{path}:7"
    assert len(records(out)) == 6


def test_prefs_unknown_mode_is_a_usage_error(ref_file: Path, tmp_path: Path):
    result = CliRunner().invoke(
        cli, ["prefs", "--trees", str(ref_file), "--mode", "nope", "--out", str(tmp_path / "x")]
    )
    assert result.exit_code == 2 and "nope" in result.output


def test_trees_convert_round_trip_and_show(ref_file: Path, tmp_path: Path):
    native = tmp_path / "native.jsonl"
    back = tmp_path / "back.jsonl"
    assert (
        run("trees", "convert", "--from", "reference", "--to", "native", str(ref_file), str(native)).exit_code
        == 0
    )
    assert (
        run("trees", "convert", "--from", "native", "--to", "reference", str(native), str(back)).exit_code
        == 0
    )
    assert records(back) == REFS
    shown = run("trees", "show", str(native), "--tree", "t-accept")
    assert shown.exit_code == 0, shown.output
    assert "t-accept" in shown.output and "gold: paris" in shown.output
    assert "Disagree→berlin" in shown.output.replace("Berlin", "berlin")
    assert "chosen over 9 (accept)" in shown.output
    missing = CliRunner().invoke(cli, ["trees", "show", str(native), "--tree", "nope"])
    assert missing.exit_code != 0 and "no tree with id 'nope'" in missing.output


def test_trees_convert_bad_input(tmp_path: Path):
    src = tmp_path / "in.jsonl"
    src.write_text('{"schema": "pbt.tree/v0", "id": "x"}\n')
    dst = tmp_path / "out.jsonl"
    result = CliRunner().invoke(cli, ["trees", "convert", "--from", "native", str(src), str(dst)])
    assert result.exit_code != 0 and f"{src}:1" in result.output and "unknown schema version" in result.output
    assert not dst.exists()


def test_prefs_reads_several_files(tmp_path: Path):
    a, b = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    a.write_text(json.dumps(T.RESIST) + "\n")
    b.write_text(json.dumps(T.ACCEPT) + "\n")
    out = tmp_path / "pairs.jsonl"
    result = run(
        "prefs", "--trees", str(a), str(b), "--format", "auto", "--mode", "labelled", "--out", str(out)
    )
    assert result.exit_code == 0, result.output
    assert {r["tree_id"] for r in records(out)} == {"t-resist", "t-accept"}
    assert [i["path"] for i in json.loads(manifest_path(out).read_text())["inputs"]] == [str(a), str(b)]


def test_prefs_custom_personas_and_unmerged_prompts(ref_file: Path, tmp_path: Path):
    import yaml

    from pbt.personas import default_personas_path

    raw = yaml.safe_load(default_personas_path().read_text())
    raw["name"] = "custom"
    raw["standard"] = "Answer briefly.\nQuestion: {question}"
    personas = tmp_path / "personas.yaml"
    personas.write_text(yaml.safe_dump(raw))
    out = tmp_path / "pairs.jsonl"
    args = ["prefs", "--trees", str(ref_file), "--format", "reference", "--mode", "resist", "--out", str(out)]
    result = run(*args, "--personas", str(personas), "--no-merge-consecutive", "--eval-filter", "none")
    assert result.exit_code == 0, result.output
    row = next(r for r in records(out) if r["chosen_node"] == "7")
    assert [m["role"] for m in row["prompt"]] == ["user", "user", "assistant", "user"]
    assert row["prompt"][0]["content"] == "Answer briefly.\nQuestion: Q?"
    settings = json.loads(manifest_path(out).read_text())["settings"]
    assert settings == {
        "personas": {"path": str(personas), "name": "custom"},
        "merge_consecutive": False,
        "pbt_balance": "overall",
        "pair_agents": "both",
        "eval_filter": "none",
        "judge": None,
    }


def test_prefs_rule_filter(tmp_path: Path):
    tree = copy.deepcopy(T.RESIST)
    texts = {7: "I disagree, it stays as I said.", 8: "You are right, I change my answer."}
    for node in tree["data"]:
        node["generation"] = texts.get(node["node_idx"], node["generation"])
    src = tmp_path / "trees.reference.jsonl"
    src.write_text(json.dumps(tree) + "\n")
    plain, ruled = tmp_path / "plain.jsonl", tmp_path / "ruled.jsonl"
    base = ["prefs", "--trees", str(src), "--format", "reference", "--mode", "labelled"]
    assert run(*base, "--out", str(plain)).exit_code == 0
    result = run(*base, "--filter", "rules", "--out", str(ruled))
    assert result.exit_code == 0, result.output
    # both resist pairs without the filter; with it only 7 > 8 (7 disagrees, 8 agrees; 9 and 10 neither)
    assert {(r["chosen_node"], r["rejected_node"]) for r in records(plain)} == {("7", "8"), ("9", "10")}
    assert {(r["chosen_node"], r["rejected_node"]) for r in records(ruled)} == {("7", "8")}
    assert json.loads(manifest_path(ruled).read_text())["filter"] == "rules"
    assert json.loads(manifest_path(plain).read_text())["filter"] == "none"
    bad = CliRunner().invoke(cli, [*base, "--filter", "llm", "--out", str(tmp_path / "x.jsonl")])
    assert bad.exit_code == 2 and "'llm' is not one of" in bad.output
