"""services.common.policy.RequestPolicy: the one policy both gRPC servers apply to requests."""

from __future__ import annotations

from pathlib import Path

import pytest

from pbt.config import AgentConfig, StoreConfig
from pbt.errors import ValidationError
from pbt.store import LocalStore
from services.common.policy import RequestPolicy, check_url

POLICY = RequestPolicy(
    agents={"a": "http://agent-a.ns.svc/openai/v1"},
    agent_url_prefixes=["http://127.0.0.1:", "https://models.example.com/v1"],
    agent_credentials={"a": "AGENT_A_KEY", "https://models.example.com/v1": "file:/nonexistent/key"},
)


def _resolve(policy: RequestPolicy, **agent) -> tuple[AgentConfig, str | None]:
    return policy.resolve_agent(AgentConfig(**agent), "agents.a")


def test_agents_resolve_by_name_or_allowed_url_with_the_operators_key(monkeypatch) -> None:
    monkeypatch.setenv("AGENT_A_KEY", "k-a")
    agent, key = _resolve(POLICY, endpoint="a", model="m")
    assert agent.endpoint == "http://agent-a.ns.svc/openai/v1" and agent.model == "m" and key == "k-a"
    assert _resolve(POLICY, endpoint="http://agent-a.ns.svc/openai/v1")[1] == "k-a"  # same agent by URL
    assert _resolve(POLICY, endpoint="http://127.0.0.1:8001/v1") == (
        AgentConfig(endpoint="http://127.0.0.1:8001/v1"),
        None,
    )
    assert _resolve(POLICY, endpoint="https://models.example.com/v1/x")[1] is None  # unreadable file


@pytest.mark.parametrize(
    ("endpoint", "field", "says"),
    [
        ("http://169.254.169.254/latest", "agents.a.endpoint", "allow-list"),
        ("https://models.example.com/v10", "agents.a.endpoint", "allow-list"),  # not under the prefix
        ("http://agent-a.ns.svc.evil.example/openai/v1", "agents.a.endpoint", "allow-list"),
        ("http://[::1", "agents.a.endpoint", "malformed"),
        ("http://h:99999/v1", "agents.a.endpoint", "malformed"),
        ("http://h/v1\r\nX-Injected: 1", "agents.a.endpoint", "control"),
        ("http://" + "h" * 1_000_000, "agents.a.endpoint", "longer than"),
        ("http://user:pw@127.0.0.1:1/v1", "agents.a.endpoint", "user:password"),
        ("http://127.0.0.1:80@evil.example/v1", "agents.a.endpoint", "user:password"),
        ("http://127.0.0.1:8080\\@evil.example/v1", "agents.a.endpoint", "control"),
        ("scripted:/etc/passwd", "agents.a.endpoint", "--allow-local-backends"),
        ("local:/models/secret", "agents.a.endpoint", "--allow-local-backends"),
        ("ftp://127.0.0.1/", "agents.a.endpoint", "http(s)"),
    ],
)
def test_other_agents_are_refused_naming_the_field(endpoint: str, field: str, says: str) -> None:
    with pytest.raises(ValidationError) as info:
        _resolve(POLICY, endpoint=endpoint)
    assert info.value.field == field and says in info.value.message
    assert len(str(info.value)) < 600  # a 1 MB host is not echoed


def test_api_key_env_from_a_request_is_refused(monkeypatch) -> None:
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "s3cr3t")
    with pytest.raises(ValidationError) as info:
        _resolve(POLICY, endpoint="a", api_key_env="AWS_SECRET_ACCESS_KEY")
    assert info.value.field == "agents.a.api_key_env" and "s3cr3t" not in str(info.value)


def test_local_backends_only_when_allowed() -> None:
    dev = RequestPolicy(allow_local_backends=True)
    assert _resolve(dev, endpoint="scripted:x")[0].endpoint == "scripted:x"
    with pytest.raises(ValidationError):
        _resolve(dev, endpoint="http://127.0.0.1:1/v1")  # still not allow-listed


