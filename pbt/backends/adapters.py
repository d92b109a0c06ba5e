"""Runtime LoRA adapters of `pbt.backends.local.LocalBackend`: loading, replacing and unloading
PEFT adapters while requests run.

Each served name maps to an internal id (``name__vN``); a request holds its id until its future is
done, so a replaced or unloaded version is deleted (on the worker thread, between decoding steps)
only after the last request that uses it. Rows of one batch may use different adapters
(`_adapter_kwargs`: PEFT's ``adapter_names``).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import itertools
import logging
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pbt.backends.batching import BatchWorker, Call
from pbt.errors import NotFoundError, ValidationError

log = logging.getLogger(__name__)


class RuntimeAdapters:
    """Mixin of `LocalBackend`: the runtime adapter bookkeeping. The host provides ``model`` (replaced
    here when the first adapter is attached or the last one deleted), ``_worker`` and ``_closed``."""

    model: Any
    _worker: BatchWorker
    _closed: bool

    def _init_adapters(self) -> None:
        self._adapters: dict[str, str] = {}  # served name -> internal id (name__vN)
        self._adapter_sources: dict[str, str] = {}  # served name -> where it came from
        self._adapter_refs: dict[str, int] = {}  # internal id -> requests in flight
        self._retired: set[str] = set()  # replaced or unloaded ids, deleted when no request uses them
        self._adapter_lock = threading.Lock()
        self._adapter_versions = itertools.count(1)

    @property
    def adapters(self) -> dict[str, str]:
        """Served adapter name -> where it was loaded from."""
        with self._adapter_lock:
            return dict(self._adapter_sources)

    def _acquire(self, adapter: str | None, future: concurrent.futures.Future) -> str | None:
        """The internal id a request uses; held until its future is done (a replaced version is
        deleted only after the last request that uses it)."""
        if adapter is None:
            return None
        with self._adapter_lock:
            internal = self._adapters.get(adapter)
            if internal is None:
                raise ValidationError(
                    f"adapter {adapter!r} is not loaded; loaded: {sorted(self._adapters)}", field="model"
                )
            self._adapter_refs[internal] = self._adapter_refs.get(internal, 0) + 1
        future.add_done_callback(lambda _f: self._release(internal))
        return internal

    def _release(self, internal: str) -> None:
        with self._adapter_lock:
            self._adapter_refs[internal] -= 1
            free = self._adapter_refs[internal] == 0 and internal in self._retired
            if self._adapter_refs[internal] == 0:
                del self._adapter_refs[internal]
        if free:
            self._delete_later(internal)

    def _delete_later(self, internal: str) -> None:
        if self._closed:
            return
        self._worker.put(Call(lambda: self._delete(internal), concurrent.futures.Future()))

    def _delete(self, internal: str) -> None:  # on the worker thread
        with self._adapter_lock:
            if self._adapter_refs.get(internal) or internal not in self._retired:
                return
            self._retired.discard(internal)
        configs = getattr(self.model, "peft_config", {})
        if internal not in configs:
            return
        if len(configs) == 1:  # the last adapter: back to the plain base model
            self.model = self.model.unload().eval()
        else:
            self.model.delete_adapter(internal)
            if self.model.active_adapter not in self.model.peft_config:
                self.model.set_adapter(next(iter(self.model.peft_config)))
        log.info("deleted adapter %s", internal)

    def _attach(self, internal: str, path: Path) -> None:  # on the worker thread
        from peft import PeftModel

        if isinstance(self.model, PeftModel):
            self.model.load_adapter(str(path), adapter_name=internal, is_trainable=False)
        else:
            self.model = PeftModel.from_pretrained(self.model, str(path), adapter_name=internal)
        self.model.eval()

    def _retire(self, internal: str) -> None:  # with the lock held
        self._retired.add(internal)
        if not self._adapter_refs.get(internal):
            self._delete_later(internal)

    async def load_adapter(self, name: str, path: str | Path, *, source: str | None = None) -> None:
        """Load a PEFT LoRA adapter folder and serve it as `name` next to the base model and the other
        adapters. Loading under a name already served replaces it: requests already running finish on
        the old version, new ones use the new one."""
        path = Path(path)
        if not (path / "adapter_config.json").is_file():
            raise ValidationError(
                f"no PEFT adapter at {source or path} (adapter_config.json missing)", field="lora_path"
            )
        internal = f"{name}__v{next(self._adapter_versions)}"
        future: concurrent.futures.Future = concurrent.futures.Future()
        self._worker.put(Call(lambda: self._attach(internal, path), future))
        try:
            await asyncio.wrap_future(future)
        except Exception as exc:
            log.warning("loading adapter %s from %s failed: %s", name, source or path, exc)
            raise ValidationError(
                f"adapter {name!r} could not be loaded from {source or path}: {type(exc).__name__}",
                field="lora_path",
            ) from None
        with self._adapter_lock:
            old = self._adapters.get(name)
            self._adapters[name] = internal
            self._adapter_sources[name] = source or str(path)
            if old is not None:
                self._retire(old)
        log.info("adapter %s loaded from %s (%s)", name, source or path, internal)

    def unload_adapter(self, name: str) -> None:
        """Stop serving `name`; its weights go once the requests using them have finished."""
        with self._adapter_lock:
            internal = self._adapters.pop(name, None)
            if internal is None:
                raise NotFoundError(f"adapter {name!r} is not loaded; loaded: {sorted(self._adapters)}")
            self._adapter_sources.pop(name, None)
            self._retire(internal)

    def _adapter_kwargs(self, adapters: Sequence[str | None]) -> dict[str, Any]:
        """The forward pass's ``adapter_names`` (one per row; None: the base model) when adapters
        are loaded; nothing for a plain model."""
        from peft import PeftModel

        if not isinstance(self.model, PeftModel):
            return {}
        return {"adapter_names": [adapter or "__base__" for adapter in adapters]}
