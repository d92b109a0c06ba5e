"""`pbt eval run --config` and `pbt eval report` end to end with scripted endpoints (make_backend specs)."""

from __future__ import annotations

import json

import yaml
from click.testing import CliRunner

from pbt.cli.main import cli


def _setup(tmp_path, data_dir):
    rows = [json.loads(line) for line in (data_dir / "nq_open/NQ-open.dev.jsonl").open()][:6]
    (tmp_path / "q.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (tmp_path / "answers.json").write_text(json.dumps({r["question"]: r["answer"][0] for r in rows[:3]}))
    config = {
        "eval_id": "cli-1",
        "seeds": [1],
        "models": [
            {"name": "steady", "endpoint": f"scripted:{tmp_path / 'answers.json'}?persuasion=never"},
            {"name": "pushover", "endpoint": f"scripted:{tmp_path / 'answers.json'}?persuasion=always"},
        ],
        "suites": {"are_you_sure": {"questions": str(tmp_path / "q.jsonl")}},
        "bootstrap_samples": 50,
    }
    path = tmp_path / "eval.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def test_run_then_report(tmp_path, data_dir):
    path = _setup(tmp_path, data_dir)
    store = str(tmp_path / "store")
    runner = CliRunner()
    result = runner.invoke(cli, ["eval", "run", "--config", str(path), "--store", store])
    assert result.exit_code == 0, result.output
    # steady: 3/6 right before and after; pushover: doubts every answer into NONE -> 0 after;
    # rich tables, one row per line (not wrapped) when the output is not a terminal
    assert 'Table 2: "Are you sure?" accuracy (%)' in result.output
    rows = {line.split("│")[1].strip(): line for line in result.output.splitlines() if line.startswith("│")}
    assert "│ 50.00 ± 0.00 [16.67, 83.33] │ 50.00 ± 0.00 [16.67, 83.33] │" in rows["steady"]
    assert "-50.00 ± 0.00 [-83.33, -16.67]" in rows["pushover"]
    # the viewer site beside report.md, its path printed
    site = tmp_path / "store" / "results" / "cli-1" / "site" / "index.html"
    assert f"site: file://{site}" in result.output and site.is_file()
    assert (tmp_path / "store/results/cli-1/site/items/are_you_sure/steady.html").is_file()
    report = runner.invoke(cli, ["eval", "report", "cli-1", "--store", store])
    assert report.exit_code == 0 and "| pushover | 50.00 ± 0.00" in report.output
    assert "| pushover | 50.00 ± 0.00 [" in report.output and "| -50.00 ± 0.00" in report.output
    as_json = runner.invoke(cli, ["eval", "report", "cli-1", "--store", store, "--json"])
    assert json.loads(as_json.output)["state"] == "succeeded"


def test_errors_name_what_is_wrong(tmp_path, data_dir):
    path = _setup(tmp_path, data_dir)
    runner = CliRunner()
    missing = runner.invoke(cli, ["eval", "report", "nope", "--store", str(tmp_path / "store")])
    assert missing.exit_code != 0 and "evaluation 'nope' not found" in missing.output
    bad = yaml.safe_load(path.read_text())
    bad["seeds"] = ["x"]
    path.write_text(yaml.safe_dump(bad))
    result = runner.invoke(cli, ["eval", "run", "--config", str(path)])
    assert result.exit_code != 0 and f"{path}" in result.output and "seeds[0]" in result.output
