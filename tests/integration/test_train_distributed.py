"""DPO under `torchrun --nproc_per_node 2` on CPU (gloo) with the tiny model and ~32 pairs."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml

from pbt.hardware import cpu_class
from pbt.store import LocalStore
from training.synthetic import make_pairs, write_pairs

ROOT = Path(__file__).resolve().parents[2]
TORCHRUN = str(Path(sys.executable).with_name("torchrun"))


def _long(row: dict, words: int) -> dict:
    row = json.loads(json.dumps(row))
    row["rejected"][0]["content"] += " because" * words
    return row


@pytest.mark.distributed
@pytest.mark.slow
def test_dpo_torchrun_two_processes(tiny_model_dir, tmp_path):
    rows = make_pairs(32, 8)
    rows[3] = _long(rows[3], 400)  # longer than max_length: counted and truncated, never a crash
    pairs = write_pairs(tmp_path / "pairs.jsonl", rows)
    store_dir = tmp_path / "store"
    env = dict(os.environ, OMP_NUM_THREADS="1", PBT_LOG_LEVEL="INFO", PBT_CODE_VERSION="test-version")
    cmd = [
        TORCHRUN, "--standalone", "--nproc_per_node", "2", "-m", "training.dpo",
        "--config", "training/configs/dpo-tiny.yaml",
        "--pairs", str(pairs), "--base_model", str(tiny_model_dir),
        "--store", str(store_dir), "--output_dir", str(tmp_path / "out"),
        "--run_id", "ddp-test", "--per_device_train_batch_size", "2", "--pair_budget", "32",
    ]  # fmt: skip
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert "[rank 1]" not in proc.stderr or "Traceback" not in proc.stderr

    store = LocalStore(store_dir)
    run = "training/ddp-test"
    metrics = store.get_json(f"{run}/metrics.json")
    assert metrics["world_size"] == 2
    assert metrics["effective_batch_size"] == 4  # 2 per process x 2 processes
    hw = metrics["hardware"]
    assert {k: hw[k] for k in ("device", "gpu", "base_dtype", "bf16", "fp16", "backend")} == {
        "device": "cpu",
        "gpu": None,
        "base_dtype": "float32",
        "bf16": False,
        "fp16": False,
        "backend": "gloo",
    }
    # the CPU class and torch build the numbers came from (pbt.hardware)
    assert hw["cpu_class"] == cpu_class() and hw["torch"] == torch.__version__ and hw["threads"] >= 1
    losses = [h["loss"] for h in metrics["log_history"] if "loss" in h]
    assert len(losses) == 8 and all(loss == loss for loss in losses)  # one per step, no NaN
    changes = metrics["param_changes"]
    assert changes["trainable_changed"] == changes["trainable_total"] > 0  # every LoRA tensor moved
    assert changes["frozen_total"] > 0 and changes["frozen_changed"] == 0  # the base did not
    assert metrics["train_pairs"]["train_pairs_rewards/accuracies"] > 0.5
    assert metrics["dev"]["eval_rewards/accuracies"] == metrics["best_metric"]
    assert metrics["checkpoints_uploaded"] == [4, 8]

    # the saved adapter is a trained LoRA adapter (lora_B starts at zero)
    from safetensors.torch import load_file

    adapter = tmp_path / "adapter"
    store.get_dir(f"{run}/adapter", adapter)
    tensors = load_file(adapter / "adapter_model.safetensors")
    lora_b = [t for name, t in tensors.items() if "lora_B" in name]
    assert lora_b and all(t.abs().sum() > 0 for t in lora_b)
    assert json.loads((adapter / "adapter_config.json").read_text())["r"] == 8

    report = store.get_json(f"{run}/data_report.json")
    assert report["length"]["train"]["overlong"] == 1 and report["length"]["train"]["truncated"] == 1
    assert report["selected"]["train"] == {"accept": 16, "resist": 16}
    assert report["selected"]["dev"] == {"accept": 4, "resist": 4}

    manifest = store.get_json(f"{run}/manifest.json")
    assert manifest["inputs"]["pairs"]["sha256"] == hashlib.sha256(pairs.read_bytes()).hexdigest()
    assert manifest["inputs"]["base_model"]["location"] == str(tiny_model_dir)
    assert manifest["code"]["version"] == "test-version" and manifest["world_size"] == 2
    config = yaml.safe_load(store.get_text(f"{run}/config.yaml"))
    assert (
        config["run_id"] == "ddp-test"
        and config["per_device_train_batch_size"] == 2
        and config["beta"] == 0.1
    )


@pytest.mark.distributed
@pytest.mark.slow
def test_dpo_torchrun_fsdp_option(tiny_model_dir, tmp_path):
    """The FSDP option (FSDP2, full shard, decoder layers wrapped) under torchrun on CPU."""
    pairs = write_pairs(tmp_path / "pairs.jsonl", make_pairs(16, 4))
    store_dir = tmp_path / "store"
    fsdp_config = {
        "version": 2,
        "reshard_after_forward": True,
        "transformer_layer_cls_to_wrap": ["LlamaDecoderLayer"],
        "state_dict_type": "FULL_STATE_DICT",
    }
    cmd = [
        TORCHRUN, "--standalone", "--nproc_per_node", "2", "-m", "training.dpo",
        "--config", "training/configs/dpo-tiny.yaml",
        "--pairs", str(pairs), "--base_model", str(tiny_model_dir),
        "--store", str(store_dir), "--output_dir", str(tmp_path / "out"), "--run_id", "fsdp-test",
        "--per_device_train_batch_size", "2", "--max_steps", "4", "--precompute_ref_log_probs", "false",
        "--track_param_changes", "false", "--eval_train_at_end", "false",
        "--fsdp_config", json.dumps(fsdp_config), "--fsdp",
    ]  # fmt: skip
    env = dict(os.environ, OMP_NUM_THREADS="1")
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-4000:]
    store = LocalStore(store_dir)
    metrics = store.get_json("training/fsdp-test/metrics.json")
    assert metrics["world_size"] == 2 and metrics["global_step"] == 4
    assert [h["loss"] for h in metrics["log_history"] if "loss" in h]
    config = yaml.safe_load(store.get_text("training/fsdp-test/config.yaml"))
    assert config["fsdp"] is True and config["fsdp_config"]["reshard_after_forward"] is True
    # rank 0 holds full checkpoints (FULL_STATE_DICT), so the store copy is complete
    assert store.exists("training/fsdp-test/checkpoints/checkpoint-4/optimizer.pt")
    from safetensors.torch import load_file

    store.get_file("training/fsdp-test/adapter/adapter_model.safetensors", tmp_path / "a.safetensors")
    tensors = load_file(tmp_path / "a.safetensors")
    assert any("lora_B" in k for k in tensors)
    assert all(t.abs().sum() > 0 for k, t in tensors.items() if "lora_B" in k)
