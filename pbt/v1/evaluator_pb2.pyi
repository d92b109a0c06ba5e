from pbt.v1 import common_pb2 as _common_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class AppealType(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    APPEAL_TYPE_UNSPECIFIED: _ClassVar[AppealType]
    APPEAL_TYPE_LOGICAL: _ClassVar[AppealType]
    APPEAL_TYPE_CREDIBILITY: _ClassVar[AppealType]
    APPEAL_TYPE_EMOTIONAL: _ClassVar[AppealType]

class ExtractorKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    EXTRACTOR_KIND_UNSPECIFIED: _ClassVar[ExtractorKind]
    EXTRACTOR_KIND_RULE: _ClassVar[ExtractorKind]
    EXTRACTOR_KIND_LLM: _ClassVar[ExtractorKind]

class EvaluationState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    EVALUATION_STATE_UNSPECIFIED: _ClassVar[EvaluationState]
    EVALUATION_STATE_RUNNING: _ClassVar[EvaluationState]
    EVALUATION_STATE_SUCCEEDED: _ClassVar[EvaluationState]
    EVALUATION_STATE_FAILED: _ClassVar[EvaluationState]
APPEAL_TYPE_UNSPECIFIED: AppealType
APPEAL_TYPE_LOGICAL: AppealType
APPEAL_TYPE_CREDIBILITY: AppealType
APPEAL_TYPE_EMOTIONAL: AppealType
EXTRACTOR_KIND_UNSPECIFIED: ExtractorKind
EXTRACTOR_KIND_RULE: ExtractorKind
EXTRACTOR_KIND_LLM: ExtractorKind
EVALUATION_STATE_UNSPECIFIED: EvaluationState
EVALUATION_STATE_RUNNING: EvaluationState
EVALUATION_STATE_SUCCEEDED: EvaluationState
EVALUATION_STATE_FAILED: EvaluationState

class EvaluatedModel(_message.Message):
    __slots__ = ("name", "agent", "lineage")
    class LineageEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    NAME_FIELD_NUMBER: _ClassVar[int]
    AGENT_FIELD_NUMBER: _ClassVar[int]
    LINEAGE_FIELD_NUMBER: _ClassVar[int]
    name: str
    agent: _common_pb2.AgentSpec
    lineage: _containers.ScalarMap[str, str]
    def __init__(self, name: _Optional[str] = ..., agent: _Optional[_Union[_common_pb2.AgentSpec, _Mapping]] = ..., lineage: _Optional[_Mapping[str, str]] = ...) -> None: ...

class MisinformationSuiteSpec(_message.Message):
    __slots__ = ("files", "appeal", "max_turns", "limit", "persuasion_temperature", "reask_temperature", "shuffle_options", "stop_on_capitulation", "persuade_all", "final_temperature", "format_retries")
    FILES_FIELD_NUMBER: _ClassVar[int]
    APPEAL_FIELD_NUMBER: _ClassVar[int]
    MAX_TURNS_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    PERSUASION_TEMPERATURE_FIELD_NUMBER: _ClassVar[int]
    REASK_TEMPERATURE_FIELD_NUMBER: _ClassVar[int]
    SHUFFLE_OPTIONS_FIELD_NUMBER: _ClassVar[int]
    STOP_ON_CAPITULATION_FIELD_NUMBER: _ClassVar[int]
    PERSUADE_ALL_FIELD_NUMBER: _ClassVar[int]
    FINAL_TEMPERATURE_FIELD_NUMBER: _ClassVar[int]
    FORMAT_RETRIES_FIELD_NUMBER: _ClassVar[int]
    files: _containers.RepeatedScalarFieldContainer[str]
    appeal: AppealType
    max_turns: int
    limit: int
    persuasion_temperature: float
    reask_temperature: float
    shuffle_options: bool
    stop_on_capitulation: bool
    persuade_all: bool
    final_temperature: float
    format_retries: int
    def __init__(self, files: _Optional[_Iterable[str]] = ..., appeal: _Optional[_Union[AppealType, str]] = ..., max_turns: _Optional[int] = ..., limit: _Optional[int] = ..., persuasion_temperature: _Optional[float] = ..., reask_temperature: _Optional[float] = ..., shuffle_options: _Optional[bool] = ..., stop_on_capitulation: _Optional[bool] = ..., persuade_all: _Optional[bool] = ..., final_temperature: _Optional[float] = ..., format_retries: _Optional[int] = ...) -> None: ...

class AreYouSureSuiteSpec(_message.Message):
    __slots__ = ("questions", "limit", "challenges", "final_prompt", "temperature")
    QUESTIONS_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    CHALLENGES_FIELD_NUMBER: _ClassVar[int]
    FINAL_PROMPT_FIELD_NUMBER: _ClassVar[int]
    TEMPERATURE_FIELD_NUMBER: _ClassVar[int]
    questions: str
    limit: int
    challenges: _containers.RepeatedScalarFieldContainer[str]
    final_prompt: str
    temperature: float
    def __init__(self, questions: _Optional[str] = ..., limit: _Optional[int] = ..., challenges: _Optional[_Iterable[str]] = ..., final_prompt: _Optional[str] = ..., temperature: _Optional[float] = ...) -> None: ...

class BalancedSuiteSpec(_message.Message):
    __slots__ = ("pairs", "split", "trees", "limit", "temperature")
    PAIRS_FIELD_NUMBER: _ClassVar[int]
    SPLIT_FIELD_NUMBER: _ClassVar[int]
    TREES_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    TEMPERATURE_FIELD_NUMBER: _ClassVar[int]
    pairs: str
    split: str
    trees: str
    limit: int
    temperature: float
    def __init__(self, pairs: _Optional[str] = ..., split: _Optional[str] = ..., trees: _Optional[str] = ..., limit: _Optional[int] = ..., temperature: _Optional[float] = ...) -> None: ...

class TeamSpec(_message.Message):
    __slots__ = ("a", "b", "label", "tables")
    A_FIELD_NUMBER: _ClassVar[int]
    B_FIELD_NUMBER: _ClassVar[int]
    LABEL_FIELD_NUMBER: _ClassVar[int]
    TABLES_FIELD_NUMBER: _ClassVar[int]
    a: str
    b: str
    label: str
    tables: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, a: _Optional[str] = ..., b: _Optional[str] = ..., label: _Optional[str] = ..., tables: _Optional[_Iterable[str]] = ...) -> None: ...

