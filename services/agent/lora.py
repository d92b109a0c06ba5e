"""Where runtime LoRA adapters may come from: store keys under the operator's prefixes, nothing else.

vLLM's ``POST /v1/load_lora_adapter`` takes a ``lora_path`` on the server's disk. Here a request
names a key in the object store (``training/<run>/adapter`` or ``store:training/<run>/adapter``);
the server downloads it into its own cache folder and loads it from there. A request can never
make the server read a path of its disk or fetch a URL of its choosing (the request-policy
stance of docs/deploy.md): absolute paths, ``..``, schemes and keys outside the allowed
prefixes are refused with a 400 before anything is read.
"""

from __future__ import annotations

import re
import shutil
import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path

from pbt.errors import NotFoundError, ValidationError
from pbt.store import ObjectStore, check_key

DEFAULT_PREFIXES = ("training/",)


@dataclass
class LoraSource:
    """Runtime adapter loading: on only when the operator turns it on (``--enable-lora``)."""

    store: ObjectStore
    prefixes: tuple[str, ...] = DEFAULT_PREFIXES
    cache_dir: Path = field(default_factory=lambda: Path(tempfile.gettempdir()) / "pbt-lora")
    _count: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def key_of(self, lora_path: str) -> str:
        """The store key a request's ``lora_path`` names, or a `ValidationError` saying why not."""
        key = lora_path[len("store:") :] if lora_path.startswith("store:") else lora_path
        allowed = f"a store key under one of {list(self.prefixes)} (the server never loads a path or URL chosen by a request)"
        if re.match(r"^[A-Za-z][A-Za-z0-9+.-]*://", key) or key.startswith(("/", "~")):
            raise ValidationError(f"lora_path must be {allowed}", field="lora_path")
        try:
            check_key(key.rstrip("/"))
        except ValidationError:
            raise ValidationError(f"lora_path must be {allowed}", field="lora_path") from None
        key = key.rstrip("/")
        if not any(key.startswith(p) for p in self.prefixes):
            raise ValidationError(f"lora_path must be {allowed}", field="lora_path")
        return key

    def fetch(self, lora_path: str) -> tuple[Path, str]:
        """Download the adapter into a new cache folder; returns (folder, store URI)."""
        key = self.key_of(lora_path)
        with self._lock:
            self._count += 1
            target = self.cache_dir / f"{self._count:06d}"
        shutil.rmtree(target, ignore_errors=True)
        try:
            self.store.get_dir(key, target)
        except NotFoundError:
            raise ValidationError(f"no adapter at store key {key!r}", field="lora_path") from None
        if not (target / "adapter_config.json").is_file():
            shutil.rmtree(target, ignore_errors=True)
            raise ValidationError(
                f"store key {key!r} holds no PEFT adapter (adapter_config.json missing)", field="lora_path"
            )
        return target, self.store.uri(key)
