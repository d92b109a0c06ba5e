"""The `kserve.Model` that owns the local transformers backend.

KServe drives its lifecycle (``load`` sets ``ready``, which KServe's health and readiness
endpoints report; ``stop`` releases the batching worker) and routes V1 ``:predict`` calls to
`predict`. The OpenAI routes (`services.agent.routes`) call `backend` directly.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import kserve
from kserve.errors import InvalidInput

from pbt.backends.base import SamplingParams
from pbt.backends.local import LocalBackend
from pbt.errors import ValidationError
from services.agent import metrics

log = logging.getLogger(__name__)


class AgentModel(kserve.Model):
    """A chat model served by KServe. `backend_options` go to `pbt.backends.local.LocalBackend`."""

    def __init__(
        self, name: str, model_dir: str | Path, adapter: str | Path | None = None, **backend_options: Any
    ):
        super().__init__(name)
        self.model_dir = Path(model_dir)
        self.adapter = Path(adapter) if adapter else None
        self.backend_options = backend_options
        self.backend: LocalBackend | None = None
        #: where runtime LoRA adapters come from (None: runtime loading off)
        self.lora: Any = None

    @property  # type: ignore[override]
    def ready(self) -> bool:
        """What KServe's readiness route reports: loaded, not stopped, and the backend can serve
        (its batching worker is alive)."""
        return self._ready and self.backend is not None and self.backend.healthy

    @ready.setter
    def ready(self, value: bool) -> None:
        self._ready = value

    def load(self) -> bool:
        self.backend = LocalBackend(
            self.model_dir, self.adapter, model_name=self.name, **self.backend_options
        )
        self.backend.batch_listeners.append(metrics.record_batch)
        self.ready = True
        return self.ready

    def stop(self) -> None:
        self.ready = False
        if self.backend is not None:
            self.backend.close()

    async def predict(
        self, payload: Any, headers: dict[str, str] | None = None, response_headers=None
    ) -> dict:
        """KServe V1 protocol: ``{"instances": [{"messages": [...]} | {"prompt": "..."}], "parameters": {...}}``.

        ``parameters`` are `SamplingParams` fields; returns ``{"predictions": [text of choice 0, ...]}``.
        """
        if self.backend is None:
            raise InvalidInput("model is not loaded")
        if isinstance(payload, bytes | str):  # sent without a JSON content type
            try:
                payload = json.loads(payload)
            except ValueError as exc:
                raise InvalidInput(f"body is not JSON: {exc}") from exc
        if not isinstance(payload, dict) or not isinstance(payload.get("instances"), list):
            raise InvalidInput("expected a V1 body {'instances': [...]} (use the OpenAI routes for chat)")
        try:
            params = SamplingParams(**(payload.get("parameters") or {}))
            predictions = []
            for i, inst in enumerate(payload["instances"]):
                if isinstance(inst, dict) and "messages" in inst:
                    result = await self.backend.chat(inst["messages"], params)
                elif isinstance(inst, dict) and isinstance(inst.get("prompt"), str):
                    result = await self.backend.complete(inst["prompt"], params)
                else:
                    raise ValidationError(
                        "each instance needs 'messages' or 'prompt'", field=f"instances[{i}]"
                    )
                predictions.append(result.choices[0].text)
        except (ValidationError, ValueError) as exc:
            raise InvalidInput(str(exc)) from exc
        return {"predictions": predictions}
