"""Object store: `open_store()` picks the local folder (default) or S3/MinIO.

Configuration, most specific first: an explicit URL (``file:///path``, a plain path, or
``s3://bucket/prefix``), else the environment: ``S3_ENDPOINT`` (with ``S3_BUCKET``,
``AWS_ACCESS_KEY_ID``/``AWS_SECRET_ACCESS_KEY`` or ``MINIO_ACCESS_KEY``/``MINIO_SECRET_KEY``,
``S3_SECURE``), else ``PBT_STORE`` (a path), else ``./store``.
"""

from __future__ import annotations

import os
from pathlib import Path

from pbt.store.base import ObjectStore, check_key
from pbt.store.local import LocalStore, atomic_write_bytes

__all__ = ["ObjectStore", "LocalStore", "open_store", "check_key", "atomic_write_bytes"]

DEFAULT_LOCAL_ROOT = "store"


def _s3_from_env(bucket: str | None = None, prefix: str = "") -> ObjectStore:
    from pbt.store.s3 import S3Store

    secure_env = os.environ.get("S3_SECURE")
    return S3Store(
        os.environ["S3_ENDPOINT"],
        bucket or os.environ.get("S3_BUCKET", "pbt"),
        prefix=prefix,
        access_key=os.environ.get("AWS_ACCESS_KEY_ID") or os.environ.get("MINIO_ACCESS_KEY"),
        secret_key=os.environ.get("AWS_SECRET_ACCESS_KEY") or os.environ.get("MINIO_SECRET_KEY"),
        secure=None if secure_env is None else secure_env.lower() in ("1", "true", "yes"),
        region=os.environ.get("S3_REGION") or os.environ.get("AWS_DEFAULT_REGION"),
    )


def open_store(url: str | None = None) -> ObjectStore:
    """Open the configured store (see the module docstring for the order of precedence)."""
    if url:
        if url.startswith("s3://"):
            if "S3_ENDPOINT" not in os.environ:
                from pbt.errors import ValidationError

                raise ValidationError(f"store {url!r} needs S3_ENDPOINT in the environment", field="store")
            bucket, _, prefix = url[len("s3://") :].partition("/")
            return _s3_from_env(bucket, prefix)
        if url.startswith("file://"):
            return LocalStore(Path(url[len("file://") :]))
        return LocalStore(Path(url))
    if os.environ.get("S3_ENDPOINT"):
        return _s3_from_env()
    return LocalStore(Path(os.environ.get("PBT_STORE", DEFAULT_LOCAL_ROOT)))
