"""Start-up of the agent model server: KServe's `ModelServer`, our model, our OpenAI routes.

KServe provides liveness (``GET /``), readiness (``GET /v2/health/ready``,
``GET /v1/models/{name}``), the V1/V2 inference protocol and ``GET /metrics``; this module adds
the OpenAI routes to KServe's FastAPI app before the server starts, and binds uvicorn to the
requested host (KServe itself always binds 0.0.0.0).
"""

from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import Any

from kserve import ModelServer
from kserve.model_server import app

from services.agent.model import AgentModel
from services.agent.routes import register_openai_routes

log = logging.getLogger(__name__)


class AgentModelServer(ModelServer):
    """`kserve.ModelServer` that listens on `host` instead of always 0.0.0.0."""

    def __init__(self, host: str = "127.0.0.1", **kwargs: Any):
        super().__init__(**kwargs)
        self.host = host

    async def _serve(self) -> None:
        if self._rest_server is not None:
            self._rest_server.config.host = self.host
        await super()._serve()


def run_agent_server(
    model_dir: str | Path,
    *,
    adapter: str | Path | None = None,
    model_name: str | None = None,
    host: str = "127.0.0.1",
    port: int = 8080,
    grpc_port: int | None = None,
    grace_s: float = 10.0,
    lora: Any = None,
    **backend_options: Any,
) -> None:
    """Load the model and serve until SIGTERM/SIGINT, then give in-flight requests `grace_s`
    seconds (uvicorn's graceful shutdown). `lora` (a `services.agent.lora.LoraSource`) turns on
    runtime LoRA loading. `backend_options` go to `LocalBackend`."""
    name = model_name or Path(model_dir).name
    model = AgentModel(name, model_dir, adapter, **backend_options)
    model.lora = lora
    model.load()
    register_openai_routes(app, model)
    server = AgentModelServer(
        host=host,
        http_port=port,
        grpc_port=grpc_port or 8081,
        enable_grpc=grpc_port is not None,
        grace_period=max(1, math.ceil(grace_s)),
    )
    log.info(
        "agent server for model '%s' on http://%s:%d (OpenAI routes under /openai/v1 and /v1)",
        name,
        host,
        port,
    )
    server.start([model])