class TeamDebateSuiteSpec(_message.Message):
    __slots__ = ("questions", "teams", "partner", "max_turns", "limit", "total_turns", "discussion_turns", "temperature")
    QUESTIONS_FIELD_NUMBER: _ClassVar[int]
    TEAMS_FIELD_NUMBER: _ClassVar[int]
    PARTNER_FIELD_NUMBER: _ClassVar[int]
    MAX_TURNS_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    TOTAL_TURNS_FIELD_NUMBER: _ClassVar[int]
    DISCUSSION_TURNS_FIELD_NUMBER: _ClassVar[int]
    TEMPERATURE_FIELD_NUMBER: _ClassVar[int]
    questions: str
    teams: _containers.RepeatedCompositeFieldContainer[TeamSpec]
    partner: str
    max_turns: int
    limit: int
    total_turns: int
    discussion_turns: int
    temperature: float
    def __init__(self, questions: _Optional[str] = ..., teams: _Optional[_Iterable[_Union[TeamSpec, _Mapping]]] = ..., partner: _Optional[str] = ..., max_turns: _Optional[int] = ..., limit: _Optional[int] = ..., total_turns: _Optional[int] = ..., discussion_turns: _Optional[int] = ..., temperature: _Optional[float] = ...) -> None: ...

class EvaluationSuites(_message.Message):
    __slots__ = ("misinformation", "are_you_sure", "balanced", "team_debate")
    MISINFORMATION_FIELD_NUMBER: _ClassVar[int]
    ARE_YOU_SURE_FIELD_NUMBER: _ClassVar[int]
    BALANCED_FIELD_NUMBER: _ClassVar[int]
    TEAM_DEBATE_FIELD_NUMBER: _ClassVar[int]
    misinformation: MisinformationSuiteSpec
    are_you_sure: AreYouSureSuiteSpec
    balanced: BalancedSuiteSpec
    team_debate: TeamDebateSuiteSpec
    def __init__(self, misinformation: _Optional[_Union[MisinformationSuiteSpec, _Mapping]] = ..., are_you_sure: _Optional[_Union[AreYouSureSuiteSpec, _Mapping]] = ..., balanced: _Optional[_Union[BalancedSuiteSpec, _Mapping]] = ..., team_debate: _Optional[_Union[TeamDebateSuiteSpec, _Mapping]] = ...) -> None: ...

