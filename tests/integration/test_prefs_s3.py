"""`pbt prefs` reading trees from and writing pairs to S3 (moto over loopback, minio SDK)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from pbt.cli.main import cli
from pbt.store import open_store

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "trees.reference.jsonl"


@pytest.mark.integration
def test_prefs_with_s3_paths(s3_env, tmp_path):
    store = open_store()
    store.put_file("trees/examples.jsonl", EXAMPLE)
    bucket = s3_env["bucket"]
    result = CliRunner().invoke(
        cli,
        [
            "prefs",
            "--trees",
            f"s3://{bucket}/trees/examples.jsonl",
            "--format",
            "reference",
            "--mode",
            "labelled",
            "--out",
            f"s3://{bucket}/pairs/labelled.jsonl",
        ],
    )
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in store.get_text("pairs/labelled.jsonl").splitlines()]
    assert {r["code"] for r in rows} == {"resist", "accept"} and len(rows) == 6
    manifest = store.get_json("pairs/labelled.manifest.json")
    assert manifest["inputs"][0]["path"] == f"s3://{bucket}/trees/examples.jsonl"
    assert manifest["output"]["records"] == 6

    missing = CliRunner().invoke(
        cli,
        [
            "prefs",
            "--trees",
            f"s3://{bucket}/trees/nope.jsonl",
            "--mode",
            "labelled",
            "--out",
            str(tmp_path / "x"),
        ],
    )
    assert missing.exit_code != 0 and "nope.jsonl" in missing.output
