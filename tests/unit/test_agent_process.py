"""tests/agent_process.AgentProcess runs the `pbt` of a given source tree (bench/demo_trees.py)."""

from __future__ import annotations

import json

import pytest
from agent_process import AgentProcess

from pbt.errors import UnavailableError

FAKE_MAIN = """
import json, os, sys
import pbt
json.dump({"pbt": pbt.__file__, "cwd": os.getcwd(), "argv": sys.argv[1:], "extra": os.environ.get("EXTRA")},
          open(os.environ["REPORT"], "w"))
sys.exit(3)
"""


def test_a_source_tree_runs_its_own_pbt_from_its_folder(tmp_path):
    src = tmp_path / "src"
    (src / "pbt").mkdir(parents=True)
    (src / "pbt" / "__init__.py").write_text("")
    (src / "pbt" / "__main__.py").write_text(FAKE_MAIN)
    report = tmp_path / "report.json"
    agent = AgentProcess(
        tmp_path / "model", model_name="m", src=src, env={"EXTRA": "1", "REPORT": str(report)}
    )
    with pytest.raises(UnavailableError, match="exited with code 3"):
        agent.start(timeout=30)
    seen = json.loads(report.read_text())
    assert seen["pbt"] == str(src / "pbt" / "__init__.py")
    assert seen["cwd"] == str(src) and seen["extra"] == "1"
    assert seen["argv"][:3] == ["serve", "agent", "--model-dir"]