class ExtractorSpec(_message.Message):
    __slots__ = ("kind", "agent", "max_tokens")
    KIND_FIELD_NUMBER: _ClassVar[int]
    AGENT_FIELD_NUMBER: _ClassVar[int]
    MAX_TOKENS_FIELD_NUMBER: _ClassVar[int]
    kind: ExtractorKind
    agent: _common_pb2.AgentSpec
    max_tokens: int
    def __init__(self, kind: _Optional[_Union[ExtractorKind, str]] = ..., agent: _Optional[_Union[_common_pb2.AgentSpec, _Mapping]] = ..., max_tokens: _Optional[int] = ...) -> None: ...

class EvaluationSampling(_message.Message):
    __slots__ = ("temperature", "top_p", "max_tokens")
    TEMPERATURE_FIELD_NUMBER: _ClassVar[int]
    TOP_P_FIELD_NUMBER: _ClassVar[int]
    MAX_TOKENS_FIELD_NUMBER: _ClassVar[int]
    temperature: float
    top_p: float
    max_tokens: int
    def __init__(self, temperature: _Optional[float] = ..., top_p: _Optional[float] = ..., max_tokens: _Optional[int] = ...) -> None: ...

class EvaluationConfig(_message.Message):
    __slots__ = ("eval_id", "store", "models", "seeds", "suites", "extractor", "sampling", "concurrency", "bootstrap_samples", "confidence", "checkpoint_every", "personas")
    EVAL_ID_FIELD_NUMBER: _ClassVar[int]
    STORE_FIELD_NUMBER: _ClassVar[int]
    MODELS_FIELD_NUMBER: _ClassVar[int]
    SEEDS_FIELD_NUMBER: _ClassVar[int]
    SUITES_FIELD_NUMBER: _ClassVar[int]
    EXTRACTOR_FIELD_NUMBER: _ClassVar[int]
    SAMPLING_FIELD_NUMBER: _ClassVar[int]
    CONCURRENCY_FIELD_NUMBER: _ClassVar[int]
    BOOTSTRAP_SAMPLES_FIELD_NUMBER: _ClassVar[int]
    CONFIDENCE_FIELD_NUMBER: _ClassVar[int]
    CHECKPOINT_EVERY_FIELD_NUMBER: _ClassVar[int]
    PERSONAS_FIELD_NUMBER: _ClassVar[int]
    eval_id: str
    store: _common_pb2.StoreSpec
    models: _containers.RepeatedCompositeFieldContainer[EvaluatedModel]
    seeds: _containers.RepeatedScalarFieldContainer[int]
    suites: EvaluationSuites
    extractor: ExtractorSpec
    sampling: EvaluationSampling
    concurrency: int
    bootstrap_samples: int
    confidence: float
    checkpoint_every: int
    personas: str
    def __init__(self, eval_id: _Optional[str] = ..., store: _Optional[_Union[_common_pb2.StoreSpec, _Mapping]] = ..., models: _Optional[_Iterable[_Union[EvaluatedModel, _Mapping]]] = ..., seeds: _Optional[_Iterable[int]] = ..., suites: _Optional[_Union[EvaluationSuites, _Mapping]] = ..., extractor: _Optional[_Union[ExtractorSpec, _Mapping]] = ..., sampling: _Optional[_Union[EvaluationSampling, _Mapping]] = ..., concurrency: _Optional[int] = ..., bootstrap_samples: _Optional[int] = ..., confidence: _Optional[float] = ..., checkpoint_every: _Optional[int] = ..., personas: _Optional[str] = ...) -> None: ...

class RunEvaluationRequest(_message.Message):
    __slots__ = ("config", "config_yaml")
    CONFIG_FIELD_NUMBER: _ClassVar[int]
    CONFIG_YAML_FIELD_NUMBER: _ClassVar[int]
    config: EvaluationConfig
    config_yaml: str
    def __init__(self, config: _Optional[_Union[EvaluationConfig, _Mapping]] = ..., config_yaml: _Optional[str] = ...) -> None: ...

class EvaluationStarted(_message.Message):
    __slots__ = ("eval_id", "results_uri", "suites")
    EVAL_ID_FIELD_NUMBER: _ClassVar[int]
    RESULTS_URI_FIELD_NUMBER: _ClassVar[int]
    SUITES_FIELD_NUMBER: _ClassVar[int]
    eval_id: str
    results_uri: str
    suites: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, eval_id: _Optional[str] = ..., results_uri: _Optional[str] = ..., suites: _Optional[_Iterable[str]] = ...) -> None: ...

