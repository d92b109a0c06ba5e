"""The run configuration: one pydantic model for the CLI (YAML), the gRPC requests and Helm values.

YAML shape (every key optional except the agents' endpoints and the dataset)::

    agents:
      a:         {endpoint: http://agent-a:8080/v1, model: llama-8b, max_in_flight: 64}
      b:         {endpoint: http://agent-b:8080/v1, model: mistral-7b}
      extractor: {endpoint: http://agent-b:8080/v1, model: mistral-7b}
    personas:  {file: null, a: [logical, emotional, credibility], b: [resistant, acceptant],
                level0: [resistant, logical], prompts: {}}
    sampling:  {temperature: 0.7, top_p: 1.0, max_tokens: 80, min_tokens: 8}
    extraction: {mode: llm, max_tokens: 15}
    tree:      {max_turns: 4, branching: [1, 2, 3, 2], stop_on_agreement: true}
    dataset:   {format: nq_open, path: examples/data/nq_open/NQ-open.dev.jsonl}
    store:     {url: ./store}
    max_trees_in_flight: 64

`RunConfig.from_yaml` reports errors as ``file:line field 'tree.max_turns': ...``;
`pbt.rpc.run_config_from_proto` reports them with the request's path (``config.tree.max_turns``).
"""

from __future__ import annotations

import hashlib
import json
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic import ValidationError as PydanticValidationError

from pbt.backends.base import SamplingParams
from pbt.errors import ValidationError, from_pydantic

if TYPE_CHECKING:
    from pbt.personas import PersonaSet
    from pbt.store import ObjectStore

