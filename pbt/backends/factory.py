"""`make_backend(spec)`: one string (or agent config object) names any backend.

Specs:

* ``http://host:port[/v1|/openai/v1]`` or ``https://...`` -> `pbt.backends.http.HttpBackend`
* ``local:MODEL_DIR`` (optionally ``?adapter=ADAPTER_DIR``), or a path to an existing model
  folder -> `pbt.backends.local.LocalBackend`
* ``scripted:[ANSWERS_FILE][?persuasion=never|always|correct|0.3&seed=N&gold=FILE&doubt=FILE&default=X]``
  -> `pbt.backends.scripted.ScriptedBackend`; the files are JSON or YAML mappings question -> answer.

An object with an ``endpoint`` attribute (``pbt.config.AgentConfig``, the evaluator's
``AgentSpec``) also works: its ``model``, ``api_key_env`` (the *name* of an environment
variable), ``max_in_flight``, ``timeout_s`` and ``max_attempts`` are used when present.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

from pbt.backends.base import ChatBackend
from pbt.errors import ValidationError

_AGENT_OPTIONS = {"max_in_flight": "max_concurrency", "timeout_s": "timeout", "max_attempts": "max_attempts"}


def _split_query(rest: str) -> tuple[str, dict[str, str]]:
    path, _, query = rest.partition("?")
    return path, {k: v[-1] for k, v in parse_qs(query, keep_blank_values=True).items()}


def _load_table(path: str, what: str) -> dict[str, str]:
    from pbt.safeload import load_yaml, loads_json, read_text

    file = Path(path)
    if not file.is_file():
        raise ValidationError(f"{what} file not found: {file}", field="endpoint")
    try:
        text = read_text(file, f"{what} file")
        data = load_yaml(text, str(file)) if file.suffix in (".yaml", ".yml") else loads_json(text, str(file))
    except ValidationError as exc:
        raise ValidationError(str(exc), field="endpoint") from None
    if not isinstance(data, dict):
        raise ValidationError(f"{file} must hold a mapping question -> answer", field="endpoint")
    return {str(k): str(v) for k, v in data.items()}


def _scripted(rest: str) -> ChatBackend:
    from pbt.backends.scripted import ScriptedBackend

    path, q = _split_query(rest)
    unknown = set(q) - {"persuasion", "seed", "gold", "doubt", "default", "delay"}
    if unknown:
        raise ValidationError(f"unknown scripted option(s) {sorted(unknown)}", field="endpoint")
    persuasion: Any = q.get("persuasion", "never")
    if persuasion not in ("never", "always", "correct"):
        try:
            persuasion = float(persuasion)
        except ValueError as exc:
            raise ValidationError(
                f"persuasion must be never/always/correct or a rate, got {persuasion!r}", field="endpoint"
            ) from exc
    try:
        return ScriptedBackend(
            _load_table(path, "answers") if path else {},
            persuasion=persuasion,
            gold=_load_table(q["gold"], "gold") if q.get("gold") else None,
            doubt_answers=_load_table(q["doubt"], "doubt") if q.get("doubt") else None,
            default_answer=q.get("default", "NONE"),
            seed=int(q.get("seed", 0)),
            delay=float(q.get("delay", 0.0)),
        )
    except ValueError as exc:
        raise ValidationError(str(exc), field="endpoint") from exc


def make_backend(
    spec: Any, *, model: str | None = None, api_key: str | None = None, **options: Any
) -> ChatBackend:
    """Create the backend a spec names (see the module docstring). `options` go to the constructor."""
    if not isinstance(spec, str):
        endpoint = getattr(spec, "endpoint", None)
        if not isinstance(endpoint, str):
            raise ValidationError(
                f"expected a backend spec string or an object with 'endpoint', got {type(spec).__name__}"
            )
        model = model or getattr(spec, "model", None) or None
        env = getattr(spec, "api_key_env", None)
        if api_key is None and env:
            api_key = os.environ.get(env)
        if endpoint.startswith(("http://", "https://")):
            for attr, name in _AGENT_OPTIONS.items():
                if getattr(spec, attr, None) is not None:
                    options.setdefault(name, getattr(spec, attr))
        spec = endpoint
    spec = spec.strip()
    if spec.startswith(("http://", "https://")):
        from pbt.backends.http import HttpBackend

        return HttpBackend(spec, model, api_key=api_key, **options)
    if spec.startswith("scripted:") or spec == "scripted":
        return _scripted(spec.partition(":")[2])
    if spec.startswith("local:") or Path(spec).is_dir():
        from pbt.backends.local import LocalBackend

        path, q = _split_query(spec[len("local:") :] if spec.startswith("local:") else spec)
        return LocalBackend(
            path, q.get("adapter") or options.pop("adapter", None), model_name=model, **options
        )
    raise ValidationError(
        f"unsupported backend spec {spec!r}: use http(s)://host:port[/v1], local:MODEL_DIR or scripted:[ANSWERS]",
        field="endpoint",
    )


#: ``factory(role, agent_config) -> backend``: how the tree builder, the team debate and the
#: evaluator open an agent (servers inject their own: the request policy's, or tests' scripted ones)
BackendFactory = Callable[[str, Any], ChatBackend]


def agent_backend(role: str, agent: Any) -> ChatBackend:
    """The default `BackendFactory`: `make_backend` on an agent config; a bad endpoint's error
    names the agent (``agents.<role>.endpoint``)."""
    try:
        return make_backend(agent)
    except ValidationError as exc:
        raise ValidationError(exc.message, field=f"agents.{role}.{exc.field or 'endpoint'}") from None
