"""Configuration of the synthetic persuasion world and of its agents (pydantic, validated)."""

from __future__ import annotations

import hashlib
import json
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator


class WorldConfig(BaseModel):
    """What facts exist and who knows them.

    Every fact is "the capital of <country> is <city>", with invented one-token names. Each fact
    falls in one knowledge group: known to both agents, to A (strong) only, to B (weak) only,
    or to nobody. Within every group a share of the facts is held out for evaluation and never
    used to build dialogue trees (``eval_fraction``).
    """

    model_config = ConfigDict(extra="forbid")

    seed: int = Field(0, description="Seed for every random choice in the world.")
    n_facts: int = Field(120, ge=8, le=5000, description="Number of invented countries (one fact each).")
    frac_both: float = Field(0.30, ge=0.0, le=1.0, description="Share of facts both agents know.")
    frac_a_only: float = Field(0.30, ge=0.0, le=1.0, description="Share only the strong agent A knows.")
    frac_b_only: float = Field(0.20, ge=0.0, le=1.0, description="Share only the weak agent B knows.")
    eval_fraction: float = Field(
        0.3, gt=0.0, lt=1.0, description="Share of each knowledge group held out for evaluation."
    )
    syllables: int = Field(3, ge=2, le=5, description="Syllables per invented name.")

    @model_validator(mode="after")
    def _check(self) -> WorldConfig:
        total = self.frac_both + self.frac_a_only + self.frac_b_only
        if total > 1.0 + 1e-9:
            raise ValueError(
                f"frac_both + frac_a_only + frac_b_only = {total:.3f} must not exceed 1 "
                "(the rest is the share nobody knows)"
            )
        return self


class AgentTrainConfig(BaseModel):
    """How a world agent is trained from scratch (SFT, loss on the assistant turn only)."""

    model_config = ConfigDict(extra="forbid")

    hidden_size: int = Field(256, ge=16, description="Llama hidden size (a narrower one was too small).")
    num_layers: int = Field(4, ge=1)
    num_heads: int = Field(4, ge=1)
    intermediate_size: int = Field(1024, ge=16)
    steps: int = Field(
        500,
        ge=1,
        description="Optimizer steps: facts are learned early, the stance-to-city link trees need "
        "(`pbt_world.check.reply_consistency`) late (docs/demo.md).",
    )
    batch_size: int = Field(32, ge=1)
    lr: float = Field(
        1e-3,
        gt=0.0,
        description="Peak learning rate (a higher one left agents without their facts: docs/demo.md).",
    )
    warmup_steps: int = Field(30, ge=0)
    weight_decay: float = Field(0.0, ge=0.0)
    max_len: int = Field(160, ge=16, description="Token length cap per training example.")
    give_in_rate: float = Field(
        0.5, ge=0.0, le=1.0, description="How often the agent gives in when challenged, right or wrong."
    )
    dialogues_per_fact: int = Field(
        60,
        ge=0,
        description="Challenge dialogues per fact in the corpus (many examples, each seen about twice, "
        "rather than many passes over few: docs/demo.md).",
    )
    hedge_unknown: float = Field(
        1.0,
        ge=0.0,
        le=1.0,
        description="How often the agent voices uncertainty in a conversation about a fact it does not know: "
        "its answer is 'I am not sure. I think the capital of X is Y.' and its later replies open with 'My answer "
        "was only a guess'; on known facts it never does. Its give-in rate does not change: a hedged answer "
        "is given up as often as a confident one, whoever is right.",
    )
    qa_repeats: int = Field(20, ge=0, description="Plain question/answer examples per fact (its belief).")
    precision: Literal["auto", "fp32", "bf16-mixed"] = Field(
        "fp32",
        description="'fp32' (default): the same arithmetic on every CPU class, so a world's agents and every "
        "number after them do not depend on whether the CPU has AMX, AVX512-BF16 or only AVX2. "
        "'bf16-mixed': forward and backward under torch.autocast(bfloat16), fp32 weights and optimizer; "
        "faster where the CPU multiplies bfloat16 natively, but its rounding differs between those kernels. "
        "'auto': bf16-mixed where bf16 is native (`pbt.hardware.native_bf16`), else fp32. Agents are cached "
        "under the resolved value.",
    )

    threads: int = Field(2, ge=1, description="torch.set_num_threads during training.")
    seed: int = Field(0, description="Seed for initialisation, corpus sampling and batching.")

    @model_validator(mode="after")
    def _check(self) -> AgentTrainConfig:
        if self.hidden_size % self.num_heads:
            raise ValueError(
                f"hidden_size ({self.hidden_size}) must be divisible by num_heads ({self.num_heads})"
            )
        return self

    def resolved(self) -> AgentTrainConfig:
        """This config with ``precision`` 'auto' replaced by what this machine gets."""
        if self.precision != "auto":
            return self
        from pbt.hardware import native_bf16

        return self.model_copy(update={"precision": "bf16-mixed" if native_bf16() else "fp32"})


def config_key(*configs: BaseModel | dict, extra: dict | None = None) -> str:
    """A short stable hash of configurations (models or their dumps), used as a cache key in the store."""
    payload = [c if isinstance(c, dict) else c.model_dump(mode="json") for c in configs]
    if extra:
        payload.append(extra)
    blob = json.dumps(payload, sort_keys=True).encode()
    return hashlib.sha256(blob).hexdigest()[:16]
