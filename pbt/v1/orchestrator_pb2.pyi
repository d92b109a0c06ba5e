from pbt.v1 import common_pb2 as _common_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ExtractionMode(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    EXTRACTION_MODE_UNSPECIFIED: _ClassVar[ExtractionMode]
    EXTRACTION_MODE_LLM: _ClassVar[ExtractionMode]
    EXTRACTION_MODE_RULES: _ClassVar[ExtractionMode]

class DatasetFormat(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    DATASET_FORMAT_UNSPECIFIED: _ClassVar[DatasetFormat]
    DATASET_FORMAT_NQ_OPEN: _ClassVar[DatasetFormat]
    DATASET_FORMAT_TRIVIAQA: _ClassVar[DatasetFormat]
    DATASET_FORMAT_JSONL: _ClassVar[DatasetFormat]
    DATASET_FORMAT_INLINE: _ClassVar[DatasetFormat]
EXTRACTION_MODE_UNSPECIFIED: ExtractionMode
EXTRACTION_MODE_LLM: ExtractionMode
EXTRACTION_MODE_RULES: ExtractionMode
DATASET_FORMAT_UNSPECIFIED: DatasetFormat
DATASET_FORMAT_NQ_OPEN: DatasetFormat
DATASET_FORMAT_TRIVIAQA: DatasetFormat
DATASET_FORMAT_JSONL: DatasetFormat
DATASET_FORMAT_INLINE: DatasetFormat

class Agents(_message.Message):
    __slots__ = ("a", "b", "extractor")
    A_FIELD_NUMBER: _ClassVar[int]
    B_FIELD_NUMBER: _ClassVar[int]
    EXTRACTOR_FIELD_NUMBER: _ClassVar[int]
    a: _common_pb2.AgentSpec
    b: _common_pb2.AgentSpec
    extractor: _common_pb2.AgentSpec
    def __init__(self, a: _Optional[_Union[_common_pb2.AgentSpec, _Mapping]] = ..., b: _Optional[_Union[_common_pb2.AgentSpec, _Mapping]] = ..., extractor: _Optional[_Union[_common_pb2.AgentSpec, _Mapping]] = ...) -> None: ...

class PersonaSpec(_message.Message):
    __slots__ = ("a", "b", "level0", "prompts", "file")
    class PromptsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    A_FIELD_NUMBER: _ClassVar[int]
    B_FIELD_NUMBER: _ClassVar[int]
    LEVEL0_FIELD_NUMBER: _ClassVar[int]
    PROMPTS_FIELD_NUMBER: _ClassVar[int]
    FILE_FIELD_NUMBER: _ClassVar[int]
    a: _containers.RepeatedScalarFieldContainer[str]
    b: _containers.RepeatedScalarFieldContainer[str]
    level0: _containers.RepeatedScalarFieldContainer[str]
    prompts: _containers.ScalarMap[str, str]
    file: str
    def __init__(self, a: _Optional[_Iterable[str]] = ..., b: _Optional[_Iterable[str]] = ..., level0: _Optional[_Iterable[str]] = ..., prompts: _Optional[_Mapping[str, str]] = ..., file: _Optional[str] = ...) -> None: ...

class ExtractionSpec(_message.Message):
    __slots__ = ("mode", "max_tokens")
    MODE_FIELD_NUMBER: _ClassVar[int]
    MAX_TOKENS_FIELD_NUMBER: _ClassVar[int]
    mode: ExtractionMode
    max_tokens: int
    def __init__(self, mode: _Optional[_Union[ExtractionMode, str]] = ..., max_tokens: _Optional[int] = ...) -> None: ...

class TreeShape(_message.Message):
    __slots__ = ("max_turns", "branching", "stop_on_agreement", "trees_per_question")
    MAX_TURNS_FIELD_NUMBER: _ClassVar[int]
    BRANCHING_FIELD_NUMBER: _ClassVar[int]
    STOP_ON_AGREEMENT_FIELD_NUMBER: _ClassVar[int]
    TREES_PER_QUESTION_FIELD_NUMBER: _ClassVar[int]
    max_turns: int
    branching: _containers.RepeatedScalarFieldContainer[int]
    stop_on_agreement: bool
    trees_per_question: int
    def __init__(self, max_turns: _Optional[int] = ..., branching: _Optional[_Iterable[int]] = ..., stop_on_agreement: _Optional[bool] = ..., trees_per_question: _Optional[int] = ...) -> None: ...

class QuestionItem(_message.Message):
    __slots__ = ("id", "question", "answers")
    ID_FIELD_NUMBER: _ClassVar[int]
    QUESTION_FIELD_NUMBER: _ClassVar[int]
    ANSWERS_FIELD_NUMBER: _ClassVar[int]
    id: str
    question: str
    answers: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, id: _Optional[str] = ..., question: _Optional[str] = ..., answers: _Optional[_Iterable[str]] = ...) -> None: ...

class DatasetSpec(_message.Message):
    __slots__ = ("format", "path", "question_field", "answer_field", "id_field", "split", "name", "questions")
    FORMAT_FIELD_NUMBER: _ClassVar[int]
    PATH_FIELD_NUMBER: _ClassVar[int]
    QUESTION_FIELD_FIELD_NUMBER: _ClassVar[int]
    ANSWER_FIELD_FIELD_NUMBER: _ClassVar[int]
    ID_FIELD_FIELD_NUMBER: _ClassVar[int]
    SPLIT_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    QUESTIONS_FIELD_NUMBER: _ClassVar[int]
    format: DatasetFormat
    path: str
    question_field: str
    answer_field: str
    id_field: str
    split: str
    name: str
    questions: _containers.RepeatedCompositeFieldContainer[QuestionItem]
    def __init__(self, format: _Optional[_Union[DatasetFormat, str]] = ..., path: _Optional[str] = ..., question_field: _Optional[str] = ..., answer_field: _Optional[str] = ..., id_field: _Optional[str] = ..., split: _Optional[str] = ..., name: _Optional[str] = ..., questions: _Optional[_Iterable[_Union[QuestionItem, _Mapping]]] = ...) -> None: ...

class RunConfig(_message.Message):
    __slots__ = ("agents", "personas", "sampling", "extraction", "tree", "dataset", "store", "max_trees_in_flight")
    AGENTS_FIELD_NUMBER: _ClassVar[int]
    PERSONAS_FIELD_NUMBER: _ClassVar[int]
    SAMPLING_FIELD_NUMBER: _ClassVar[int]
    EXTRACTION_FIELD_NUMBER: _ClassVar[int]
    TREE_FIELD_NUMBER: _ClassVar[int]
    DATASET_FIELD_NUMBER: _ClassVar[int]
    STORE_FIELD_NUMBER: _ClassVar[int]
    MAX_TREES_IN_FLIGHT_FIELD_NUMBER: _ClassVar[int]
    agents: Agents
    personas: PersonaSpec
    sampling: _common_pb2.SamplingParams
    extraction: ExtractionSpec
    tree: TreeShape
    dataset: DatasetSpec
    store: _common_pb2.StoreSpec
    max_trees_in_flight: int
    def __init__(self, agents: _Optional[_Union[Agents, _Mapping]] = ..., personas: _Optional[_Union[PersonaSpec, _Mapping]] = ..., sampling: _Optional[_Union[_common_pb2.SamplingParams, _Mapping]] = ..., extraction: _Optional[_Union[ExtractionSpec, _Mapping]] = ..., tree: _Optional[_Union[TreeShape, _Mapping]] = ..., dataset: _Optional[_Union[DatasetSpec, _Mapping]] = ..., store: _Optional[_Union[_common_pb2.StoreSpec, _Mapping]] = ..., max_trees_in_flight: _Optional[int] = ...) -> None: ...

class BuildTreesRequest(_message.Message):
    __slots__ = ("config", "job_id", "shard", "limit")
    CONFIG_FIELD_NUMBER: _ClassVar[int]
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    SHARD_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    config: RunConfig
    job_id: str
    shard: str
    limit: int
    def __init__(self, config: _Optional[_Union[RunConfig, _Mapping]] = ..., job_id: _Optional[str] = ..., shard: _Optional[str] = ..., limit: _Optional[int] = ...) -> None: ...

class JobStarted(_message.Message):
    __slots__ = ("job_id", "trees_total", "trees_skipped", "output_uri")
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    TREES_TOTAL_FIELD_NUMBER: _ClassVar[int]
    TREES_SKIPPED_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_URI_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    trees_total: int
    trees_skipped: int
    output_uri: str
    def __init__(self, job_id: _Optional[str] = ..., trees_total: _Optional[int] = ..., trees_skipped: _Optional[int] = ..., output_uri: _Optional[str] = ...) -> None: ...

class BuildProgress(_message.Message):
    __slots__ = ("trees_done", "trees_total", "trees_skipped", "nodes", "usage", "elapsed_s", "nodes_per_second", "trees_per_second", "eta_s", "errors")
    TREES_DONE_FIELD_NUMBER: _ClassVar[int]
    TREES_TOTAL_FIELD_NUMBER: _ClassVar[int]
    TREES_SKIPPED_FIELD_NUMBER: _ClassVar[int]
    NODES_FIELD_NUMBER: _ClassVar[int]
    USAGE_FIELD_NUMBER: _ClassVar[int]
    ELAPSED_S_FIELD_NUMBER: _ClassVar[int]
    NODES_PER_SECOND_FIELD_NUMBER: _ClassVar[int]
    TREES_PER_SECOND_FIELD_NUMBER: _ClassVar[int]
    ETA_S_FIELD_NUMBER: _ClassVar[int]
    ERRORS_FIELD_NUMBER: _ClassVar[int]
    trees_done: int
    trees_total: int
    trees_skipped: int
    nodes: int
    usage: _common_pb2.Usage
    elapsed_s: float
    nodes_per_second: float
    trees_per_second: float
    eta_s: float
    errors: int
    def __init__(self, trees_done: _Optional[int] = ..., trees_total: _Optional[int] = ..., trees_skipped: _Optional[int] = ..., nodes: _Optional[int] = ..., usage: _Optional[_Union[_common_pb2.Usage, _Mapping]] = ..., elapsed_s: _Optional[float] = ..., nodes_per_second: _Optional[float] = ..., trees_per_second: _Optional[float] = ..., eta_s: _Optional[float] = ..., errors: _Optional[int] = ...) -> None: ...

class TreeBuilt(_message.Message):
    __slots__ = ("tree_id", "nodes", "uri")
    TREE_ID_FIELD_NUMBER: _ClassVar[int]
    NODES_FIELD_NUMBER: _ClassVar[int]
    URI_FIELD_NUMBER: _ClassVar[int]
    tree_id: str
    nodes: int
    uri: str
    def __init__(self, tree_id: _Optional[str] = ..., nodes: _Optional[int] = ..., uri: _Optional[str] = ...) -> None: ...

class BuildSummary(_message.Message):
    __slots__ = ("job_id", "output_uri", "manifest_uri", "progress")
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_URI_FIELD_NUMBER: _ClassVar[int]
    MANIFEST_URI_FIELD_NUMBER: _ClassVar[int]
    PROGRESS_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    output_uri: str
    manifest_uri: str
    progress: BuildProgress
    def __init__(self, job_id: _Optional[str] = ..., output_uri: _Optional[str] = ..., manifest_uri: _Optional[str] = ..., progress: _Optional[_Union[BuildProgress, _Mapping]] = ...) -> None: ...

class BuildTreesResponse(_message.Message):
    __slots__ = ("started", "progress", "tree", "summary")
    STARTED_FIELD_NUMBER: _ClassVar[int]
    PROGRESS_FIELD_NUMBER: _ClassVar[int]
    TREE_FIELD_NUMBER: _ClassVar[int]
    SUMMARY_FIELD_NUMBER: _ClassVar[int]
    started: JobStarted
    progress: BuildProgress
    tree: TreeBuilt
    summary: BuildSummary
    def __init__(self, started: _Optional[_Union[JobStarted, _Mapping]] = ..., progress: _Optional[_Union[BuildProgress, _Mapping]] = ..., tree: _Optional[_Union[TreeBuilt, _Mapping]] = ..., summary: _Optional[_Union[BuildSummary, _Mapping]] = ...) -> None: ...

class GetTreeRequest(_message.Message):
    __slots__ = ("job_id", "tree_id", "store")
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    TREE_ID_FIELD_NUMBER: _ClassVar[int]
    STORE_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    tree_id: str
    store: _common_pb2.StoreSpec
    def __init__(self, job_id: _Optional[str] = ..., tree_id: _Optional[str] = ..., store: _Optional[_Union[_common_pb2.StoreSpec, _Mapping]] = ...) -> None: ...

class GetTreeResponse(_message.Message):
    __slots__ = ("uri", "tree_json", "node_count")
    URI_FIELD_NUMBER: _ClassVar[int]
    TREE_JSON_FIELD_NUMBER: _ClassVar[int]
    NODE_COUNT_FIELD_NUMBER: _ClassVar[int]
    uri: str
    tree_json: str
    node_count: int
    def __init__(self, uri: _Optional[str] = ..., tree_json: _Optional[str] = ..., node_count: _Optional[int] = ...) -> None: ...

class DebateAgent(_message.Message):
    __slots__ = ("name", "agent")
    NAME_FIELD_NUMBER: _ClassVar[int]
    AGENT_FIELD_NUMBER: _ClassVar[int]
    name: str
    agent: _common_pb2.AgentSpec
    def __init__(self, name: _Optional[str] = ..., agent: _Optional[_Union[_common_pb2.AgentSpec, _Mapping]] = ...) -> None: ...

class RunDebateRequest(_message.Message):
    __slots__ = ("question", "gold_answers", "agents", "extractor", "extraction", "max_turns", "sampling", "instruction", "total_turns")
    QUESTION_FIELD_NUMBER: _ClassVar[int]
    GOLD_ANSWERS_FIELD_NUMBER: _ClassVar[int]
    AGENTS_FIELD_NUMBER: _ClassVar[int]
    EXTRACTOR_FIELD_NUMBER: _ClassVar[int]
    EXTRACTION_FIELD_NUMBER: _ClassVar[int]
    MAX_TURNS_FIELD_NUMBER: _ClassVar[int]
    SAMPLING_FIELD_NUMBER: _ClassVar[int]
    INSTRUCTION_FIELD_NUMBER: _ClassVar[int]
    TOTAL_TURNS_FIELD_NUMBER: _ClassVar[int]
    question: str
    gold_answers: _containers.RepeatedScalarFieldContainer[str]
    agents: _containers.RepeatedCompositeFieldContainer[DebateAgent]
    extractor: _common_pb2.AgentSpec
    extraction: ExtractionSpec
    max_turns: int
    sampling: _common_pb2.SamplingParams
    instruction: str
    total_turns: int
    def __init__(self, question: _Optional[str] = ..., gold_answers: _Optional[_Iterable[str]] = ..., agents: _Optional[_Iterable[_Union[DebateAgent, _Mapping]]] = ..., extractor: _Optional[_Union[_common_pb2.AgentSpec, _Mapping]] = ..., extraction: _Optional[_Union[ExtractionSpec, _Mapping]] = ..., max_turns: _Optional[int] = ..., sampling: _Optional[_Union[_common_pb2.SamplingParams, _Mapping]] = ..., instruction: _Optional[str] = ..., total_turns: _Optional[int] = ...) -> None: ...

class DebateTurn(_message.Message):
    __slots__ = ("index", "round", "agent", "text", "answer", "messages", "usage")
    INDEX_FIELD_NUMBER: _ClassVar[int]
    ROUND_FIELD_NUMBER: _ClassVar[int]
    AGENT_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    ANSWER_FIELD_NUMBER: _ClassVar[int]
    MESSAGES_FIELD_NUMBER: _ClassVar[int]
    USAGE_FIELD_NUMBER: _ClassVar[int]
    index: int
    round: int
    agent: str
    text: str
    answer: str
    messages: _containers.RepeatedCompositeFieldContainer[_common_pb2.ChatMessage]
    usage: _common_pb2.Usage
    def __init__(self, index: _Optional[int] = ..., round: _Optional[int] = ..., agent: _Optional[str] = ..., text: _Optional[str] = ..., answer: _Optional[str] = ..., messages: _Optional[_Iterable[_Union[_common_pb2.ChatMessage, _Mapping]]] = ..., usage: _Optional[_Union[_common_pb2.Usage, _Mapping]] = ...) -> None: ...

class FinalAnswer(_message.Message):
    __slots__ = ("agent", "answer", "correct")
    AGENT_FIELD_NUMBER: _ClassVar[int]
    ANSWER_FIELD_NUMBER: _ClassVar[int]
    CORRECT_FIELD_NUMBER: _ClassVar[int]
    agent: str
    answer: str
    correct: bool
    def __init__(self, agent: _Optional[str] = ..., answer: _Optional[str] = ..., correct: _Optional[bool] = ...) -> None: ...

class RunDebateResponse(_message.Message):
    __slots__ = ("turns", "final_answers", "agreed", "usage")
    TURNS_FIELD_NUMBER: _ClassVar[int]
    FINAL_ANSWERS_FIELD_NUMBER: _ClassVar[int]
    AGREED_FIELD_NUMBER: _ClassVar[int]
    USAGE_FIELD_NUMBER: _ClassVar[int]
    turns: _containers.RepeatedCompositeFieldContainer[DebateTurn]
    final_answers: _containers.RepeatedCompositeFieldContainer[FinalAnswer]
    agreed: bool
    usage: _common_pb2.Usage
    def __init__(self, turns: _Optional[_Iterable[_Union[DebateTurn, _Mapping]]] = ..., final_answers: _Optional[_Iterable[_Union[FinalAnswer, _Mapping]]] = ..., agreed: _Optional[bool] = ..., usage: _Optional[_Union[_common_pb2.Usage, _Mapping]] = ...) -> None: ...

class ExtractPreferencesRequest(_message.Message):
    __slots__ = ("job_id", "output_id", "store", "seed", "pair_filter", "split_fractions", "pbt_balance", "pair_agents", "judge", "eval_pair_filter")
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_ID_FIELD_NUMBER: _ClassVar[int]
    STORE_FIELD_NUMBER: _ClassVar[int]
    SEED_FIELD_NUMBER: _ClassVar[int]
    PAIR_FILTER_FIELD_NUMBER: _ClassVar[int]
    SPLIT_FRACTIONS_FIELD_NUMBER: _ClassVar[int]
    PBT_BALANCE_FIELD_NUMBER: _ClassVar[int]
    PAIR_AGENTS_FIELD_NUMBER: _ClassVar[int]
    JUDGE_FIELD_NUMBER: _ClassVar[int]
    EVAL_PAIR_FILTER_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    output_id: str
    store: _common_pb2.StoreSpec
    seed: int
    pair_filter: str
    split_fractions: _containers.RepeatedScalarFieldContainer[float]
    pbt_balance: str
    pair_agents: str
    judge: _common_pb2.AgentSpec
    eval_pair_filter: str
    def __init__(self, job_id: _Optional[str] = ..., output_id: _Optional[str] = ..., store: _Optional[_Union[_common_pb2.StoreSpec, _Mapping]] = ..., seed: _Optional[int] = ..., pair_filter: _Optional[str] = ..., split_fractions: _Optional[_Iterable[float]] = ..., pbt_balance: _Optional[str] = ..., pair_agents: _Optional[str] = ..., judge: _Optional[_Union[_common_pb2.AgentSpec, _Mapping]] = ..., eval_pair_filter: _Optional[str] = ...) -> None: ...

class ExtractPreferencesResponse(_message.Message):
    __slots__ = ("output_uri", "manifest_uri", "trees_read", "pairs", "accept_pairs", "resist_pairs", "pbt_pairs", "counts", "manifest_json")
    class CountsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: int
        def __init__(self, key: _Optional[str] = ..., value: _Optional[int] = ...) -> None: ...
    OUTPUT_URI_FIELD_NUMBER: _ClassVar[int]
    MANIFEST_URI_FIELD_NUMBER: _ClassVar[int]
    TREES_READ_FIELD_NUMBER: _ClassVar[int]
    PAIRS_FIELD_NUMBER: _ClassVar[int]
    ACCEPT_PAIRS_FIELD_NUMBER: _ClassVar[int]
    RESIST_PAIRS_FIELD_NUMBER: _ClassVar[int]
    PBT_PAIRS_FIELD_NUMBER: _ClassVar[int]
    COUNTS_FIELD_NUMBER: _ClassVar[int]
    MANIFEST_JSON_FIELD_NUMBER: _ClassVar[int]
    output_uri: str
    manifest_uri: str
    trees_read: int
    pairs: int
    accept_pairs: int
    resist_pairs: int
    pbt_pairs: int
    counts: _containers.ScalarMap[str, int]
    manifest_json: str
    def __init__(self, output_uri: _Optional[str] = ..., manifest_uri: _Optional[str] = ..., trees_read: _Optional[int] = ..., pairs: _Optional[int] = ..., accept_pairs: _Optional[int] = ..., resist_pairs: _Optional[int] = ..., pbt_pairs: _Optional[int] = ..., counts: _Optional[_Mapping[str, int]] = ..., manifest_json: _Optional[str] = ...) -> None: ...
