"""Settings of a demo run (`pbt demo`): the full default and the reduced ``--fast`` preset."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from pbt_world.config import AgentTrainConfig, WorldConfig

#: the trained variants of each agent, and with the untrained one the methods of the team tables
VARIANTS = ("accept", "resist", "pbt")
METHODS = ("base", *VARIANTS)


class DpoSettings(BaseModel):
    """DPO of the three variants of one agent (via `training.dpo` under torchrun)."""

    model_config = ConfigDict(extra="forbid")

    epochs: float = Field(5.0, gt=0.0, description="Passes over the mode's pair budget.")
    batch_size: int = Field(8, ge=1, description="Pairs per step (per_device_train_batch_size).")
    learning_rate: float = Field(5e-4, gt=0.0)
    sft_weight: float = Field(
        1.0,
        ge=0.0,
        description="Weight of an NLL term on the chosen response next to the DPO loss (TRL loss_type "
        "[sigmoid, sft]); without it DPO on a few dozen pairs breaks the tiny agents' generations (docs/demo.md).",
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
        description="Tree depth: the paper's 4 labels only B's level-3 replies, 6 also A's level-4 replies.",
    )
    branching: list[int] | None = Field(
        default_factory=lambda: [1, 2, 2, 2, 2, 2],
        description="Children per level (the paper's pattern continued; None: 1, |B|, |A|, |B|, ...).",
    )
    stop_on_agreement: bool = Field(
        False,
        description="End a branch when both answers are the same string (PBT-METHOD §2); off because a "
        "one-word world answer ends every accepting branch before it can be labelled (docs/demo.md).",
    )
    tree_temperature: float = Field(
        0.4,
        ge=0.0,
        le=2.0,
        description="Sampling temperature of the tree agents; below the paper's 0.7, at which the tiny agents "
        "often name a city nobody said and pairs are labelled by luck (docs/demo.md).",
    )
    trees_per_question: int = Field(
        4,
        ge=1,
        le=64,
        description="Trees per train question, each sampled with its own seeds: clean persuasion events are "
        "rare, and more trees is the cheap way to more pairs (docs/demo.md).",
    )
    pair_filter: Literal["none", "rules"] = Field(
        "rules",
        description="PBT-METHOD §4.5 filter of the mined pairs, needed because branches go on after agreement "
        "(docs/demo.md): 'rules' keeps an accept pair only when its chosen reply agrees with the persuader "
        "and the rejected one does not (resist: the other way round), by the rule extractor's stance cues.",
    )
    pbt_balance: Literal["overall", "position"] = Field(
        "overall",
        description="How the PBT file trims the larger code (ExtractPreferencesRequest.pbt_balance); the "
        "variants train on the labelled pairs, balanced once by training's shared pair budget.",
    )
    pair_agents: Literal["own", "both", "a", "b"] = Field(
        "own",
        description="Whose replies' pairs each agent's variants train on: 'own' (the paper: the strong "
        "agent on its own replies' pairs, the weak agent on its own; the pair records' `agent` field), or "
        "one file for both agents ('both': every labelled pair, the earlier rounds' strong agent; 'a' or "
        "'b': that agent's replies, ExtractPreferencesRequest.pair_agents).",
    )
    weak_dpo: DpoSettings | None = Field(
        None, description="DPO of the weak agent's variants (default: the same as `dpo`)."
    )
    dpo_parallel: bool = Field(
        True,
        description="Train the strong and the weak agent's run of a mode at the same time (two torchrun "
        "processes; their start-up, mostly imports, overlaps).",
    )
    team_turns: int = Field(
        4, ge=1, le=10, description="Team-debate turn budget, counted as `team_turns_count` says."
    )
    team_turns_count: Literal["total", "discussion"] = Field(
        "total",
        description="'total': team_turns counts every turn, the two independent answers included (the "
        "reference's --max_turns 4: two answers, then two discussion turns); 'discussion': only the turns "
        "after the answers (the demo's reading before issue #19).",
    )
    eval_seeds: list[int] = Field(
        default_factory=lambda: [12],
        min_length=1,
        description="Evaluation seeds (sampling and option order).",
    )
    eval_temperature: float = Field(
        0.0,
        ge=0.0,
        description="Sampling temperature of the evaluated models (0: greedy, as the paper); with a "
        "temperature and several eval_seeds the suites measure a world agent's give-in rate itself.",
    )
    dpo: DpoSettings = Field(default_factory=DpoSettings)
    work: Path = Field(Path(".pbt/demo"), description="Local working folder (logs, model copies).")
    store_url: str | None = Field(None, description="Object store (default: env, else ./store).")
    agent_cache_url: str | None = Field(
        None, description="Store that caches the trained world agents (default: the run's store)."
    )
    run_id: str = Field("demo", pattern=r"^[a-z0-9][a-z0-9-]{0,62}$")
    threads: int = Field(1, ge=1, description="torch threads per agent server.")

    @model_validator(mode="after")
    def _team_turns(self) -> DemoSettings:
        if self.team_turns_count == "total" and self.team_turns < 2:
            raise ValueError(
                "team_turns counts the two independent answers too (team_turns_count: total): >= 2"
            )
        return self

    def team_debate_turns(self) -> dict[str, int]:
        """The evaluator's turn-budget field for the team debate (`TeamDebateSuite`)."""
        key = "total_turns" if self.team_turns_count == "total" else "discussion_turns"
        return {key: self.team_turns}

    def dpo_for(self, agent: str) -> DpoSettings:
        """The DPO settings of agent ``a`` (strong) or ``b`` (weak)."""
        return self.weak_dpo if agent == "b" and self.weak_dpo is not None else self.dpo

    def world_config(self, seed: int) -> WorldConfig:
        return WorldConfig(seed=seed, n_facts=self.n_facts)

    @classmethod
    def fast(cls, **overrides: object) -> DemoSettings:
        """The reduced run: a 40-fact world, 6 trees on each of its 28 train questions, short DPO;
        its agents train long enough for the stance link to form (docs/demo.md, "The reduced run")."""
        base: dict = {
            "n_facts": 40,
            "agent": AgentTrainConfig(steps=400),
            "questions": None,
            "eval_questions": 10,
            "dpo": DpoSettings(epochs=2.0, batch_size=4),
            "weak_dpo": DpoSettings(epochs=1.0, batch_size=4),
            "trees_per_question": 6,  # half the trees end at a root both agents agree on
            "team_turns": 4,
        }
        base.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**base)
