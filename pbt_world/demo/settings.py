"""Settings of a demo run (`pbt demo`): the full default and the reduced ``--fast`` preset."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from pbt_world.config import AgentTrainConfig, WorldConfig


class DpoSettings(BaseModel):
    """DPO of the three variants (via `training.dpo` under torchrun), from the strong agent."""

    model_config = ConfigDict(extra="forbid")

    epochs: float = Field(5.0, gt=0.0, description="Passes over the mode's pair budget.")
    batch_size: int = Field(8, ge=1, description="Pairs per step (per_device_train_batch_size).")
    learning_rate: float = Field(5e-4, gt=0.0)
    sft_weight: float = Field(
        1.0,
        ge=0.0,
        description="Weight of an NLL term on the chosen response next to the DPO loss (TRL loss_type "
        "[sigmoid, sft]). Without it, DPO on a few dozen pairs drives both log-probabilities down and the "
        "tiny agents' generations fall apart (measured: 60 plain DPO steps at lr 2e-3 took the strong agent "
        "from 60% to 0-20% first-answer accuracy).",
    )
    beta: float = Field(0.1, gt=0.0)
    lora_r: int = Field(16, ge=1)
    lora_alpha: int = Field(32, ge=1)
    target_modules: list[str] = Field(
        default_factory=lambda: ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
    )
    nproc: int = Field(1, ge=1, description="torchrun --nproc_per_node (processes, gloo on CPU).")


class DemoSettings(BaseModel):
    """Everything one `pbt demo` run does; ``fast()`` is the reduced run of the e2e test."""

    model_config = ConfigDict(extra="forbid")

    seeds: list[int] = Field(default_factory=lambda: [0], min_length=1, description="World/pipeline seeds.")
    n_facts: int = Field(100, ge=8)
    agent: AgentTrainConfig = Field(default_factory=AgentTrainConfig)
    questions: int | None = Field(
        None, ge=1, description="Tree questions per seed (default: all train facts)."
    )
    eval_questions: int | None = Field(None, ge=1, description="Questions/items per suite (default: all).")
    max_turns: int = Field(
        6,
        ge=2,
        le=8,
        description="Tree depth. The paper's 4 only labels B's level-3 replies; 6 also labels A's level-4 "
        "replies (A resisting B's wrong push, accepting B's right one), which doubles the pairs and balances them.",
    )
    branching: list[int] | None = Field(
        default_factory=lambda: [1, 2, 2, 2, 2, 2],
        description="Children per level (the paper's pattern continued; None: 1, |B|, |A|, |B|, ...).",
    )
    stop_on_agreement: bool = Field(
        False,
        description="PBT-METHOD §2 ends a branch when both answers are the same string. World answers are "
        "single invented names, so an accepted push always ends its branch at once, while the sibling that "
        "held on goes on; §4 skips siblings with different child counts, and at the last level accepting "
        "scores 2 vs 1, exactly the 0.5 margin §4 rejects. With the stop, 70 trees gave 3 accept pairs "
        "(measured); real answers escape it through alias spellings ('Paris' / 'Paris, France').",
    )
    tree_temperature: float = Field(
        0.4,
        ge=0.0,
        le=2.0,
        description="Sampling temperature of the tree agents. The paper's 0.7 is for large models; the 4 M "
        "world agents then name a city nobody said in ~40% of disagreeing turns (measured), which labels "
        "pairs by luck. At 0.4 the give-in/hold choice (near 50/50) stays diverse and stray cities fell to 7% "
        "of disagreeing turns in the one run measured.",
    )
    trees_per_question: int = Field(
        4,
        ge=1,
        le=64,
        description="Trees per train question, each sampled with its own seeds. Clean persuasion events are "
        "rare (after the filter 0.33-0.65 labelled pairs per tree, 0.13-0.19 accept pairs per tree; seeds "
        "0-2, measured), and a 100-fact world has 70 train questions; more trees per question is the cheap "
        "way to more pairs (the agents stay as trained).",
    )
    pair_filter: Literal["none", "rules"] = Field(
        "rules",
        description="PBT-METHOD §4.5 filter of the mined pairs. Because branches go on after agreement, §4.4 "
        "also labels 'accept' a reply that goes back to the agent's earlier right answer while disagreeing "
        "with a partner who repeats the wrong one (nobody was persuaded): measured on 70 trees of seeds 1 "
        "and 2, 65 and 48 of 74 and 68 accept pairs had a chosen reply that disagreed. 'rules' keeps an "
        "accept pair only when its chosen reply agrees with the persuader and the rejected one does not "
        "(resist: the other way round), read by the rule extractor's stance cues.",
    )
    pbt_balance: Literal["overall", "position"] = Field(
        "overall",
        description="How the PBT pairs trim the larger code (ExtractPreferencesRequest.pbt_balance).",
    )
    pair_agents: Literal["both", "a", "b"] = Field(
        "both",
        description="Whose replies become pairs (ExtractPreferencesRequest.pair_agents); the variants are "
        "trained from the strong agent A.",
    )
    debate_turns: int = Field(4, ge=1, le=8, description="Team-debate discussion turns.")
    eval_seeds: list[int] = Field(
        default_factory=lambda: [12],
        min_length=1,
        description="Evaluation seeds (sampling and option order).",
    )
    eval_temperature: float = Field(
        0.0,
        ge=0.0,
        description="Sampling temperature of the evaluated models (0: greedy, as the paper). A world agent "
        "gives in at a set rate, so greedy decoding reports the side of its coin that is a little more "
        "likely, 0% or 100% per kind of context; with a temperature and several eval_seeds the suites "
        "measure the rate itself.",
    )
    dpo: DpoSettings = Field(default_factory=DpoSettings)
    work: Path = Field(Path(".pbt/demo"), description="Local working folder (logs, model copies).")
    store_url: str | None = Field(None, description="Object store (default: env, else ./store).")
    agent_cache_url: str | None = Field(
        None, description="Store that caches the trained world agents (default: the run's store)."
    )
    run_id: str = Field("demo", pattern=r"^[a-z0-9][a-z0-9-]{0,62}$")
    threads: int = Field(1, ge=1, description="torch threads per agent server.")

    def world_config(self, seed: int) -> WorldConfig:
        return WorldConfig(seed=seed, n_facts=self.n_facts)

    @classmethod
    def fast(cls, **overrides: object) -> DemoSettings:
        """The reduced run: a 40-fact world, 6 trees on each of its 28 train questions, short DPO.

        Its agents train 400 steps: the stance link (an agent that says "You are right" names the
        pushed city, `pbt_world.check.reply_consistency`) forms between 160 and 360 steps on this
        world, and without it accept pairs come out by luck (docs/demo.md, "The reduced run")."""
        base: dict = {
            "n_facts": 40,
            "agent": AgentTrainConfig(steps=400),
            "questions": None,
            "eval_questions": 10,
            "dpo": DpoSettings(epochs=2.0, batch_size=4),
            "trees_per_question": 6,  # 2 gave 1 accept pair from 56 trees: half agree at the root
            "debate_turns": 2,
        }
        base.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**base)
