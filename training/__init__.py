"""SFT and DPO training on PBT preference pairs (TRL + PEFT LoRA, torchrun-ready).

Entry points: ``python -m training.dpo --config training/configs/<name>.yaml [--flag value ...]``
and ``python -m training.sft ...`` (also ``pbt train dpo|sft``); under ``torchrun`` or a Kubeflow
PyTorchJob the same commands train with DDP (gloo on CPU, NCCL on GPU) or FSDP.

Programmatic use::

    from training import parse_setup, run_training
    result = run_training(parse_setup("dpo", ["--config", "training/configs/dpo-tiny.yaml",
                                              "--pairs", "pairs.jsonl", "--base_model", "models/tiny"]))
    result.outputs["adapter"]   # store key of the adapter folder
"""

from training.args import DataArguments, ModelArguments, RunArguments, TrainingSetup, parse_setup
from training.runner import RunResult, run_training

__all__ = [
    "DataArguments",
    "ModelArguments",
    "RunArguments",
    "RunResult",
    "TrainingSetup",
    "parse_setup",
    "run_training",
]