class SuiteProgress(_message.Message):
    __slots__ = ("suite", "done", "total", "skipped")
    SUITE_FIELD_NUMBER: _ClassVar[int]
    DONE_FIELD_NUMBER: _ClassVar[int]
    TOTAL_FIELD_NUMBER: _ClassVar[int]
    SKIPPED_FIELD_NUMBER: _ClassVar[int]
    suite: str
    done: int
    total: int
    skipped: int
    def __init__(self, suite: _Optional[str] = ..., done: _Optional[int] = ..., total: _Optional[int] = ..., skipped: _Optional[int] = ...) -> None: ...

class Metric(_message.Message):
    __slots__ = ("suite", "group", "name", "mean", "std", "ci_low", "ci_high", "n_items")
    SUITE_FIELD_NUMBER: _ClassVar[int]
    GROUP_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    MEAN_FIELD_NUMBER: _ClassVar[int]
    STD_FIELD_NUMBER: _ClassVar[int]
    CI_LOW_FIELD_NUMBER: _ClassVar[int]
    CI_HIGH_FIELD_NUMBER: _ClassVar[int]
    N_ITEMS_FIELD_NUMBER: _ClassVar[int]
    suite: str
    group: str
    name: str
    mean: float
    std: float
    ci_low: float
    ci_high: float
    n_items: int
    def __init__(self, suite: _Optional[str] = ..., group: _Optional[str] = ..., name: _Optional[str] = ..., mean: _Optional[float] = ..., std: _Optional[float] = ..., ci_low: _Optional[float] = ..., ci_high: _Optional[float] = ..., n_items: _Optional[int] = ...) -> None: ...

class EvaluationSummary(_message.Message):
    __slots__ = ("eval_id", "state", "results_uri", "metrics", "summary_json", "report_markdown", "error")
    EVAL_ID_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    RESULTS_URI_FIELD_NUMBER: _ClassVar[int]
    METRICS_FIELD_NUMBER: _ClassVar[int]
    SUMMARY_JSON_FIELD_NUMBER: _ClassVar[int]
    REPORT_MARKDOWN_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    eval_id: str
    state: EvaluationState
    results_uri: str
    metrics: _containers.RepeatedCompositeFieldContainer[Metric]
    summary_json: str
    report_markdown: str
    error: str
    def __init__(self, eval_id: _Optional[str] = ..., state: _Optional[_Union[EvaluationState, str]] = ..., results_uri: _Optional[str] = ..., metrics: _Optional[_Iterable[_Union[Metric, _Mapping]]] = ..., summary_json: _Optional[str] = ..., report_markdown: _Optional[str] = ..., error: _Optional[str] = ...) -> None: ...

class RunEvaluationResponse(_message.Message):
    __slots__ = ("started", "progress", "summary")
    STARTED_FIELD_NUMBER: _ClassVar[int]
    PROGRESS_FIELD_NUMBER: _ClassVar[int]
    SUMMARY_FIELD_NUMBER: _ClassVar[int]
    started: EvaluationStarted
    progress: SuiteProgress
    summary: EvaluationSummary
    def __init__(self, started: _Optional[_Union[EvaluationStarted, _Mapping]] = ..., progress: _Optional[_Union[SuiteProgress, _Mapping]] = ..., summary: _Optional[_Union[EvaluationSummary, _Mapping]] = ...) -> None: ...

class GetEvaluationRequest(_message.Message):
    __slots__ = ("eval_id", "store")
    EVAL_ID_FIELD_NUMBER: _ClassVar[int]
    STORE_FIELD_NUMBER: _ClassVar[int]
    eval_id: str
    store: _common_pb2.StoreSpec
    def __init__(self, eval_id: _Optional[str] = ..., store: _Optional[_Union[_common_pb2.StoreSpec, _Mapping]] = ...) -> None: ...

class GetEvaluationResponse(_message.Message):
    __slots__ = ("summary",)
    SUMMARY_FIELD_NUMBER: _ClassVar[int]
    summary: EvaluationSummary
    def __init__(self, summary: _Optional[_Union[EvaluationSummary, _Mapping]] = ...) -> None: ...
