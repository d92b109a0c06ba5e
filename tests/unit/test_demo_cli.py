"""`pbt demo` options: --set overrides any setting by its dotted path, bad ones name the field."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from pbt.cli.main import cli


@pytest.fixture()
def captured(monkeypatch):
    seen = {}

    def fake_run_demo(settings, console=None):
        seen["settings"] = settings
        return {"markdown": "report", "report_uri": "file:///x"}

    monkeypatch.setattr("pbt_world.demo.pipeline.run_demo", fake_run_demo)
    monkeypatch.setattr("pbt.view.terminal.demo_site", lambda store_url, run_id: f"site: {run_id}")
    return seen


def test_set_overrides_nested_settings_on_top_of_the_preset(captured, tmp_path):
    args = ["demo", "--fast", "--run-id", "x", "--work", str(tmp_path)]
    sets = ["agent.precision=bf16-mixed", "pbt_balance=position", "dpo.epochs=3", "eval_seeds=[1, 2]"]
    result = CliRunner().invoke(cli, [*args, *(a for s in sets for a in ("--set", s))])
    assert result.exit_code == 0, result.output
    assert "report: file:///x\nsite: x\n" in result.output  # the viewer site hook
    s = captured["settings"]
    assert s.agent.precision == "bf16-mixed" and s.pbt_balance == "position"
    assert s.dpo.epochs == 3.0 and s.eval_seeds == [1, 2]
    assert s.agent.steps == 400 and s.n_facts == 40 and s.dpo.batch_size == 4  # the rest of --fast stays


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("agent.precision=fp8", "agent.precision"),
        ("pair_agents=c", "pair_agents"),
        ("no_such_setting=1", "no_such_setting"),
        ("pbt_balance", "KEY=VALUE"),
    ],
)
def test_bad_set_names_the_setting(captured, tmp_path, value, message):
    result = CliRunner().invoke(cli, ["demo", "--work", str(tmp_path), "--set", value])
    assert result.exit_code == 2 and message in result.output
    assert "settings" not in captured  # nothing ran


def test_demo_and_world_are_entry_point_commands():
    from pbt.cli.main import GROUPS, plugin_commands

    eps = plugin_commands()
    assert {"demo", "world"} <= set(eps) and not {"demo", "world"} & set(GROUPS)
    assert eps["demo"].value == "pbt_world.cli.demo:demo"
    result = CliRunner().invoke(cli, ["--help"])
    assert result.exit_code == 0 and "demo " in result.output and "world " in result.output
    assert CliRunner().invoke(cli, ["world", "build", "--help"]).exit_code == 0


def test_a_command_whose_package_is_missing_says_so(monkeypatch):
    from importlib.metadata import EntryPoint

    ghost = EntryPoint(name="ghost", value="pbt_ghost.cli:ghost", group="pbt.commands")
    monkeypatch.setattr("pbt.cli.main.plugin_commands", lambda: {"ghost": ghost})
    assert "not available in this build" in CliRunner().invoke(cli, ["ghost", "--help"]).output
    result = CliRunner().invoke(cli, ["ghost", "--fast", "x"])
    assert result.exit_code == 1
    assert "pbt_ghost.cli:ghost" in result.output and "not installed" in result.output
    assert "make setup" in result.output
