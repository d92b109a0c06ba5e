"""Bad input to the `pbt` command line (issue #17): every error is one line naming the option or
the file (and line), exit code 1 or 2, never a traceback, never an empty success."""

from __future__ import annotations

import json
from pathlib import Path

import prefs_trees as T
import pytest
from click.testing import CliRunner

from pbt.cli.main import cli

BOMB = 'a: &a ["x","x","x","x","x","x","x","x","x"]\n' + "".join(
    f"{c}: &{c} [*{p},*{p},*{p},*{p},*{p},*{p},*{p},*{p},*{p}]\n"
    for p, c in zip("abcdefgh", "bcdefghi", strict=True)
)


@pytest.fixture()
def files(tmp_path: Path) -> dict[str, str]:
    (tmp_path / "trees.jsonl").write_text(json.dumps(T.RESIST) + "\n")
    (tmp_path / "empty.jsonl").write_text("")
    (tmp_path / "blank.jsonl").write_text("\n \n\n")
    (tmp_path / "nodeless.jsonl").write_text(json.dumps({**T.RESIST, "data": []}) + "\n")
    (tmp_path / "binary.yaml").write_bytes(b"\xff\xfe\x00\x81binary" * 10)
    (tmp_path / "deep.yaml").write_text("[" * 100_000 + "]" * 100_000)
    (tmp_path / "bomb.yaml").write_text(BOMB)
    (tmp_path / "list.yaml").write_text("- a\n- b\n")
    (tmp_path / "folder").mkdir()
    (tmp_path / "secret.yaml").write_text("SECRET-CONTENT: [\n")
    (tmp_path / "nofiles.yaml").write_text(
        "eval_id: e\nmodels: [{name: m, endpoint: 'scripted:'}]\nsuites: {misinformation: {files: []}}\n"
    )
    return {p.stem: str(p) for p in tmp_path.iterdir()} | {"out": str(tmp_path / "out" / "p.jsonl")}


def _prefs(f: dict[str, str], trees: str = "trees", out: str | None = None, *extra: str) -> list[str]:
    return [
        "prefs",
        "--trees",
        f[trees],
        "--format",
        "reference",
        "--mode",
        "all",
        "--out",
        out or f["out"],
        *extra,
    ]


CASES = [
    ("prefs-empty", lambda f: _prefs(f, "empty"), "no trees"),
    ("prefs-blank", lambda f: _prefs(f, "blank"), "no trees"),
    ("prefs-nodeless", lambda f: _prefs(f, "nodeless"), "nodes"),
    ("prefs-binary-trees", lambda f: _prefs(f, "binary"), "UTF-8"),
    ("prefs-folder-trees", lambda f: _prefs(f, "folder"), "folder"),
    ("prefs-out-folder", lambda f: _prefs(f, "trees", f["folder"]), "--out"),
    ("prefs-out-uncreatable", lambda f: _prefs(f, "trees", "/proc/no/such/p.jsonl"), "--out"),
    ("prefs-out-s3", lambda f: _prefs(f, "trees", "s3://bucket/p.jsonl"), "--out"),
    ("prefs-personas-binary", lambda f: _prefs(f, "trees", None, "--personas", f["binary"]), "UTF-8"),
    ("prefs-personas-bomb", lambda f: _prefs(f, "trees", None, "--personas", f["bomb"]), "alias"),
    ("prefs-personas-deep", lambda f: _prefs(f, "trees", None, "--personas", f["deep"]), "nested"),
    ("prefs-personas-secret", lambda f: _prefs(f, "trees", None, "--personas", f["secret"]), "YAML"),
    ("prefs-split", lambda f: _prefs(f, "trees", None, "--split", "nan,2,-1"), "--split"),
    ("trees-build-binary", lambda f: ["trees", "build", "--config", f["binary"], "--local"], "UTF-8"),
    ("trees-build-bomb", lambda f: ["trees", "build", "--config", f["bomb"], "--local"], "alias"),
    ("trees-build-deep", lambda f: ["trees", "build", "--config", f["deep"], "--local"], "nested"),
    ("trees-build-list", lambda f: ["trees", "build", "--config", f["list"], "--local"], "mapping"),
    ("trees-build-secret", lambda f: ["trees", "build", "--config", f["secret"], "--local"], "YAML"),
    ("eval-run-binary", lambda f: ["eval", "run", "--config", f["binary"]], "UTF-8"),
    ("eval-run-bomb", lambda f: ["eval", "run", "--config", f["bomb"]], "alias"),
    ("eval-run-deep", lambda f: ["eval", "run", "--config", f["deep"]], "nested"),
    ("eval-run-list", lambda f: ["eval", "run", "--config", f["list"]], "mapping"),
    ("eval-run-secret", lambda f: ["eval", "run", "--config", f["secret"]], "YAML"),
    ("eval-run-no-files", lambda f: ["eval", "run", "--config", f["nofiles"]], "misinformation.files"),
]


@pytest.mark.parametrize(("args", "says"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_input_is_one_line_error(files: dict[str, str], args, says: str) -> None:
    result = CliRunner().invoke(cli, args(files))
    assert result.exit_code in (1, 2), result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    assert "Traceback" not in result.output
    error_lines = [line for line in result.output.splitlines() if line.startswith("Error")]
    assert len(error_lines) == 1, result.output
    assert says in error_lines[0], result.output
    assert "SECRET-CONTENT" not in result.output
    assert not Path(files["out"]).exists(), "a failed run wrote pairs"


def test_a_good_prefs_run_still_works(files: dict[str, str]) -> None:
    result = CliRunner().invoke(cli, _prefs(files))
    assert result.exit_code == 0, result.output
    assert Path(files["out"]).is_file()
