"""DPO under `torchrun --nproc_per_node 2` on CPU (gloo) with the tiny model and ~32 pairs."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml
from pair_files import make_pairs, write_pairs

from pbt.hardware import cpu_class
from pbt.store import LocalStore

ROOT = Path(__file__).resolve().parents[2]
TORCHRUN = str(Path(sys.executable).with_name("torchrun"))


def _torchrun(args: list[str], tmp_path: Path, env: dict[str, str], timeout: int = 300) -> dict[int, str]:
    """Run ``torchrun --standalone --nproc_per_node 2 <args>``; return each rank's stderr.

    Each rank's stdout and stderr go to files (``--log-dir``/``--redirects``), so on a failure
    (non-zero status, timeout, or a rank that never reached the final barrier) the message shows
    torchrun's own output and both ranks' complete stderr.
    """
    log_dir = tmp_path / "torchrun-logs"
    cmd = [
        TORCHRUN,
        "--standalone",
        "--nproc_per_node",
        "2",
        "--log-dir",
        str(log_dir),
        "--redirects",
        "3",
        *args,
    ]
    proc = subprocess.Popen(
        cmd,
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        out, err = proc.communicate(timeout=timeout)
        problem = f"torchrun exited with status {proc.returncode}" if proc.returncode else None
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)  # torchrun and its ranks
        out, err = proc.communicate()
        problem = f"torchrun still running after {timeout}s (killed)"
    logs = {rank: _rank_log(log_dir, rank, "stderr") for rank in (0, 1)}
    if problem is None:
        missing = [r for r, text in logs.items() if f"rank {r} of 2 passed the final barrier" not in text]
        if missing:  # every rank must leave through training.main's final barrier, never before it
            problem = f"rank(s) {missing} exited without passing the final barrier"
    if problem:
        parts = [problem, f"--- torchrun stdout ---\n{out}", f"--- torchrun stderr ---\n{err}"]
        for rank, text in logs.items():
            parts.append(f"--- rank {rank} stdout ---\n{_rank_log(log_dir, rank, 'stdout')}")
            parts.append(f"--- rank {rank} stderr ---\n{text}")
        pytest.fail("\n".join(parts), pytrace=False)
    return logs


def _rank_log(log_dir: Path, rank: int, stream: str) -> str:
    """A local rank's stream as torchrun wrote it (``<log-dir>/<run>/attempt_<n>/<rank>/<stream>.log``)."""
    files = sorted(log_dir.glob(f"*/attempt_*/{rank}/{stream}.log"))
    return (
        "\n".join(f.read_text(errors="replace") for f in files)
        if files
        else f"(no {stream}.log for rank {rank})"
    )


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
    args = [
        "-m", "training.dpo",
        "--config", "training/configs/dpo-tiny.yaml",
        "--pairs", str(pairs), "--base_model", str(tiny_model_dir),
        "--store", str(store_dir), "--output_dir", str(tmp_path / "out"),
        "--run_id", "ddp-test", "--per_device_train_batch_size", "2", "--pair_budget", "32",
    ]  # fmt: skip
    logs = _torchrun(args, tmp_path, env)
    assert "Traceback" not in logs[1], logs[1]

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
    for step in (4, 8):  # each rank's files, uploaded after every rank wrote them
        assert store.exists(f"{run}/checkpoints/checkpoint-{step}/rng_state_1.pth")

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
    """The FSDP option (FSDP2, full shard, decoder layers wrapped) under torchrun on CPU.

    accelerate does not shard on CPU, so the ranks train with DDP here (and say so): this checks
    that the option is accepted, recorded and trains, not sharding (tests/gpu does not cover it).
    """
    pairs = write_pairs(tmp_path / "pairs.jsonl", make_pairs(16, 4))
    store_dir = tmp_path / "store"
    fsdp_config = {
        "version": 2,
        "reshard_after_forward": True,
        "transformer_layer_cls_to_wrap": ["LlamaDecoderLayer"],
        "state_dict_type": "FULL_STATE_DICT",
    }
    args = [
        "-m", "training.dpo",
        "--config", "training/configs/dpo-tiny.yaml",
        "--pairs", str(pairs), "--base_model", str(tiny_model_dir),
        "--store", str(store_dir), "--output_dir", str(tmp_path / "out"), "--run_id", "fsdp-test",
        "--per_device_train_batch_size", "2", "--max_steps", "4", "--precompute_ref_log_probs", "false",
        "--track_param_changes", "false", "--eval_train_at_end", "false",
        "--fsdp_config", json.dumps(fsdp_config), "--fsdp",
    ]  # fmt: skip
    env = dict(os.environ, OMP_NUM_THREADS="1", PBT_LOG_LEVEL="INFO")  # INFO: each rank logs its exit
    logs = _torchrun(args, tmp_path, env)
    assert "fsdp is set, but accelerate does not shard on cpu: this run trains with MULTI_CPU" in logs[0]
    store = LocalStore(store_dir)
    metrics = store.get_json("training/fsdp-test/metrics.json")
    assert metrics["world_size"] == 2 and metrics["global_step"] == 4
    assert [h["loss"] for h in metrics["log_history"] if "loss" in h]
    config = yaml.safe_load(store.get_text("training/fsdp-test/config.yaml"))
    assert config["fsdp"] is True and config["fsdp_config"]["reshard_after_forward"] is True
    # rank 0 holds full checkpoints (FULL_STATE_DICT), so the store copy is complete
    assert store.exists("training/fsdp-test/checkpoints/checkpoint-4/optimizer.pt")
    assert store.exists("training/fsdp-test/checkpoints/checkpoint-4/rng_state_1.pth")
    from safetensors.torch import load_file

    store.get_file("training/fsdp-test/adapter/adapter_model.safetensors", tmp_path / "a.safetensors")
    tensors = load_file(tmp_path / "a.safetensors")
    assert any("lora_B" in k for k in tensors)
    assert all(t.abs().sum() > 0 for k, t in tensors.items() if "lora_B" in k)
