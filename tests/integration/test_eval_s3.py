"""Results to an S3-compatible server on loopback (moto), written and read through the minio SDK."""

from __future__ import annotations

import asyncio
import json

import pytest
from minio import Minio

from pbt.backends.scripted import ScriptedBackend
from pbt.evaluate import load_summary, parse_config, run_evaluation
from pbt.store import open_store

pytestmark = pytest.mark.integration


def test_results_layout_in_s3(s3_env, data_dir, tmp_path):
    rows = [json.loads(line) for line in (data_dir / "nq_open/NQ-open.dev.jsonl").open()][:4]
    (tmp_path / "q.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    answers = {r["question"]: r["answer"][0] for r in rows}
    cfg = parse_config(
        {
            "eval_id": "s3-eval",
            "seeds": [1],
            "models": [{"name": "a", "endpoint": "scripted:"}, {"name": "b", "endpoint": "scripted:"}],
            "suites": {
                "are_you_sure": {"questions": str(tmp_path / "q.jsonl")},
                "team_debate": {"questions": str(tmp_path / "q.jsonl"), "partner": "b"},
                "misinformation": {"files": [str(data_dir / "farm/BoolQ.jsonl")], "limit": 3},
            },
            "bootstrap_samples": 50,
        }
    )
    backends = {"a": ScriptedBackend(answers), "b": ScriptedBackend(answers)}
    doc = asyncio.run(run_evaluation(cfg, backends=backends))  # store from S3_ENDPOINT/S3_BUCKET
    bucket = s3_env["bucket"]
    assert doc["results_uri"] == f"s3://{bucket}/results/s3-eval"

    host = s3_env["endpoint"].removeprefix("http://")
    client = Minio(host, access_key=s3_env["access_key"], secret_key=s3_env["secret_key"], secure=False)
    keys = sorted(
        o.object_name for o in client.list_objects(bucket, prefix="results/s3-eval/", recursive=True)
    )
    expected = ["results/s3-eval/config.json", "results/s3-eval/report.md", "results/s3-eval/summary.json"]
    for suite in ("are_you_sure", "misinformation", "team_debate"):
        expected += [f"results/s3-eval/{suite}/examples.jsonl", f"results/s3-eval/{suite}/summary.json"]
    expected.append("results/s3-eval/team_debate/team_accuracy_by_order.png")
    assert keys == sorted(expected)
    body = client.get_object(bucket, "results/s3-eval/are_you_sure/examples.jsonl").read().decode()
    records = [json.loads(line) for line in body.splitlines()]
    assert len(records) == 2 * 4 and all(r["first_correct"] == 1 for r in records)
    png = client.get_object(bucket, "results/s3-eval/team_debate/team_accuracy_by_order.png").read()
    assert png.startswith(b"\x89PNG")
    assert load_summary(open_store(), "s3-eval")["state"] == "succeeded"