MAX_TURNS_LIMIT = 8


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class AgentConfig(_Strict):
    """One OpenAI-compatible chat endpoint and how the orchestrator talks to it."""

    endpoint: str = Field(
        min_length=1,
        description="http(s)://host:port[/v1] of an OpenAI-compatible server, or a `pbt.backends.make_backend` spec.",
    )
    model: str = Field("", description="Served model name sent with each request.")
    chat_template: str | None = Field(None, description="Chat template override for backends that apply one.")
    max_in_flight: int = Field(64, ge=1, le=4096, description="Most concurrent requests to this endpoint.")
    timeout_s: float = Field(120.0, gt=0, description="Seconds before one request times out.")
    max_attempts: int = Field(
        3, ge=1, le=20, description="Attempts per request before the endpoint is unavailable."
    )
    api_key_env: str | None = Field(None, description="Environment variable holding the API key.")
    merge_consecutive: bool = Field(
        True,
        description="Merge consecutive same-role messages with a blank line (as the preference pairs do, so "
        "training prompts match generation; needed by templates that require alternating roles).",
    )

    @field_validator("endpoint")
    @classmethod
    def _endpoint(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must not be empty")
        return value.strip()


class AgentsConfig(_Strict):
    a: AgentConfig = Field(description="Agent A: opens the tree and persuades (A personas).")
    b: AgentConfig = Field(description="Agent B: replies (B personas).")
    extractor: AgentConfig | None = Field(
        None, description="Answer extractor; required when extraction.mode is llm."
    )


class PersonasConfig(_Strict):
    file: str | None = Field(None, description="Persona set YAML (default: the bundled reference set).")
    a: list[str] | None = Field(None, description="Agent A personas, in branch order.")
    b: list[str] | None = Field(None, description="Agent B personas, in branch order.")
    level0: list[str] | None = Field(
        None, description="Personas level 0 may open with (one picked per tree)."
    )
    prompts: dict[str, str] = Field(
        default_factory=dict, description="Extra/overriding prompts; need {question}."
    )

    def load(self, field: str = "personas") -> PersonaSet:
        """The persona set after applying the overrides; unknown names fail with their field path."""
        from pbt.personas import Persona, PersonaSet, load_personas

        base = load_personas(self.file)
        personas = dict(base.personas)
        for name, prompt in self.prompts.items():
            try:
                personas[name] = Persona(
                    prompt=prompt, description=personas.get(name, Persona(prompt=prompt)).description
                )
            except PydanticValidationError as exc:
                raise ValidationError(from_pydantic(exc).message, field=f"{field}.prompts.{name}") from None
        agents = {"A": self.a or base.agents["A"], "B": self.b or base.agents["B"]}
        level0 = self.level0 or base.level0
        for key, names in (("a", agents["A"]), ("b", agents["B"]), ("level0", level0)):
            for i, name in enumerate(names):
                if name not in personas:
                    raise ValidationError(
                        f"unknown persona {name!r} (known: {', '.join(sorted(personas))})",
                        field=f"{field}.{key}[{i}]",
                    )
        return PersonaSet(
            name=base.name, standard=base.standard, level0=level0, agents=agents, personas=personas
        )


class SamplingConfig(_Strict):
    """Agent sampling (PBT-METHOD §2: temperature 0.7, top_p 1.0, no top-k, 8..80 new tokens)."""

    temperature: float = Field(0.7, ge=0.0, le=5.0)
    top_p: float = Field(1.0, gt=0.0, le=1.0)
    top_k: int | None = Field(None, ge=-1, le=1_000_000, description="None or -1: no top-k.")
    max_tokens: int = Field(80, ge=1, le=32768)
    min_tokens: int = Field(8, ge=0)
    seed: int | None = None
    stop: list[str] = Field(default_factory=list)

    @model_validator(mode="after")
    def _check(self) -> SamplingConfig:
        if self.min_tokens > self.max_tokens:
            raise ValueError(f"min_tokens ({self.min_tokens}) must not exceed max_tokens ({self.max_tokens})")
        return self

    def params(self, n: int = 1, seed: int | None = None) -> SamplingParams:
        return SamplingParams(
            temperature=self.temperature,
            top_p=self.top_p,
            top_k=self.top_k,
            max_tokens=self.max_tokens,
            min_tokens=self.min_tokens,
            n=n,
            seed=self.seed if seed is None else seed,
            stop=list(self.stop),
        )


class ExtractionConfig(_Strict):
    mode: Literal["llm", "rules"] = Field(
        "llm", description="llm: the extractor model (the paper); rules: parse only."
    )
    max_tokens: int = Field(15, ge=1, le=256, description="Extractor's new tokens (greedy).")


class TreeConfig(_Strict):
    max_turns: int = Field(4, ge=1, le=MAX_TURNS_LIMIT, description="Generated levels (the paper: 4).")
    branching: list[int] | None = Field(
        None,
        description="Children per node per level; [0] must be 1. Default 1, |B|, |A|, |B|, ... (1-2-3-2).",
    )
    stop_on_agreement: bool = Field(True, description="End a branch at a node that agrees (PBT-METHOD §2).")
    trees_per_question: int = Field(
        1,
        ge=1,
        le=64,
        description="Trees built per question, each with its own sampling seeds (the paper: 1). Replica j > 0 "
        "has id '<question id>-r<j>'; pairs are split by question, so replicas never straddle splits.",
    )

    @model_validator(mode="after")
    def _check(self) -> TreeConfig:
        if self.branching is not None:
            if len(self.branching) != self.max_turns:
                raise ValueError(
                    f"branching: has {len(self.branching)} levels but max_turns is {self.max_turns}"
                )
            if self.branching[0] != 1:
                raise ValueError(
                    f"branching[0]: must be 1 (one level-0 answer per tree), got {self.branching[0]}"
                )
            bad = [i for i, b in enumerate(self.branching) if not 1 <= b <= 16]
            if bad:
                raise ValueError(f"branching[{bad[0]}]: {self.branching[bad[0]]} is outside 1..16")
        return self

    def resolved_branching(self, personas: PersonaSet) -> list[int]:
        if self.branching is not None:
            return list(self.branching)
        counts = [len(personas.agents["A"]), len(personas.agents["B"])]
        return [1] + [counts[level % 2] for level in range(1, self.max_turns)]


class InlineQuestion(_Strict):
    id: str = ""
    question: str = Field(min_length=1)
    answers: list[str] = Field(default_factory=list)


class DatasetConfig(_Strict):
    format: Literal["nq_open", "triviaqa", "jsonl", "inline"] = "nq_open"
    path: str | None = Field(None, description="File on the machine that builds the trees.")
    question_field: str | None = Field(None, description="Dotted field of the question (default 'question').")
    answer_field: str | None = Field(
        None, description="Dotted field of the gold answer(s) (default 'answer')."
    )
    id_field: str | None = Field(
        None, description="Dotted field of a stable id (default: name + line index)."
    )
    split: str = Field("train", description="Hub split for TriviaQA without a path.")
    name: str | None = Field(None, description="Dataset name used in ids and manifests (default: file stem).")
    questions: list[InlineQuestion] = Field(
        default_factory=list, description="Inline questions (format inline)."
    )

    @model_validator(mode="after")
    def _check(self) -> DatasetConfig:
        if self.format in ("nq_open", "jsonl") and not self.path:
            raise ValueError(f"path: format {self.format!r} needs a path")
        if self.format == "inline" and not self.questions:
            raise ValueError("questions: format 'inline' needs questions")
        return self

    @property
    def display_name(self) -> str:
        if self.name:
            return self.name
        if self.path:
            return Path(self.path).stem.split(".")[0] or "dataset"
        return self.format


class StoreConfig(_Strict):
    url: str | None = Field(
        None, description="file:///path, a path, or s3://bucket/prefix; default from env."
    )
    endpoint: str | None = Field(None, description="S3/MinIO endpoint (overrides S3_ENDPOINT).")
    secure: bool | None = Field(None, description="TLS towards S3 (default: from the endpoint scheme).")

    def open(self, default: ObjectStore | None = None) -> ObjectStore:
        """The configured store; credentials always come from the environment."""
        import os

        from pbt.store import open_store
        from pbt.store.s3 import S3Store

        if self.endpoint:
            url = self.url or f"s3://{os.environ.get('S3_BUCKET', 'pbt')}"
            if not url.startswith("s3://"):
                raise ValidationError(
                    "with an endpoint the url must be s3://bucket[/prefix]", field="store.url"
                )
            bucket, _, prefix = url[len("s3://") :].partition("/")
            return S3Store(
                self.endpoint,
                bucket,
                prefix=prefix,
                access_key=os.environ.get("AWS_ACCESS_KEY_ID") or os.environ.get("MINIO_ACCESS_KEY"),
                secret_key=os.environ.get("AWS_SECRET_ACCESS_KEY") or os.environ.get("MINIO_SECRET_KEY"),
                secure=self.secure,
            )
        if self.url is None and default is not None:
            return default
        return open_store(self.url)


class RunConfig(_Strict):
    """Everything a tree-building run needs (see the module docstring for the YAML shape)."""

    agents: AgentsConfig
    personas: PersonasConfig = Field(default_factory=PersonasConfig)
    sampling: SamplingConfig = Field(default_factory=SamplingConfig)
    extraction: ExtractionConfig = Field(default_factory=ExtractionConfig)
    tree: TreeConfig = Field(default_factory=TreeConfig)
    dataset: DatasetConfig | None = Field(None, description="Required to build trees.")
    store: StoreConfig = Field(default_factory=StoreConfig)
    max_trees_in_flight: int = Field(64, ge=1, le=100_000, description="Trees built at once.")

    @model_validator(mode="after")
    def _check(self) -> RunConfig:
        if self.extraction.mode == "llm" and self.agents.extractor is None:
            raise ValueError(
                "agents.extractor: needed when extraction.mode is 'llm' (or set extraction.mode: rules)"
            )
        return self

    @cached_property
    def persona_set(self) -> PersonaSet:
        return self.personas.load()

    def branching(self) -> list[int]:
        return self.tree.resolved_branching(self.persona_set)

    def fingerprint(self) -> str:
        """Hash of what determines the trees' content (not endpoints, limits or the store).

        A job id reused with a different fingerprint is a conflict."""
        data = self.model_dump(mode="json", exclude={"store", "max_trees_in_flight"})
        for agent in data["agents"].values():
            if agent:
                for key in ("endpoint", "max_in_flight", "timeout_s", "max_attempts", "api_key_env"):
                    agent.pop(key, None)
        return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:16]

    # ---- construction with errors that name the field --------------------------------------
    @classmethod
    def from_dict(
        cls, data: Any, *, prefix: str = "", source: str | None = None, lines: dict | None = None
    ) -> RunConfig:
        try:
            config = cls.model_validate(data)
        except PydanticValidationError as exc:
            raise to_validation_error(exc, prefix=prefix, source=source, lines=lines) from None
        if prefix:
            try:
                config.persona_set  # noqa: B018 - validate persona names early with the request's path
            except ValidationError as exc:
                raise ValidationError(
                    exc.message,
                    field=f"{prefix}{exc.field or 'personas.file'}",
                    location=exc.location,
                ) from None
        else:
            config.persona_set  # noqa: B018
        return config

    @classmethod
    def from_yaml(cls, path: str | Path) -> RunConfig:
        from pbt.safeload import load_yaml, read_text

        path = Path(path)
        try:
            text = read_text(path, "config file")
        except ValidationError as exc:
            raise ValidationError(exc.message, field="config") from None
        data = load_yaml(text, str(path))
        lines = yaml_lines(text)
        if not isinstance(data, dict):
            raise ValidationError("expected a mapping at the top level", location=str(path))
        config = cls.from_dict(data, source=str(path), lines=lines)
        return config

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.model_dump(mode="json", exclude_none=True), sort_keys=False)


def to_validation_error(
    exc: PydanticValidationError, *, prefix: str, source: str | None, lines: dict | None
) -> ValidationError:
    """`pbt.errors.from_pydantic` with, given `lines` (from `yaml_lines`), the ``source:line``
    the field came from. Shared by every config model (run, evaluation)."""
    line_of = (lambda loc: _line_of(lines, loc)) if lines is not None else None
    return from_pydantic(exc, prefix=prefix, location=source, line_of=line_of)


def yaml_lines(text: str) -> dict:
    """A nested map from YAML keys/indices to ``(line, children)`` for error locations."""

    def walk(node: yaml.Node) -> dict:
        out: dict = {}
        if isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                out[key.value] = (key.start_mark.line + 1, walk(value))
        elif isinstance(node, yaml.SequenceNode):
            for i, item in enumerate(node.value):
                out[i] = (item.start_mark.line + 1, walk(item))
        return out

    from pbt.safeload import NoAliasLoader

    root = yaml.compose(text, Loader=NoAliasLoader)
    return walk(root) if root is not None else {}


def _line_of(lines: dict, loc: tuple[Any, ...]) -> int | None:
    line = None
    current = lines
    for part in loc:
        if part not in current:
            break
        line, current = current[part]
    return line
