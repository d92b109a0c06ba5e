"""Mapping between `pbt.v1` messages and the library's configs (`RunConfig`, `EvalConfig`).

The configs know nothing of protobuf; the services and the clients convert here. Errors from the
``*_from_*`` functions name the request field (``config.tree.max_turns``).
"""

from __future__ import annotations

import json
import math
from typing import Any

from google.protobuf import json_format
from google.protobuf.message import Message

from pbt.config import RunConfig
from pbt.evaluate.config import EvalConfig, parse_config, parse_config_text
from pbt.v1 import evaluator_pb2, orchestrator_pb2

EVALUATION_STATES = {
    "running": evaluator_pb2.EVALUATION_STATE_RUNNING,
    "succeeded": evaluator_pb2.EVALUATION_STATE_SUCCEEDED,
    "failed": evaluator_pb2.EVALUATION_STATE_FAILED,
}
#: the enums of the API whose values become the configs' lower-case names
_ENUM_PREFIXES = ("APPEAL_TYPE_", "EXTRACTOR_KIND_", "EXTRACTION_MODE_", "DATASET_FORMAT_")


def proto_to_dict(message: Message) -> dict[str, Any]:
    """A proto message as the dict pydantic validates: unset fields dropped, enums as lower-case names."""
    return _enum_names(json_format.MessageToDict(message, preserving_proto_field_name=True))


def _enum_names(value: Any) -> Any:
    """Drop ``*_UNSPECIFIED`` enum values (unset) and turn the others into lower-case names."""
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            item = _enum_names(item)
            if isinstance(item, str) and item.isupper():
                if item.endswith("_UNSPECIFIED"):
                    continue
                prefix = next((p for p in _ENUM_PREFIXES if item.startswith(p)), None)
                if prefix is not None:
                    item = item[len(prefix) :].lower()
            out[key] = item
        return out
    if isinstance(value, list):
        return [_enum_names(v) for v in value]
    return value


def run_config_to_proto(config: RunConfig) -> orchestrator_pb2.RunConfig:
    data = config.model_dump(mode="json", exclude_none=True)
    data["extraction"]["mode"] = f"EXTRACTION_MODE_{data['extraction']['mode'].upper()}"
    if "dataset" in data:
        data["dataset"]["format"] = f"DATASET_FORMAT_{data['dataset']['format'].upper()}"
    return json_format.ParseDict(data, orchestrator_pb2.RunConfig())


def run_config_from_proto(message: orchestrator_pb2.RunConfig, *, prefix: str = "config.") -> RunConfig:
    """Validate a `pbt.v1.RunConfig`; errors name the request field (``config.tree.max_turns``)."""
    return RunConfig.from_dict(proto_to_dict(message), prefix=prefix)


def eval_config_dict_from_proto(message: evaluator_pb2.EvaluationConfig) -> dict[str, Any]:
    """The dict `EvalConfig` validates: unset fields dropped, models' agents flattened."""
    data = proto_to_dict(message)
    models = []
    for m in data.get("models", []):
        flat = {**m.get("agent", {}), "name": m.get("name", "")}
        if m.get("lineage"):
            flat["lineage"] = m["lineage"]
        models.append(flat)
    if "models" in data:
        data["models"] = models
    return data


def eval_config_from_request(request: evaluator_pb2.RunEvaluationRequest) -> EvalConfig:
    """Validate the request's config; errors name the request field (``config.models[0].endpoint``)."""
    which = request.WhichOneof("source")
    if which == "config_yaml":
        return parse_config_text(request.config_yaml, source="config_yaml")
    return parse_config(eval_config_dict_from_proto(request.config), prefix="config.")


def eval_config_to_proto(config: EvalConfig) -> evaluator_pb2.EvaluationConfig:
    data = config.model_dump(mode="json", exclude_none=True)
    data["models"] = [
        {
            "name": m.pop("name"),
            "lineage": {k: str(v) for k, v in m.pop("lineage", {}).items()},
            "agent": m,
        }
        for m in data["models"]
    ]
    suites = data.get("suites", {})
    if "misinformation" in suites:
        suites["misinformation"]["appeal"] = "APPEAL_TYPE_" + suites["misinformation"]["appeal"].upper()
    data["extractor"]["kind"] = "EXTRACTOR_KIND_" + data["extractor"]["kind"].upper()
    return json_format.ParseDict(data, evaluator_pb2.EvaluationConfig())


def _opt(x: Any) -> float | None:
    return None if x is None or (isinstance(x, float) and math.isnan(x)) else float(x)


def summary_to_proto(doc: dict[str, Any], report: str = "") -> evaluator_pb2.EvaluationSummary:
    """An evaluation's summary.json (and report.md) as the `EvaluationSummary` message."""
    metrics = []
    for suite, body in doc.get("suites", {}).items():
        for group, values in body.get("metrics", {}).items():
            for name, v in values.items():
                metric = evaluator_pb2.Metric(
                    suite=suite, group=group, name=name, n_items=int(v.get("n_items", 0))
                )
                for field in ("mean", "std", "ci_low", "ci_high"):
                    value = _opt(v.get(field))
                    if value is not None:
                        setattr(metric, field, value)
                metrics.append(metric)
    return evaluator_pb2.EvaluationSummary(
        eval_id=doc.get("eval_id", ""),
        state=EVALUATION_STATES.get(doc.get("state", ""), evaluator_pb2.EVALUATION_STATE_UNSPECIFIED),
        results_uri=doc.get("results_uri", ""),
        metrics=metrics,
        summary_json=json.dumps(doc, sort_keys=True),
        report_markdown=report,
        error=doc.get("error", ""),
    )
