"""S3/MinIO store through the `minio` SDK. A PUT is atomic in S3: readers never see half an object."""

from __future__ import annotations

import io
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

from pbt.errors import NotFoundError, UnavailableError
from pbt.store.base import ObjectStore, check_key


class S3Store(ObjectStore):
    def __init__(
        self,
        endpoint: str,
        bucket: str,
        *,
        prefix: str = "",
        access_key: str | None = None,
        secret_key: str | None = None,
        secure: bool | None = None,
        region: str | None = None,
        create_bucket: bool = True,
    ):
        from minio import Minio

        # accept "http://host:port", "https://host" or "host:port"
        if endpoint.startswith(("http://", "https://")):
            scheme, _, host = endpoint.partition("://")
            secure = (scheme == "https") if secure is None else secure
        else:
            host = endpoint
            secure = bool(secure)
        self.endpoint = endpoint
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self.client = Minio(
            host.rstrip("/"), access_key=access_key, secret_key=secret_key, secure=secure, region=region
        )
        self.url = f"s3://{bucket}/{self.prefix}" if self.prefix else f"s3://{bucket}"
        if create_bucket:
            try:
                if not self.client.bucket_exists(bucket):
                    self.client.make_bucket(bucket)
            except Exception as exc:  # urllib3 connection errors, S3 errors
                if (
                    isinstance(exc, OSError)
                    or "Connection" in type(exc).__name__
                    or "MaxRetry" in type(exc).__name__
                ):
                    raise UnavailableError(f"cannot reach S3 endpoint: {exc}", endpoint=endpoint) from exc
                raise

    def _name(self, key: str) -> str:
        check_key(key)
        return f"{self.prefix}/{key}" if self.prefix else key

    def put_bytes(self, key: str, data: bytes) -> None:
        self.client.put_object(self.bucket, self._name(key), io.BytesIO(data), len(data))

    def get_bytes(self, key: str) -> bytes:
        from minio.error import S3Error

        try:
            resp = self.client.get_object(self.bucket, self._name(key))
        except S3Error as exc:
            if exc.code in ("NoSuchKey", "NoSuchBucket"):
                raise NotFoundError(f"object not found: {self.uri(key)}") from None
            raise
        try:
            return resp.read()
        finally:
            resp.close()
            resp.release_conn()

    def exists(self, key: str) -> bool:
        from minio.error import S3Error

        try:
            self.client.stat_object(self.bucket, self._name(key))
            return True
        except S3Error as exc:
            if exc.code in ("NoSuchKey", "NoSuchBucket", "NoSuchObject", "ResourceNotFound"):
                return False
            raise

    def list(self, prefix: str = "") -> Iterator[str]:
        full = f"{self.prefix}/{prefix}" if self.prefix else prefix
        strip = len(self.prefix) + 1 if self.prefix else 0
        names = [
            o.object_name[strip:] for o in self.client.list_objects(self.bucket, prefix=full, recursive=True)
        ]
        yield from sorted(names)

    def delete(self, key: str) -> None:
        self.client.remove_object(self.bucket, self._name(key))

    def put_file(self, key: str, path: str | Path) -> None:
        self.client.fput_object(self.bucket, self._name(key), str(path))

    def get_file(self, key: str, path: str | Path) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        data = self.get_bytes(key)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)
        return path
