"""Fixtures shared by every test folder."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from pbt.net import free_port, wait_for_port

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "examples" / "data"


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """The dataset excerpts vendored in the repository (examples/data/README.md):
    `farm/NQ1.jsonl`, `farm/BoolQ.jsonl` (48 items each), `nq_open/NQ-open.dev.jsonl` (200)."""
    return DATA


@pytest.fixture(scope="session")
def s3_server():
    """A real S3-compatible HTTP server on loopback (moto), for the MinIO code path.

    Yields a dict with endpoint/access_key/secret_key; the product drives it with the `minio` SDK.
    """
    port = free_port()
    env = dict(os.environ, AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing")
    proc = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env,
    )
    try:
        wait_for_port(port, proc=proc)
        yield {
            "endpoint": f"http://127.0.0.1:{port}",
            "access_key": "testing",
            "secret_key": "testing",
        }
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@pytest.fixture
def s3_env(s3_server, monkeypatch):
    """Environment variables that make `pbt.store.open_store()` use the loopback S3 server."""
    import uuid

    bucket = f"pbt-{uuid.uuid4().hex[:10]}"
    monkeypatch.setenv("S3_ENDPOINT", s3_server["endpoint"])
    monkeypatch.setenv("S3_BUCKET", bucket)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", s3_server["access_key"])
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", s3_server["secret_key"])
    return {**s3_server, "bucket": bucket}


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory) -> Path:
    """A tiny Llama model + tokenizer (`pbt.models.tiny`, seed 0), built once per test session."""
    from pbt.models.tiny import build_tiny_model

    return build_tiny_model(tmp_path_factory.mktemp("tiny_model"), seed=0)
