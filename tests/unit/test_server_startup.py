"""Both gRPC servers start the same way (`services.common.startup`): same flags, same environment."""

from __future__ import annotations

import logging

import click
import pytest

from services.common.startup import configure_logging, settings_from_flags
from services.evaluator.cli import evaluator
from services.orchestrator.cli import orchestrator


def _options(command: click.Command) -> dict[str, tuple[str, ...]]:
    return {p.name: tuple(p.opts) for p in command.params if isinstance(p, click.Option)}


def test_both_servers_accept_the_same_flags():
    orch, ev = _options(orchestrator), _options(evaluator)
    assert {k: v for k, v in orch.items() if k != "progress_interval"} == ev
    for flag in ("--tls-cert", "--tls-key", "--tls-client-ca", "--grace", "--auth-token", "--log-level"):
        assert any(flag in opts for opts in ev.values()), flag
    for flag in ("--max-message-bytes", "--store", "--data-root", "--allow-local-backends", "--agent"):
        assert any(flag in opts for opts in ev.values()), flag
    assert (
        {p.name: p.default for p in orchestrator.params}["port"],
        {p.name: p.default for p in evaluator.params}["port"],
    ) == (50051, 50052)


def _flags(**kw):
    return {"host": "127.0.0.1", "port": 0, **kw}


def test_settings_come_from_the_environment_and_flags_win(monkeypatch):
    monkeypatch.setenv("PBT_GRPC_GRACE_S", "3")
    monkeypatch.setenv("PBT_GRPC_LOG_LEVEL", "debug")
    monkeypatch.setenv("PBT_GRPC_AUTH_TOKENS", "a,b")
    monkeypatch.setenv("PBT_POLICY_ALLOW_LOCAL_BACKENDS", "true")
    settings = settings_from_flags(**_flags(max_message_bytes=4096))
    assert (settings.config.grace_s, settings.config.log_level, settings.config.max_message_bytes) == (
        3,
        "DEBUG",
        4096,
    )
    assert [t.get_secret_value() for t in settings.config.auth_tokens] == ["a", "b"]
    assert settings.policy.allow_local_backends and settings.address == "127.0.0.1:0"
    flagged = settings_from_flags(
        **_flags(grace_s=0.5, log_level="warning", auth_tokens=("c",), data_roots=("/srv",))
    )
    assert (flagged.config.grace_s, flagged.config.log_level) == (0.5, "WARNING")
    assert [t.get_secret_value() for t in flagged.config.auth_tokens] == ["c"]
    assert [str(r) for r in flagged.policy.data_roots] == ["/srv"]


def test_by_default_local_agents_and_files_are_refused(monkeypatch):
    for name in ("PBT_POLICY_ALLOW_LOCAL_BACKENDS", "PBT_POLICY_DATA_ROOTS", "PBT_POLICY_AGENTS"):
        monkeypatch.delenv(name, raising=False)
    policy = settings_from_flags(**_flags()).policy
    assert not policy.allow_local_backends and not policy.data_roots and not policy.agents


def test_bad_settings_are_usage_errors(tmp_path, monkeypatch):
    monkeypatch.delenv("PBT_GRPC_LOG_LEVEL", raising=False)
    with pytest.raises(click.BadParameter, match="log_level"):
        settings_from_flags(**_flags(log_level="LOUD"))
    cert = tmp_path / "cert.pem"
    cert.write_text("x")
    with pytest.raises(click.BadParameter, match="together"):
        settings_from_flags(**_flags(tls_cert_file=str(cert)))


def test_log_level_is_info_unless_set_or_asked_for_more():
    root = logging.getLogger()
    before = root.level
    try:
        root.setLevel(logging.WARNING)  # `pbt` without -v
        configure_logging(None)
        assert root.level == logging.INFO
        root.setLevel(logging.DEBUG)  # `pbt -vv`
        configure_logging(None)
        assert root.level == logging.DEBUG
        configure_logging("ERROR")
        assert root.level == logging.ERROR
    finally:
        root.setLevel(before)
