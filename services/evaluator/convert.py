"""Mapping between `pbt.v1` evaluator messages and `pbt.evaluate` objects (no transport here)."""

from __future__ import annotations

import json
import math
from typing import Any

from google.protobuf import json_format

from pbt.evaluate.config import EvalConfig, parse_config, parse_config_text
from pbt.v1 import evaluator_pb2 as pb

STATES = {
    "running": pb.EVALUATION_STATE_RUNNING,
    "succeeded": pb.EVALUATION_STATE_SUCCEEDED,
    "failed": pb.EVALUATION_STATE_FAILED,
}
_ENUM_PREFIXES = ("APPEAL_TYPE_", "EXTRACTOR_KIND_")


def _enums(value: Any) -> Any:
    """Drop ``*_UNSPECIFIED`` enum values (unset) and turn the others into lower-case names."""
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            v = _enums(v)
            if isinstance(v, str) and v.endswith("_UNSPECIFIED") and v.isupper():
                continue
            for p in _ENUM_PREFIXES:
                if isinstance(v, str) and v.startswith(p):
                    v = v[len(p) :].lower()
            out[k] = v
        return out
    if isinstance(value, list):
        return [_enums(v) for v in value]
    return value


def config_dict_from_proto(message: pb.EvaluationConfig) -> dict[str, Any]:
    """The dict `EvalConfig` validates: unset fields dropped, models' agents flattened."""
    data = _enums(json_format.MessageToDict(message, preserving_proto_field_name=True))
    models = []
    for m in data.get("models", []):
        flat = {**m.get("agent", {}), "name": m.get("name", "")}
        if m.get("lineage"):
            flat["lineage"] = m["lineage"]
        models.append(flat)
    if "models" in data:
        data["models"] = models
    return data


def config_from_request(request: pb.RunEvaluationRequest) -> EvalConfig:
    """Validate the request's config; errors name the request field (``config.models[0].endpoint``)."""
    which = request.WhichOneof("source")
    if which == "config_yaml":
        return parse_config_text(request.config_yaml, source="config_yaml")
    return parse_config(config_dict_from_proto(request.config), prefix="config.")


def config_to_proto(config: EvalConfig) -> pb.EvaluationConfig:
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
    return json_format.ParseDict(data, pb.EvaluationConfig())


def _opt(x: Any) -> float | None:
    return None if x is None or (isinstance(x, float) and math.isnan(x)) else float(x)


def summary_to_proto(doc: dict[str, Any], report: str = "") -> pb.EvaluationSummary:
    metrics = []
    for suite, body in doc.get("suites", {}).items():
        for group, values in body.get("metrics", {}).items():
            for name, v in values.items():
                metric = pb.Metric(suite=suite, group=group, name=name, n_items=int(v.get("n_items", 0)))
                for field in ("mean", "std", "ci_low", "ci_high"):
                    value = _opt(v.get(field))
                    if value is not None:
                        setattr(metric, field, value)
                metrics.append(metric)
    return pb.EvaluationSummary(
        eval_id=doc.get("eval_id", ""),
        state=STATES.get(doc.get("state", ""), pb.EVALUATION_STATE_UNSPECIFIED),
        results_uri=doc.get("results_uri", ""),
        metrics=metrics,
        summary_json=json.dumps(doc, sort_keys=True),
        report_markdown=report,
        error=doc.get("error", ""),
    )
