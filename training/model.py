"""Base model, tokenizer and LoRA configuration for a run."""

from __future__ import annotations

import importlib.util
import logging
from pathlib import Path
from typing import Any

from pbt.errors import NotFoundError, ValidationError
from training.args import ModelArguments

log = logging.getLogger(__name__)

WEIGHT_FILES = (
    "model.safetensors",
    "model.safetensors.index.json",
    "pytorch_model.bin",
    "pytorch_model.bin.index.json",
)


def is_remote(location: str) -> bool:
    return location.startswith(("s3://", "store:"))


def fetch_model_dir(location: str, cache_dir: Path, store: Any = None) -> Path:
    """Download a model folder from ``s3://bucket/prefix`` or ``store:<prefix>`` into ``cache_dir``."""
    from pbt.store import open_store

    if location.startswith("s3://"):
        bucket, _, prefix = location[len("s3://") :].partition("/")
        src, key = open_store(f"s3://{bucket}"), prefix
    else:
        src, key = (store or open_store()), location[len("store:") :]
    target = cache_dir / key.strip("/").replace("/", "__")
    if (target / "config.json").is_file():
        return target
    try:
        src.get_dir(key, target)
    except NotFoundError:
        raise NotFoundError(
            f"base model not found: no objects under {location} (field 'base_model')"
        ) from None
    return target


def check_model_dir(location: str, field_name: str = "base_model") -> None:
    """Fail early, naming the field, when a local model folder is missing or incomplete."""
    path = Path(location)
    looks_local = (
        path.is_absolute() or location.startswith((".", "~")) or path.exists() or location.count("/") > 1
    )
    if not looks_local:
        return  # a hub id such as 'meta-llama/Llama-3.1-8B-Instruct'
    path = path.expanduser()
    if not path.is_dir():
        raise NotFoundError(f"model folder not found: {path} (field '{field_name}')")
    if not (path / "config.json").is_file():
        raise ValidationError(
            f"{path} has no config.json: not a save_pretrained model folder", field=field_name
        )
    if field_name == "base_model" and not any((path / f).is_file() for f in WEIGHT_FILES):
        raise ValidationError(f"{path} has no weights ({' / '.join(WEIGHT_FILES)})", field=field_name)


def resolve_dtype(name: str) -> Any:
    import torch

    if name == "auto":
        if torch.cuda.is_available() and torch.cuda.is_bf16_supported():
            return torch.bfloat16
        return torch.float32
    return getattr(torch, name)


def quantization_config(args: ModelArguments) -> Any:
    """A bitsandbytes config for 8/4-bit loading, or None. 'auto' downgrades to None without CUDA."""
    import torch

    mode = args.quantization
    usable = torch.cuda.is_available() and importlib.util.find_spec("bitsandbytes") is not None
    if mode == "none":
        return None
    if mode == "auto":
        if not usable:
            log.info(
                "quantization=auto: bitsandbytes or CUDA missing, loading the base model in full precision"
            )
            return None
        mode = "8bit"
    if not usable:
        raise ValidationError(
            f"{mode} loading needs CUDA and the bitsandbytes package; set quantization to 'none' or 'auto'",
            field="quantization",
        )
    from transformers import BitsAndBytesConfig

    if mode == "8bit":
        return BitsAndBytesConfig(load_in_8bit=True)
    return BitsAndBytesConfig(
        load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_compute_dtype=resolve_dtype(args.dtype)
    )


def load_tokenizer(location: str) -> Any:
    from transformers import AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(location)
    except OSError as exc:  # a hub id without network, unreadable files
        raise NotFoundError(
            f"cannot load a tokenizer from {location!r} (field 'tokenizer'/'base_model'): {exc}"
        ) from None
    except ValueError as exc:  # a model folder without tokenizer files
        raise ValidationError(
            f"{location!r} has no usable tokenizer ({str(exc).splitlines()[0]}); set 'tokenizer'",
            field="tokenizer",
        ) from None
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    if not getattr(tokenizer, "chat_template", None):
        raise ValidationError(
            f"the tokenizer at {location} has no chat template; pairs are chat messages", field="tokenizer"
        )
    return tokenizer


def load_model(location: str, args: ModelArguments, trainer_args: Any) -> Any:
    """Load the causal LM with the configured dtype, quantization and attention."""
    from transformers import AutoModelForCausalLM

    kwargs: dict[str, Any] = {"dtype": resolve_dtype(args.dtype)}
    quant = quantization_config(args)
    if quant is not None:
        kwargs["quantization_config"] = quant
        kwargs["device_map"] = {"": trainer_args.device}  # this process's GPU (quantized weights cannot move)
    if args.attn_implementation:
        kwargs["attn_implementation"] = args.attn_implementation
    try:
        model = AutoModelForCausalLM.from_pretrained(location, **kwargs)
    except OSError as exc:
        raise NotFoundError(
            f"cannot load the base model from {location!r} (field 'base_model'): {exc}"
        ) from None
    if quant is not None:
        from peft import prepare_model_for_kbit_training

        model = prepare_model_for_kbit_training(
            model, use_gradient_checkpointing=bool(trainer_args.gradient_checkpointing)
        )
    return model


def lora_config(args: ModelArguments, model: Any = None) -> Any:
    """The PEFT LoRA config; checks that the target modules exist in the model."""
    from peft import LoraConfig

    if model is not None:
        names = {n.rsplit(".", 1)[-1] for n, _ in model.named_modules()}
        missing = [m for m in args.lora_target_modules if m not in names]
        if missing:
            raise ValidationError(
                f"modules {missing} do not exist in the base model (it has e.g. {sorted(names)[:12]})",
                field="lora_target_modules",
            )
    return LoraConfig(
        r=args.lora_r,
        lora_alpha=args.lora_alpha,
        lora_dropout=args.lora_dropout,
        target_modules=list(args.lora_target_modules),
        bias="none",
        task_type="CAUSAL_LM",
    )


def merge_and_save(base_location: str, adapter_dir: Path, out_dir: Path, dtype: str) -> Path:
    """Load the base in full precision, merge the adapter into it and save it with the tokenizer."""
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    base = AutoModelForCausalLM.from_pretrained(base_location, dtype=resolve_dtype(dtype))
    merged = PeftModel.from_pretrained(base, str(adapter_dir)).merge_and_unload()
    merged.save_pretrained(out_dir)
    AutoTokenizer.from_pretrained(adapter_dir).save_pretrained(out_dir)
    return out_dir
