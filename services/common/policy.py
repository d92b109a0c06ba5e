"""The request policy: what a gRPC request may make a pbt server (orchestrator, evaluator) do.

Threat model: whoever can call the gRPC API controls every field of a request. Requests name
agent endpoints, files, stores and sizes of work; without limits a caller could make the server
send its credentials to a URL of the caller's choosing, call internal URLs and read the answer
back (SSRF), read or write the server's files, load models from its disk, or exhaust it. One
`RequestPolicy`, set by the operator (flags, ``PBT_POLICY_*`` environment, the chart's
``requestPolicy`` values), decides for both servers:

- **agents**: a request names an agent by an operator-configured name (``agents``: name ->
  URL) or by an http(s) URL equal to a configured one or under a configured prefix
  (``agent_url_prefixes``). Nothing else is called. Default: no agents at all.
- **credentials**: ``AgentSpec.api_key_env`` in a request is refused. The API key of an agent
  comes from ``agent_credentials`` (agent name or URL prefix -> the environment variable or
  ``file:PATH`` holding it, mounted from a Secret), only for that agent.
- **local backends** (``local:DIR`` loads a model from the server's disk, ``scripted:FILE``
  reads files): refused unless ``allow_local_backends`` (development and tests).
- **files**: dataset, persona and suite files a request names must lie under one of the
  ``data_roots``; without data roots a request names no file at all (store keys and inline
  questions still work).
- **store**: the server's store is the operator's; a request's ``store.url`` may only be a
  relative prefix inside it (``team-a/run-3``); ``store.endpoint`` is refused.
- **limits**: tree size (``max_tree_nodes``), debate agents (``max_debate_agents``) and debate
  turns; error messages repeat at most 200 characters of any value, never file contents, and
  upstream (agent) error bodies are logged, not relayed.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import click
from pydantic import BaseModel, ConfigDict, Field, field_validator

from pbt.backends.base import ChatBackend
from pbt.config import AgentConfig, StoreConfig
from pbt.errors import ValidationError, from_pydantic, shorten
from pbt.store import ObjectStore
from pbt.store.base import PrefixedStore, check_key

ENV_PREFIX = "PBT_POLICY_"
MAX_URL_CHARS = 2048
_SAFE_URL = re.compile(r"^[\x21-\x5b\x5d-\x7e]+$")  # printable ASCII but '\\'; no spaces or controls
_LOCAL_SCHEMES = ("local:", "scripted:", "scripted")


def check_url(url: str, field: str) -> str:
    """An http(s) URL that parses, has a host and a valid port, and is printable ASCII; else a
    `ValidationError` naming `field` (malformed URLs never reach the HTTP client)."""
    if len(url) > MAX_URL_CHARS:
        raise ValidationError(f"URL longer than {MAX_URL_CHARS} characters", field=field)
    if not _SAFE_URL.match(url):
        raise ValidationError(
            f"URL {shorten(url)} contains spaces, control, backslash or non-ASCII characters", field=field
        )
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise ValidationError(f"malformed URL {shorten(url)}: {exc}", field=field) from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValidationError(f"expected http(s)://host[:port][/path], got {shorten(url)}", field=field)
    if port == 0 or parts.username or parts.password:
        raise ValidationError(f"URL {shorten(url)}: no port 0 and no user:password@", field=field)
    return url


def _prefix_matches(url: str, prefix: str) -> bool:
    """``prefix`` ending in '/' or ':' matches anything after it; otherwise `url` must equal it or
    continue with '/' (``http://agent`` must not match ``http://agent.evil.example``)."""
    if prefix.endswith(("/", ":")):
        return url.startswith(prefix)
    return url == prefix or url.startswith(prefix + "/")


def _credential_value(source: str) -> str | None:
    """The secret named by ``ENV_VAR`` or ``file:PATH`` (a mounted Secret); None if unset."""
    if source.startswith("file:"):
        try:
            return Path(source[len("file:") :]).read_text(encoding="utf-8").strip() or None
        except OSError:
            return None
    return os.environ.get(source) or None


class RequestPolicy(BaseModel):
    """What requests may do; every field can come from ``PBT_POLICY_<FIELD>`` (see `from_env`)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    agents: dict[str, str] = Field(
        default_factory=dict,
        description="Agents requests may name: name -> http(s) URL. A request's endpoint is a name "
        "here or a URL equal to one of these.",
    )
    agent_url_prefixes: list[str] = Field(
        default_factory=list,
        description="Further agent URLs requests may use: a prefix ending in '/' or ':' matches "
        "anything after it, others the URL itself or the URL followed by '/'.",
    )
    agent_credentials: dict[str, str] = Field(
        default_factory=dict,
        description="API keys sent to agents: agent name or URL prefix -> an environment variable "
        "name or file:PATH (mounted from a Secret). Never chosen by requests.",
    )
    allow_local_backends: bool = Field(
        False, description="Accept local:DIR and scripted:... agents (development and tests)."
    )
    data_roots: list[Path] = Field(
        default_factory=list,
        description="Folders under which requests may name files (datasets, personas, suite inputs); "
        "empty: requests name no files.",
    )
    max_debate_agents: int = Field(8, ge=2, le=64, description="Most agents of one RunDebate.")
    max_debate_turns: int = Field(16, ge=1, le=256, description="Most rounds of one RunDebate.")
    max_tree_nodes: int = Field(
        4096, ge=1, le=1_000_000, description="Most nodes of one tree (the product of the branching)."
    )

    @field_validator("agents")
    @classmethod
    def _agents(cls, value: dict[str, str]) -> dict[str, str]:
        for name, url in value.items():
            if not name or name.startswith(("http:", "https:")) or ":" in name:
                raise ValueError(f"agent name {name!r} must not be empty or contain ':'")
            check_url(url, f"agents.{name}")
        return value

    @field_validator("agent_url_prefixes")
    @classmethod
    def _prefixes(cls, value: list[str]) -> list[str]:
        for prefix in value:
            if not prefix.startswith(("http://", "https://")) or len(prefix) <= len("https://"):
                raise ValueError(f"agent URL prefix {prefix!r} must be http(s)://host...")
        return value

    @field_validator("data_roots")
    @classmethod
    def _roots(cls, value: list[Path]) -> list[Path]:
        return [Path(r).expanduser().resolve() for r in value]

    # ---- construction ------------------------------------------------------------------------
    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> RequestPolicy:
        """Read ``PBT_POLICY_AGENTS`` (JSON object or ``name=url,...``), ``PBT_POLICY_AGENT_URL_PREFIXES``
        (comma-separated), ``PBT_POLICY_AGENT_CREDENTIALS`` (JSON object or ``name=ENV,...``),
        ``PBT_POLICY_ALLOW_LOCAL_BACKENDS``, ``PBT_POLICY_DATA_ROOTS`` (comma-separated),
        ``PBT_POLICY_MAX_DEBATE_AGENTS``, ``PBT_POLICY_MAX_DEBATE_TURNS``, ``PBT_POLICY_MAX_TREE_NODES``.
        Overrides that are not None (the command-line flags) win; mappings and lists are merged."""
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for name in cls.model_fields:
            raw = env.get(ENV_PREFIX + name.upper(), "").strip()
            if not raw:
                continue
            if name in ("agents", "agent_credentials"):
                values[name] = _parse_mapping(raw, ENV_PREFIX + name.upper())
            elif name in ("agent_url_prefixes", "data_roots"):
                values[name] = [p.strip() for p in raw.split(",") if p.strip()]
            else:
                values[name] = raw
        for name, value in overrides.items():
            if value is None or value == () or value == {} or value == []:
                continue
            if isinstance(value, Mapping):
                values[name] = {**values.get(name, {}), **value}
            elif isinstance(value, list | tuple):
                values[name] = [*values.get(name, []), *value]
            else:
                values[name] = value
        return cls.model_validate(values)

    # ---- agents ------------------------------------------------------------------------------
    def resolve_agent(self, agent: AgentConfig, field: str) -> tuple[AgentConfig, str | None]:
        """The agent with its endpoint resolved to an allowed URL, and the API key the operator
        configured for it (or None). Errors name ``field.endpoint`` / ``field.api_key_env``."""
        if agent.api_key_env:
            raise ValidationError(
                "API keys come from the server's configuration (agent credentials), not from "
                "requests; remove api_key_env",
                field=f"{field}.api_key_env",
            )
        endpoint = agent.endpoint
        if endpoint in self.agents:
            url = self.agents[endpoint]
            return agent.model_copy(update={"endpoint": url}), self._credential(endpoint, url)
        if endpoint.startswith(_LOCAL_SCHEMES) and not endpoint.startswith(("http:", "https:")):
            if not self.allow_local_backends:
                raise ValidationError(
                    f"this server does not accept {endpoint.split(':', 1)[0]}: agents (the operator "
                    "enables them with --allow-local-backends, for development)",
                    field=f"{field}.endpoint",
                )
            return agent, None
        url = check_url(endpoint, f"{field}.endpoint")
        if url in self.agents.values() or any(_prefix_matches(url, p) for p in self.agent_url_prefixes):
            return agent, self._credential(None, url)
        known = ", ".join(sorted(self.agents)) or "none configured"
        raise ValidationError(
            f"agent {shorten(url)} is not in this server's allow-list (agent names: {known}; the "
            "operator adds agents with --agent NAME=URL or --agent-url-prefix)",
            field=f"{field}.endpoint",
        )

    def _credential(self, name: str | None, url: str) -> str | None:
        if name is not None and name in self.agent_credentials:
            return _credential_value(self.agent_credentials[name])
        matches = [
            k
            for k in self.agent_credentials
            if k.startswith(("http://", "https://")) and _prefix_matches(url, k)
        ]
        if matches:
            return _credential_value(self.agent_credentials[max(matches, key=len)])
        for agent_name, agent_url in self.agents.items():  # a URL that names a configured agent
            if agent_url == url and agent_name in self.agent_credentials:
                return _credential_value(self.agent_credentials[agent_name])
        return None

    def backend_factory(
        self, injected: Callable[[str, AgentConfig], ChatBackend] | None = None
    ) -> Callable[[str, AgentConfig, str | None], ChatBackend]:
        """Builds the backend of a resolved agent: `injected` (tests) or `pbt.backends.make_backend`
        with the operator's API key and upstream error bodies kept out of error messages."""

        def make(role: str, agent: AgentConfig, api_key: str | None) -> ChatBackend:
            if injected is not None:
                return injected(role, agent)
            from pbt.backends import make_backend

            if agent.endpoint.startswith(("http://", "https://")):
                return make_backend(agent, api_key=api_key, relay_errors=False)
            return make_backend(agent)

        return make

    # ---- files and stores --------------------------------------------------------------------
    def check_path(self, path: str | None, field: str, *, store_key_ok: bool = False) -> None:
        """A file a request names must lie under a data root. With `store_key_ok`, a relative
        name that is no file on the server is read from the store instead and passes."""
        if not path:
            return
        if len(path) > 4096 or "\x00" in path:
            raise ValidationError("not a usable path", field=field)
        local = path.removeprefix("file://")
        resolved = Path(local).expanduser().resolve()
        if any(resolved == root or root in resolved.parents for root in self.data_roots):
            return
        if store_key_ok and not path.startswith(("/", "file:", "s3:", "~")):
            try:
                check_key(path)
            except ValidationError:
                pass
            else:
                if not Path(local).exists():
                    return  # read from the store (`pbt.evaluate.sources.read_source`)
        if self.data_roots:
            roots = ", ".join(str(r) for r in self.data_roots)
            raise ValidationError(
                f"{shorten(path)} is outside the server's data roots ({roots})", field=field
            )
        raise ValidationError(
            f"this server reads no files named by requests ({shorten(path)}); use inline data or "
            "store keys (the operator allows files under data roots with --data-root)",
            field=field,
        )

    def open_store(self, spec: StoreConfig | None, server_store: ObjectStore, field: str) -> ObjectStore:
        """The server's store, or a prefix inside it when the request's ``url`` is a relative path."""
        if spec is None:
            return server_store
        if spec.endpoint or spec.secure is not None:
            raise ValidationError(
                "the store is the server's; a request may only pick a prefix inside it (store.url)",
                field=f"{field}.endpoint" if spec.endpoint else f"{field}.secure",
            )
        if not spec.url or _same_store(spec.url, server_store):
            return server_store
        prefix = spec.url.strip().strip("/")
        try:
            if spec.url.strip().startswith("/") or ":" in prefix or len(prefix) > 256:
                raise ValidationError("not relative")
            check_key(prefix)
            if not all(re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", p) for p in prefix.split("/")):
                raise ValidationError("bad segment")
        except ValidationError:
            raise ValidationError(
                f"{shorten(spec.url)}: the store is the server's; a request may only name a relative "
                "prefix inside it (letters, digits, '.', '_', '-' segments separated by '/')",
                field=f"{field}.url",
            ) from None
        return PrefixedStore(server_store, prefix)

    # ---- limits ------------------------------------------------------------------------------
    def check_tree(self, branching: Sequence[int], field: str) -> None:
        nodes, width = 0, 1
        for b in branching:
            width *= b
            nodes += width
        if nodes > self.max_tree_nodes:
            raise ValidationError(
                f"branching {list(branching)} gives {nodes} nodes per tree; this server builds at most "
                f"{self.max_tree_nodes}",
                field=f"{field}.branching",
            )


def _same_store(url: str, store: ObjectStore) -> bool:
    """Whether a request's store URL names the server's own store (clients that send it along)."""
    url = url.strip().rstrip("/")
    if url == store.url.rstrip("/"):
        return True
    if url.startswith(("/", "file://")) and store.url.startswith("file://"):
        try:
            return Path(url.removeprefix("file://")).resolve().as_uri() == store.url.rstrip("/")
        except (OSError, ValueError):
            return False
    return False


def _name_value(item: str, what: str) -> tuple[str, str]:
    key, sep, value = item.partition("=")
    if not sep or not key.strip() or not value.strip():
        raise ValueError(f"{what}: expected NAME=VALUE, got {item!r}")
    return key.strip(), value.strip()


def _parse_mapping(raw: str, what: str) -> dict[str, str]:
    """A JSON object or ``NAME=VALUE,...`` (environment values)."""
    if raw.startswith("{"):
        try:
            data = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise ValueError(f"{what}: not a JSON object ({exc.msg})") from None
        if not isinstance(data, dict):
            raise ValueError(f"{what}: expected a JSON object")
        return {str(k): str(v) for k, v in data.items()}
    return dict(_name_value(item, what) for item in raw.split(",") if item.strip())


def policy_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """The request-policy flags shared by ``pbt serve orchestrator`` and ``pbt serve evaluator``;
    the command receives ``policy_flags`` (a dict for `policy_from_flags`)."""
    options = [
        click.option(
            "--agent",
            "agents",
            multiple=True,
            metavar="NAME=URL",
            help="An agent requests may use, by NAME or URL (repeat) [env PBT_POLICY_AGENTS].",
        ),
        click.option(
            "--agent-url-prefix",
            "agent_url_prefixes",
            multiple=True,
            help="Agent URLs under this prefix are allowed too (repeat) [env PBT_POLICY_AGENT_URL_PREFIXES].",
        ),
        click.option(
            "--agent-credential",
            "agent_credentials",
            multiple=True,
            metavar="NAME_OR_PREFIX=ENV|file:PATH",
            help="API key sent to that agent (repeat) [env PBT_POLICY_AGENT_CREDENTIALS].",
        ),
        click.option(
            "--allow-local-backends",
            is_flag=True,
            default=None,
            help="Accept local:DIR and scripted:FILE agents in requests (development and tests).",
        ),
        click.option(
            "--data-root",
            "data_roots",
            multiple=True,
            type=click.Path(file_okay=False),
            help="Requests may name files under this folder (repeat) [env PBT_POLICY_DATA_ROOTS].",
        ),
    ]
    for option in reversed(options):
        command = option(command)
    return command


def policy_from_flags(
    agents: Sequence[str] = (),
    agent_url_prefixes: Sequence[str] = (),
    agent_credentials: Sequence[str] = (),
    allow_local_backends: bool | None = None,
    data_roots: Sequence[str] = (),
) -> RequestPolicy:
    """The policy of a server started from the command line: environment, then the flags."""
    from pydantic import ValidationError as PydanticValidationError

    try:
        return RequestPolicy.from_env(
            agents=dict(_name_value(item, "--agent") for item in agents),
            agent_url_prefixes=list(agent_url_prefixes),
            agent_credentials=dict(_name_value(item, "--agent-credential") for item in agent_credentials),
            allow_local_backends=allow_local_backends or None,
            data_roots=list(data_roots),
        )
    except PydanticValidationError as exc:
        err = from_pydantic(exc)
        raise click.UsageError(
            f"request policy {err.field or ''}: {err.message}".replace(" :", ":")
        ) from None
    except ValueError as exc:
        raise click.UsageError(f"request policy: {exc}") from None