def test_paths_need_a_data_root(tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "q.jsonl").write_text("{}\n")
    with pytest.raises(ValidationError, match="reads no files"):
        RequestPolicy().check_path(str(tmp_path / "data" / "q.jsonl"), "f")
    rooted = RequestPolicy(data_roots=[tmp_path / "data"])
    rooted.check_path(str(tmp_path / "data" / "q.jsonl"), "f")
    for bad in ("/etc/passwd", str(tmp_path / "data" / ".." / "x"), "file:///etc/passwd", "~/.ssh/id_rsa"):
        with pytest.raises(ValidationError, match="outside the server's data roots"):
            rooted.check_path(bad, "f")
    RequestPolicy().check_path("pairs/job-1/pbt.jsonl", "f", store_key_ok=True)  # a store key
    with pytest.raises(ValidationError):
        RequestPolicy().check_path("/etc/passwd", "f", store_key_ok=True)


def test_requests_pick_at_most_a_prefix_of_the_servers_store(tmp_path: Path) -> None:
    server = LocalStore(tmp_path / "store")
    assert POLICY.open_store(StoreConfig(), server, "store") is server
    assert POLICY.open_store(StoreConfig(url=server.url), server, "store") is server
    assert POLICY.open_store(StoreConfig(url=str(tmp_path / "store")), server, "store") is server
    team = POLICY.open_store(StoreConfig(url="team-a/run-3"), server, "store")
    team.put_text("x.txt", "hi")
    assert (tmp_path / "store" / "team-a" / "run-3" / "x.txt").read_text() == "hi"
    assert list(team.list("")) == ["x.txt"] and team.url == f"{server.url}/team-a/run-3"
    for spec, field in (
        (StoreConfig(url=str(tmp_path / "elsewhere")), "store.url"),
        (StoreConfig(url="../up"), "store.url"),
        (StoreConfig(url="s3://other-bucket/x"), "store.url"),
        (StoreConfig(url="a//b"), "store.url"),
        (StoreConfig(url="s3://b", endpoint="http://evil:9000"), "store.endpoint"),
        (StoreConfig(secure=False), "store.secure"),
    ):
        with pytest.raises(ValidationError) as info:
            POLICY.open_store(spec, server, "store")
        assert info.value.field == field, spec
    assert not (tmp_path / "elsewhere").exists()


def test_from_env_and_overrides() -> None:
    policy = RequestPolicy.from_env(
        {
            "PBT_POLICY_AGENTS": '{"a": "http://a:8080/v1"}',
            "PBT_POLICY_AGENT_URL_PREFIXES": "http://127.0.0.1:, https://x.example/",
            "PBT_POLICY_AGENT_CREDENTIALS": "a=KEY_A",
            "PBT_POLICY_ALLOW_LOCAL_BACKENDS": "false",
            "PBT_POLICY_MAX_TREE_NODES": "100",
        },
        agents={"b": "http://b:8080/v1"},
    )
    assert policy.agents == {"a": "http://a:8080/v1", "b": "http://b:8080/v1"}
    assert policy.agent_url_prefixes == ["http://127.0.0.1:", "https://x.example/"]
    assert policy.agent_credentials == {"a": "KEY_A"} and policy.max_tree_nodes == 100
    with pytest.raises(ValueError):
        RequestPolicy(agents={"a": "http://[::1"})
    with pytest.raises(ValueError):
        RequestPolicy(agent_url_prefixes=["http://"])
    assert check_url("https://h:443/v1", "f") == "https://h:443/v1"


def test_flags_and_environment_parse_name_value_pairs_alike() -> None:
    """`--agent`/`--agent-credential` and PBT_POLICY_AGENTS/_CREDENTIALS take NAME=VALUE the same
    way; a malformed pair names the flag or the variable."""
    import click

    from services.common.policy import policy_from_flags

    flags = policy_from_flags(agents=["a=http://a:8080/v1"], agent_credentials=["a=KEY_A"])
    env = RequestPolicy.from_env(
        {"PBT_POLICY_AGENTS": "a=http://a:8080/v1", "PBT_POLICY_AGENT_CREDENTIALS": "a=KEY_A"}
    )
    assert (flags.agents, flags.agent_credentials) == (env.agents, env.agent_credentials)
    with pytest.raises(click.UsageError, match="--agent-credential: expected NAME=VALUE"):
        policy_from_flags(agent_credentials=["KEY_A"])
    with pytest.raises(ValueError, match="PBT_POLICY_AGENTS: expected NAME=VALUE"):
        RequestPolicy.from_env({"PBT_POLICY_AGENTS": "a=http://a/v1,b="})


def test_tree_size_is_bounded() -> None:
    POLICY.check_tree([1, 2, 3, 2], "config.tree")
    with pytest.raises(ValidationError) as info:
        POLICY.check_tree([1] + [16] * 7, "config.tree")
    assert info.value.field == "config.tree.branching"
