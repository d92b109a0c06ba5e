"""Training configuration: YAML + command-line overrides, shipped configs, resolved config round trip."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from pbt.errors import ValidationError
from training.args import RunArguments, parse_setup

CONFIGS = Path(__file__).resolve().parents[2] / "training" / "configs"
REQUIRED = ["--pairs", "p.jsonl", "--base_model", "/models/base"]
CPU = ["--use_cpu", "true"]  # the paper configs ask for bf16 on a GPU


def test_every_field_has_help_text():
    import dataclasses

    from training.args import DataArguments, ModelArguments

    for cls in (RunArguments, DataArguments, ModelArguments):
        for f in dataclasses.fields(cls):
            assert f.metadata.get("help"), f"{cls.__name__}.{f.name} has no help text"


@pytest.mark.parametrize("path", sorted(CONFIGS.glob("*.yaml")), ids=lambda p: p.name)
def test_shipped_configs_parse(path):
    stage = yaml.safe_load(path.read_text())["stage"]
    setup = parse_setup(stage, ["--config", str(path), *REQUIRED, *CPU])
    assert setup.stage == stage
    assert setup.trainer.learning_rate > 0
    if "llama3" in path.name:  # the reference's settings (PBT-METHOD.md §5, its slurm_scripts)
        assert setup.trainer.learning_rate == 5e-4 and setup.trainer.warmup_steps == 100
        assert (setup.model.lora_r, setup.model.lora_alpha, setup.model.lora_dropout) == (16, 32, 0.05)
        assert setup.model.lora_target_modules == ["q_proj", "k_proj", "v_proj"]
        assert setup.model.quantization in ("auto", "none")
        assert getattr(setup.trainer.lr_scheduler_type, "value", None) == "cosine"
        if stage == "dpo":
            assert setup.run.effective_batch_size == 35
            assert setup.trainer.beta == 0.1
            assert setup.trainer.num_train_epochs == (2 if "70b" in path.name else 5)
            # model selection by balanced accuracy on dev (the reference's flipflop_acc); FSDP shards
            # the model that generation needs, so its preset keeps reward accuracy
            if "fsdp" in path.name:
                assert setup.trainer.metric_for_best_model == "rewards/accuracies"
            else:
                assert setup.run.select_by == "balanced_accuracy" and setup.run.extractor
                assert setup.trainer.metric_for_best_model == "balanced_accuracy"
            # each variant from its own SFT model (test_each_dpo_variant_starts_from_its_own_sft_model)
            assert "{mode}" in yaml.safe_load(path.read_text())["base_model"]
        else:
            # SFT: 240 steps, effective batch 80 (70B: the reference's 6 x 13 = 78), the fixed last step
            assert setup.trainer.max_steps == 240
            assert setup.run.effective_batch_size == (78 if "70b" in path.name else 80)
            assert setup.run.select_by == "last" and setup.run.merge_adapter
            assert setup.data.dev_pairs == "mode"


@pytest.mark.parametrize("size", ["8b", "70b"])
@pytest.mark.parametrize("mode", ["accept", "resist", "pbt"])
def test_each_dpo_variant_starts_from_its_own_sft_model(size, mode):
    """SFT per variant (accept-only SFT for accept, resist-only for resist, balanced for PBT) and each
    DPO run from its own SFT checkpoint: the SFT run's merged model is the DPO run's base."""
    over = ["--pairs", "pairs.jsonl", "--mode", mode, "--seed", "12", *CPU]
    sft = parse_setup("sft", ["--config", str(CONFIGS / f"sft-llama3-{size}.yaml"), *over])
    dpo = parse_setup("dpo", ["--config", str(CONFIGS / f"dpo-llama3-{size}.yaml"), *over])
    assert sft.run_id == f"sft-llama3-{size}-{mode}" and sft.data.mode == dpo.data.mode == mode
    assert dpo.model.base_model == f"store:training/{sft.run_id}/merged"


def test_o_proj_is_an_option():
    cfg = str(CONFIGS / "dpo-llama3-8b.yaml")
    setup = parse_setup(
        "dpo",
        ["--config", cfg, *REQUIRED, *CPU, "--lora_target_modules", "q_proj", "k_proj", "v_proj", "o_proj"],
    )
    assert setup.model.lora_target_modules == ["q_proj", "k_proj", "v_proj", "o_proj"]


def test_command_line_overrides_the_yaml():
    cfg = str(CONFIGS / "dpo-tiny.yaml")
    setup = parse_setup(
        "dpo", ["--config", cfg, *REQUIRED, "--beta", "0.3", "--mode", "resist", "--seed", "12"]
    )
    assert setup.trainer.beta == 0.3 and setup.data.mode == "resist"
    assert setup.run_id == "dpo-resist-seed12"
    assert setup.trainer.max_steps == 8  # from the YAML


def test_effective_batch_sets_gradient_accumulation():
    cfg = str(CONFIGS / "dpo-tiny.yaml")
    setup = parse_setup(
        "dpo",
        ["--config", cfg, *REQUIRED, "--effective_batch_size", "35", "--per_device_train_batch_size", "5"],
    )
    assert setup.trainer.gradient_accumulation_steps == 7


def test_unknown_yaml_key_names_file_and_suggests(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("stage: dpo\nbeta: 0.1\nlora_rank: 8\n")
    with pytest.raises(ValidationError) as exc:
        parse_setup("dpo", ["--config", str(bad), *REQUIRED])
    assert str(bad) in str(exc.value) and "'lora_rank'" in str(exc.value) and "lora_r" in str(exc.value)


def test_missing_required_and_wrong_stage(tmp_path):
    cfg = str(CONFIGS / "dpo-tiny.yaml")
    with pytest.raises(ValidationError, match="'pairs'"):
        parse_setup("dpo", ["--config", cfg, "--base_model", "/m"])
    with pytest.raises(ValidationError, match="'base_model'"):
        parse_setup("dpo", ["--config", cfg, "--pairs", "p.jsonl"])
    with pytest.raises(ValidationError, match="stage 'sft', not 'dpo'"):
        parse_setup("dpo", ["--config", str(CONFIGS / "sft-tiny.yaml"), *REQUIRED])
    broken = tmp_path / "broken.yaml"
    broken.write_text("beta: [0.1\n")
    with pytest.raises(ValidationError, match="broken.yaml:"):
        parse_setup("dpo", ["--config", str(broken), *REQUIRED])


def test_resolved_config_parses_back_to_the_same_values(tmp_path):
    cfg = str(CONFIGS / "dpo-tiny.yaml")
    setup = parse_setup("dpo", ["--config", cfg, *REQUIRED, "--beta", "0.25", "--run_id", "x1"])
    resolved = tmp_path / "resolved.yaml"
    resolved.write_text(yaml.safe_dump(setup.resolved()))
    again = parse_setup("dpo", ["--config", str(resolved)])
    assert again.resolved() == setup.resolved()
    assert again.trainer.beta == 0.25 and again.run_id == "x1"
    assert again.trainer.pad_token is None and "hub_token" not in setup.resolved()


def test_cli_reports_config_errors_in_one_line(tmp_path):
    from click.testing import CliRunner

    from pbt.cli.main import cli

    bad = tmp_path / "bad.yaml"
    bad.write_text("stage: dpo\nbeta: 0.1\nlora_rank: 8\n")
    result = CliRunner().invoke(cli, ["train", "dpo", "--config", str(bad), *REQUIRED])
    assert result.exit_code == 2
    assert "unknown option(s) 'lora_rank'" in result.output and "Traceback" not in result.output
    help_text = CliRunner().invoke(cli, ["train", "sft", "--help"])
    assert help_text.exit_code == 0 and "--pair_budget" in help_text.output


def test_trainer_argument_conflicts_are_validation_errors():
    cfg = str(CONFIGS / "dpo-tiny.yaml")
    with pytest.raises(ValidationError, match="dpo-tiny.yaml.*round multiple"):
        parse_setup("dpo", ["--config", cfg, *REQUIRED, "--save_steps", "3"])


def test_a_bad_mode_fails_at_submit_time_not_in_the_pod(tmp_path):
    from click.testing import CliRunner

    from pbt.cli.main import cli

    config = yaml.safe_load((CONFIGS / "dpo-llama3-8b.yaml").read_text()) | {"mode": "persuade"}
    path = tmp_path / "bad-mode.yaml"
    path.write_text(yaml.safe_dump(config))
    result = CliRunner().invoke(cli, ["train", "submit", "--config", str(path), "--dry-run"])
    assert result.exit_code != 0
    assert "field 'mode'" in result.output and "unknown mode 'persuade'" in result.output
    assert "PyTorchJob" not in result.output
    local = tmp_path / "local.yaml"
    local.write_text(yaml.safe_dump({"mode": "labelled"}))
    with pytest.raises(ValidationError, match="unknown mode 'labelled'"):
        parse_setup("dpo", [*REQUIRED, *CPU, "--config", str(local)])


def test_the_job_renderer_and_the_pod_agree_on_the_default_run_id():
    """`pbt train submit` names the job's run id before the pod parses its arguments: the
    renderer's defaults must be the pod's (one `run_id_for`, and the same default mode and seed)."""
    import dataclasses

    import transformers

    from pbt.jobs.pytorchjob import DEFAULT_MODE, DEFAULT_SEED, run_id_for
    from training.args import DataArguments

    assert DEFAULT_SEED == transformers.TrainingArguments.__dataclass_fields__["seed"].default
    assert DEFAULT_MODE == {f.name: f for f in dataclasses.fields(DataArguments)}["mode"].default
    assert run_id_for("dpo", "pbt", 42) == "dpo-pbt-seed42"
    assert run_id_for("sft", "accept", 7, "sft-{mode}-s{seed}") == "sft-accept-s7"
