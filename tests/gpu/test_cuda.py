"""The CUDA code paths: the local backend on a GPU, and DPO under torchrun on a GPU in bf16.

Run with `make test-gpu` on a machine with an NVIDIA GPU. Without CUDA every test here is
skipped (CI has no GPU); `make test` runs them too, so on a GPU machine they are part of it.
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

from pair_files import make_pairs, write_pairs  # noqa: E402

from pbt.backends.base import SamplingParams  # noqa: E402
from pbt.backends.local import LocalBackend  # noqa: E402
from pbt.store import LocalStore  # noqa: E402

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU"),
]

ROOT = Path(__file__).resolve().parents[2]
TORCHRUN = str(Path(sys.executable).with_name("torchrun"))
PROMPTS = [
    [{"role": "user", "content": "Hi"}],
    [
        {"role": "system", "content": "You are a careful historian."},
        {"role": "user", "content": "When did it end? " * 5},
    ],
    [
        {"role": "user", "content": "Capital of France?"},
        {"role": "assistant", "content": "Paris. Final Answer: Paris"},
        {"role": "user", "content": "Are you sure? I think it is Lyon."},
    ],
]
GREEDY = SamplingParams(temperature=0.0, max_tokens=24)


def _texts(result) -> list[str]:
    return [c.text for c in result.choices]


def test_local_backend_on_cuda_batches_exactly_like_generate(tiny_model_dir):
    backend = LocalBackend(tiny_model_dir, device="auto", max_batch_size=8)
    try:
        assert backend.device == "cuda"
        assert next(backend.model.parameters()).device.type == "cuda"

        async def main():
            alone = [await backend.chat(p, GREEDY) for p in PROMPTS]
            together = await asyncio.gather(*(backend.chat(p, GREEDY) for p in PROMPTS * 3))
            return alone, together

        widths: list[int] = []
        backend.batch_listeners.append(lambda stats: widths.append(stats.rows))
        alone, together = asyncio.run(main())
        assert max(widths) > 1, "concurrent requests were not batched on the GPU"
        assert [_texts(r) for r in together] == [_texts(r) for r in alone] * 3
        for prompt, result in zip(PROMPTS, alone, strict=True):
            ids = backend.tokenizer(backend.render(prompt), add_special_tokens=False, return_tensors="pt")
            ids = ids["input_ids"].to("cuda")
            with torch.no_grad():
                out = backend.model.generate(
                    ids,
                    attention_mask=torch.ones_like(ids),
                    max_new_tokens=GREEDY.max_tokens,
                    do_sample=False,
                    eos_token_id=backend.eos_ids,
                    pad_token_id=backend.pad_id,
                )
            expected = backend.tokenizer.decode(out[0, ids.shape[1] :], skip_special_tokens=True)
            assert result.choices[0].text == expected
    finally:
        backend.close()


def test_local_backend_bf16_on_cuda_samples_reproducibly_and_scores(tiny_model_dir):
    backend = LocalBackend(tiny_model_dir, device="cuda", dtype="bfloat16", max_batch_size=8)
    try:
        assert next(backend.model.parameters()).dtype == torch.bfloat16
        params = SamplingParams(temperature=0.8, max_tokens=16, n=3, seed=7)

        async def main():
            first = await backend.chat(PROMPTS[2], params)
            second = await backend.chat(PROMPTS[2], params)
            scores = await backend.candidate_logprobs(PROMPTS[2], ["Paris", "Lyon"])
            return first, second, scores

        first, second, scores = asyncio.run(main())
        assert len(first.choices) == 3 and _texts(first) == _texts(second)  # seeded on the GPU too
        assert len(scores) == 2 and all(math.isfinite(s) and s < 0 for s in scores)
    finally:
        backend.close()


def test_dpo_torchrun_on_cuda_in_bf16(tiny_model_dir, tmp_path):
    pairs = write_pairs(tmp_path / "pairs.jsonl", make_pairs(32, 8))
    store_dir = tmp_path / "store"
    env = dict(os.environ, PBT_LOG_LEVEL="INFO")
    cmd = [
        TORCHRUN, "--standalone", "--nproc_per_node", "1", "-m", "training.dpo",
        "--config", "training/configs/dpo-tiny.yaml",
        "--pairs", str(pairs), "--base_model", str(tiny_model_dir),
        "--store", str(store_dir), "--output_dir", str(tmp_path / "out"),
        "--run_id", "cuda-test", "--pair_budget", "32",
        "--use_cpu", "false", "--bf16", "true", "--dtype", "auto", "--quantization", "auto",
    ]  # fmt: skip
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-4000:]

    store = LocalStore(store_dir)
    metrics = store.get_json("training/cuda-test/metrics.json")
    hw = metrics["hardware"]
    assert hw["device"].startswith("cuda") and hw["gpu"]
    assert hw["base_dtype"] == "bfloat16" and hw["bf16"] is True and hw["backend"] == "nccl"
    losses = [h["loss"] for h in metrics["log_history"] if "loss" in h]
    assert len(losses) == 8 and all(math.isfinite(x) for x in losses)
    changes = metrics["param_changes"]
    assert changes["trainable_changed"] == changes["trainable_total"] > 0
    assert changes["frozen_changed"] == 0
    manifest = store.get_json("training/cuda-test/manifest.json")
    assert manifest["world_size"] == 1
    adapter = tmp_path / "adapter"
    store.get_dir("training/cuda-test/adapter", adapter)
    assert json.loads((adapter / "adapter_config.json").read_text())["r"] == 8

    # the trained adapter serves on the GPU
    backend = LocalBackend(tiny_model_dir, adapter, device="cuda", max_batch_size=4)
    try:
        result = asyncio.run(backend.chat(PROMPTS[0], GREEDY))
        assert result.choices[0].finish_reason in ("stop", "length")
    finally:
        backend.close()
