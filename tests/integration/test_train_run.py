"""Training runs end to end: bad input stops before training, a killed run resumes, SFT -> DPO over S3."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from pair_files import make_pairs, write_pairs

from pbt.errors import NotFoundError, ValidationError
from pbt.net import free_port
from pbt.store import LocalStore, open_store
from training.args import parse_setup
from training.checkpoints import complete_steps
from training.runner import run_training

ROOT = Path(__file__).resolve().parents[2]
TINY_DPO = str(ROOT / "training" / "configs" / "dpo-tiny.yaml")
TINY_SFT = str(ROOT / "training" / "configs" / "sft-tiny.yaml")


def _setup(stage: str, pairs: str, base: str, store: str, out: Path, *extra: str):
    cfg = TINY_DPO if stage == "dpo" else TINY_SFT
    return parse_setup(
        stage,
        [
            "--config",
            cfg,
            "--pairs",
            pairs,
            "--base_model",
            base,
            "--store",
            store,
            "--output_dir",
            str(out),
            *extra,
        ],
    )


def test_bad_input_is_reported_before_training(tiny_model_dir, tmp_path):
    store_dir = tmp_path / "store"
    good = write_pairs(tmp_path / "good.jsonl", make_pairs(8, 2))
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    only_resist = write_pairs(tmp_path / "resist.jsonl", make_pairs(8, 2, codes=("resist",)))
    long_rows = make_pairs(8, 2)
    long_rows[0]["chosen"][0]["content"] += " because" * 300
    too_long = write_pairs(tmp_path / "long.jsonl", long_rows)
    cases = [
        (empty, tiny_model_dir, [], ValidationError, "empty"),
        (only_resist, tiny_model_dir, [], ValidationError, "no accept pairs"),
        (
            only_resist,
            tiny_model_dir,
            ["--mode", "accept", "--pair_budget", "2"],
            ValidationError,
            "has none",
        ),
        (good, tmp_path / "no-such-model", [], NotFoundError, "base_model"),
        (
            too_long,
            tiny_model_dir,
            ["--overlong", "error", "--max_length", "128"],
            ValidationError,
            "max_length=128",
        ),
        (good, tiny_model_dir, ["--lora_target_modules", "qkv"], ValidationError, "lora_target_modules"),
    ]
    for pairs, base, extra, error, message in cases:
        setup = _setup("dpo", str(pairs), str(base), str(store_dir), tmp_path / "out", *extra)
        with pytest.raises(error, match=message):
            run_training(setup)
    assert list(LocalStore(store_dir).list("training/")) == []  # nothing was trained or written
    assert not (tmp_path / "out").exists()


@pytest.mark.slow
def test_killed_run_resumes_from_its_last_checkpoint(tiny_model_dir, tmp_path):
    pairs = write_pairs(tmp_path / "pairs.jsonl", make_pairs(32, 0))
    store_dir = tmp_path / "store"
    store = LocalStore(store_dir)
    args = [
        sys.executable, "-m", "training.dpo", "--config", TINY_DPO,
        "--pairs", str(pairs), "--base_model", str(tiny_model_dir), "--store", str(store_dir),
        "--run_id", "resume-test", "--dev_pairs", "none", "--eval_train_at_end", "false",
        "--eval_strategy", "no", "--load_best_model_at_end", "false",
        "--max_steps", "16", "--save_steps", "2", "--per_device_train_batch_size", "2",
    ]  # fmt: skip
    env = dict(os.environ, OMP_NUM_THREADS="1", PBT_LOG_LEVEL="INFO")
    first = subprocess.Popen(
        [*args, "--output_dir", str(tmp_path / "pod1")], cwd=ROOT, env=env,
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 240
        while not complete_steps(store, "training/resume-test") and time.monotonic() < deadline:
            assert first.poll() is None, first.stderr.read().decode()[-3000:]
            time.sleep(0.05)
        os.killpg(first.pid, signal.SIGKILL)  # a crash: no clean shutdown
    finally:
        if first.poll() is None:
            os.killpg(first.pid, signal.SIGKILL)
        first.wait(timeout=30)
        first.stderr.close()
    saved = complete_steps(store, "training/resume-test")
    assert saved and saved[-1] < 16, f"the first run was not killed mid-training (checkpoints {saved})"
    assert not store.exists("training/resume-test/metrics.json")

    # a new pod, started like the training operator does (PET_* rendezvous settings, plain
    # `python -m training.dpo`, which re-executes itself under torchrun); its local folder is
    # empty, so the checkpoint must come from the store
    pod_env = dict(env, PET_NNODES="1", PET_NPROC_PER_NODE="1", PET_NODE_RANK="0",
                   PET_MASTER_ADDR="127.0.0.1", PET_MASTER_PORT=str(free_port()))  # fmt: skip
    second = subprocess.run(
        [*args, "--output_dir", str(tmp_path / "pod2")], cwd=ROOT, env=pod_env, capture_output=True, text=True,
        timeout=300,
    )  # fmt: skip
    assert second.returncode == 0, second.stderr[-4000:]
    assert "re-executing under torchrun" in second.stderr
    metrics = store.get_json("training/resume-test/metrics.json")
    assert metrics["resumed_from_step"] == saved[-1]
    assert metrics["global_step"] == 16
    assert metrics["checkpoints_uploaded"][0] == saved[-1] + 2  # the second run went on from there
    steps_logged = [h["step"] for h in metrics["log_history"] if "loss" in h]
    assert steps_logged == sorted(set(steps_logged)) and steps_logged[-1] == 16
    assert (tmp_path / "pod2" / f"checkpoint-{saved[-1]}" / "trainer_state.json").is_file()
    assert store.get_json("training/resume-test/manifest.json")["resumed_from_step"] == saved[-1]


@pytest.mark.slow
@pytest.mark.integration
def test_sft_then_dpo_through_s3(tiny_model_dir, tmp_path, s3_env):
    store = open_store()
    store.put_jsonl("prefs/tiny/pairs.jsonl", make_pairs(16, 4))
    digest = hashlib.sha256(store.get_bytes("prefs/tiny/pairs.jsonl")).hexdigest()
    prefs_manifest = {"kind": "pbt.prefs/v1", "mode": "pbt", "seed": 0, "inputs": [{"path": "trees/job-1"}],
                      "output": {"sha256": digest}}  # fmt: skip
    store.put_json("prefs/tiny/pairs.manifest.json", prefs_manifest)
    pairs_uri = f"s3://{s3_env['bucket']}/prefs/tiny/pairs.jsonl"

    sft = run_training(
        _setup(
            "sft", pairs_uri, str(tiny_model_dir), "", tmp_path / "sft", "--run_id", "sft-tiny", "--max_steps", "4",
            "--eval_steps", "2", "--save_steps", "2", "--extractor", "rule", "--balanced_max_new_tokens", "8",
        )
    )  # fmt: skip
    assert sft.outputs["merged"] == "training/sft-tiny/merged"
    assert store.exists("training/sft-tiny/merged/config.json")
    assert store.exists("training/sft-tiny/merged/model.safetensors")
    sft_metrics = store.get_json("training/sft-tiny/metrics.json")
    # model selection by balanced persuasion accuracy (generation + rule extraction) at steps 2 and 4
    assert sft_metrics["select_by"] == "balanced_accuracy" and "eval_balanced_accuracy" in sft_metrics["dev"]
    during = [h["eval_balanced_accuracy"] for h in sft_metrics["balanced_history"][:2]]
    assert [h["step"] for h in sft_metrics["balanced_history"][:2]] == [2, 4]
    assert sft_metrics["best_metric"] == max(during) and 0.0 <= max(during) <= 1.0
    assert sft_metrics["best_model_checkpoint"].endswith(f"checkpoint-{2 if during[0] >= during[1] else 4}")

    dpo = run_training(
        _setup(
            "dpo", "store:prefs/tiny/pairs.jsonl", "store:training/sft-tiny/merged", "", tmp_path / "dpo",
            "--run_id", "dpo-after-sft", "--mode", "resist", "--max_steps", "2", "--dev_pairs", "none",
            "--eval_strategy", "no", "--load_best_model_at_end", "false", "--save_steps", "2",
        )
    )  # fmt: skip
    manifest = store.get_json("training/dpo-after-sft/manifest.json")
    assert manifest["inputs"]["base_model"]["location"] == "store:training/sft-tiny/merged"
    assert manifest["inputs"]["pairs"]["mode"] == "resist"
    lineage = manifest["inputs"]["pairs"]["prefs_manifest"]  # trees -> pairs -> adapter
    assert lineage["sha256_matches"] is True and lineage["inputs"] == [{"path": "trees/job-1"}]
    assert manifest["inputs"]["pairs"]["sha256"] == digest
    assert manifest["inputs"]["pairs"]["selected"]["train"] == {"accept": 0, "resist": 8}
    assert manifest["store"].startswith("s3://")
    assert dpo.outputs["adapter"] == "training/dpo-after-sft/adapter"
    assert store.exists("training/dpo-after-sft/adapter/adapter_model.safetensors")
    resolved = yaml.safe_load(store.get_text("training/dpo-after-sft/config.yaml"))
    assert resolved["mode"] == "resist" and resolved["max_steps"] == 2
    assert json.loads(json.dumps(dpo.metrics["train"]))["train_loss"] > 0


@pytest.mark.slow
def test_full_parameter_dpo_writes_the_whole_model(tiny_model_dir, tmp_path):
    pairs = write_pairs(tmp_path / "pairs.jsonl", make_pairs(8, 0))
    result = run_training(
        _setup(
            "dpo", str(pairs), str(tiny_model_dir), str(tmp_path / "store"), tmp_path / "out",
            "--use_peft", "false", "--learning_rate", "2e-4", "--max_steps", "2", "--dev_pairs", "none",
            "--eval_strategy", "no", "--load_best_model_at_end", "false", "--save_steps", "2",
        )
    )  # fmt: skip
    assert result.outputs["adapter"] is None and result.outputs["model"] == "training/dpo-pbt-seed42/model"
    store = LocalStore(tmp_path / "store")
    assert store.exists("training/dpo-pbt-seed42/model/model.safetensors")
    changes = result.metrics["param_changes"]
    assert changes["frozen_total"] == 0 and changes["trainable_changed"] == changes["trainable_total"] > 0
    assert "train_pairs" not in result.metrics  # skipped: the precomputed reference is gone after training
