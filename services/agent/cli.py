"""`pbt serve agent`: the KServe agent model server."""

from __future__ import annotations

import sys
from pathlib import Path

import click


@click.command("agent")
@click.option(
    "--model-dir",
    required=True,
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="Model folder (save_pretrained layout, e.g. from `pbt models tiny`).",
)
@click.option(
    "--adapter",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    default=None,
    help="Optional PEFT adapter folder, merged into the weights at load time.",
)
@click.option("--model-name", default=None, help="Name clients use in 'model' (default: the folder name).")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to bind.")
@click.option("--port", default=8080, show_default=True, type=int, help="HTTP port.")
@click.option(
    "--grpc-port", default=None, type=int, help="Also serve KServe's V2 gRPC protocol on this port."
)
@click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda or cuda:N.")
@click.option(
    "--dtype", default="float32", show_default=True, help="Weight dtype (float32, bfloat16, float16)."
)
@click.option("--max-batch-size", default=32, show_default=True, type=int, help="Most rows decoded together.")
@click.option(
    "--threads", "num_threads", default=None, type=int, help="torch CPU threads (default: torch's choice)."
)
@click.option(
    "--prefix-cache-mb",
    type=click.FloatRange(min=0),
    default=256.0,
    show_default=True,
    help="Memory for KV caches of earlier prompts reused by prompts sharing a prefix (0: off).",
)
@click.option(
    "--grace",
    "grace_s",
    type=click.FloatRange(min=0),
    default=10.0,
    show_default=True,
    envvar="PBT_AGENT_GRACE_S",
    help="Seconds in-flight requests get after SIGTERM before the server stops [env PBT_AGENT_GRACE_S].",
)
@click.option(
    "--enable-lora",
    is_flag=True,
    envvar="PBT_AGENT_ENABLE_LORA",
    help="Serve POST /v1/load_lora_adapter and /v1/unload_lora_adapter (vLLM's API); lora_path is a "
    "store key under a --lora-prefix [env PBT_AGENT_ENABLE_LORA].",
)
@click.option(
    "--lora-prefix",
    "lora_prefixes",
    multiple=True,
    default=("training/",),
    show_default=True,
    help="Store key prefix runtime adapters may come from (repeatable).",
)
@click.option(
    "--lora-store",
    default=None,
    help="Store URL adapters are downloaded from (default: the environment's store, see pbt.store).",
)
def agent(
    model_dir: Path,
    adapter: Path | None,
    model_name: str | None,
    host: str,
    port: int,
    grpc_port: int | None,
    device: str,
    dtype: str,
    max_batch_size: int,
    num_threads: int | None,
    prefix_cache_mb: float,
    grace_s: float,
    enable_lora: bool,
    lora_prefixes: tuple[str, ...],
    lora_store: str | None,
) -> None:
    """Serve a model with the OpenAI chat-completions protocol through KServe.

    Ready when GET http://HOST:PORT/v2/health/ready answers 200.
    """
    # kserve parses sys.argv when imported; this command's options are not its options.
    sys.argv = sys.argv[:1]
    from services.agent.server import run_agent_server

    lora = None
    if enable_lora:
        from pbt.store import open_store
        from services.agent.lora import LoraSource

        lora = LoraSource(open_store(lora_store), prefixes=tuple(p.rstrip("/") + "/" for p in lora_prefixes))

    run_agent_server(
        model_dir,
        adapter=adapter,
        model_name=model_name,
        host=host,
        port=port,
        grpc_port=grpc_port,
        device=device,
        dtype=dtype,
        max_batch_size=max_batch_size,
        num_threads=num_threads,
        prefix_cache_mb=prefix_cache_mb,
        grace_s=grace_s,
        lora=lora,
    )
