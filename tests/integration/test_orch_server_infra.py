"""services.common: health, reflection, error mapping with rich details, auth, TLS, limits, shutdown."""

from __future__ import annotations

import asyncio
import datetime
from pathlib import Path

import grpc
import pytest
from google.rpc import error_details_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc
from grpc_status import rpc_status

from pbt.errors import NotFoundError, UnavailableError, ValidationError
from pbt.rpc import open_channel
from pbt.v1 import orchestrator_pb2, orchestrator_pb2_grpc
from services.common import ServerConfig, ServiceSpec, create_server

pytestmark = pytest.mark.integration
SERVICE = "pbt.v1.DebateOrchestratorService"


class RaisingServicer(orchestrator_pb2_grpc.DebateOrchestratorServiceServicer):
    """GetTree raises whatever `tree_id` names; BuildTrees streams one event then raises."""

    async def GetTree(self, request, context):  # noqa: N802
        kind = request.tree_id
        if kind == "invalid":
            raise ValidationError("must not be empty", field="job_id")
        if kind == "missing":
            raise NotFoundError("no tree q1 in job j")
        if kind == "down":
            raise UnavailableError("connection refused", endpoint="http://agent:8080")
        if kind == "bug":
            raise RuntimeError("secret internals")
        return orchestrator_pb2.GetTreeResponse(uri="mem://ok", tree_json=request.job_id)

    async def BuildTrees(self, request, context):  # noqa: N802
        yield orchestrator_pb2.BuildTreesResponse(started=orchestrator_pb2.JobStarted(job_id="j"))
        raise ValidationError("bad shard", field="shard")


def run(coro):
    return asyncio.run(coro)


async def _with_server(body, config: ServerConfig | None = None, **channel_kw):
    spec = ServiceSpec.of(
        RaisingServicer(), orchestrator_pb2, orchestrator_pb2_grpc, "DebateOrchestratorService"
    )
    server, port = await create_server("127.0.0.1:0", spec, config=config)
    try:
        target = channel_kw.pop("target", f"127.0.0.1:{port}")
        async with open_channel(target, **channel_kw) as channel:
            return await body(channel, server)
    finally:
        await server.stop(0)


def _stub(channel):
    return orchestrator_pb2_grpc.DebateOrchestratorServiceStub(channel)


def test_health_and_reflection() -> None:
    async def body(channel, server):
        health = health_pb2_grpc.HealthStub(channel)
        for name in ("", SERVICE):
            resp = await health.Check(health_pb2.HealthCheckRequest(service=name))
            assert resp.status == health_pb2.HealthCheckResponse.SERVING
        refl = reflection_pb2_grpc.ServerReflectionStub(channel)
        names = []
        async for resp in refl.ServerReflectionInfo(
            iter([reflection_pb2.ServerReflectionRequest(list_services="")])
        ):
            names += [s.name for s in resp.list_services_response.service]
        assert SERVICE in names and "grpc.health.v1.Health" in names
        await server.set_serving(False)  # what stop() reports first, before the grace period
        resp = await health.Check(health_pb2.HealthCheckRequest(service=SERVICE))
        assert resp.status == health_pb2.HealthCheckResponse.NOT_SERVING
        await server.stop(0)
        with pytest.raises(grpc.aio.AioRpcError) as info:  # after stop, the server is gone
            await health.Check(health_pb2.HealthCheckRequest(service=SERVICE), timeout=2)
        return info.value.code()

    assert run(_with_server(body)) in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED)


def test_error_mapping_with_details() -> None:
    async def body(channel, server):
        stub = _stub(channel)
        errors = {}
        for kind in ("invalid", "missing", "down", "bug"):
            with pytest.raises(grpc.aio.AioRpcError) as info:
                await stub.GetTree(orchestrator_pb2.GetTreeRequest(job_id="j", tree_id=kind))
            errors[kind] = info.value
        return errors

    errors = run(_with_server(body))
    invalid = errors["invalid"]
    assert invalid.code() == grpc.StatusCode.INVALID_ARGUMENT
    status = rpc_status.from_call(invalid)
    assert status is not None
    bad = error_details_pb2.BadRequest()
    assert status.details[0].Unpack(bad)
    assert [(v.field, v.description) for v in bad.field_violations] == [("job_id", "must not be empty")]
    assert errors["missing"].code() == grpc.StatusCode.NOT_FOUND
    assert "no tree q1" in errors["missing"].details()
    down = errors["down"]
    assert down.code() == grpc.StatusCode.UNAVAILABLE
    info = error_details_pb2.ErrorInfo()
    assert rpc_status.from_call(down).details[0].Unpack(info)
    assert info.metadata["endpoint"] == "http://agent:8080"
    bug = errors["bug"]
    assert bug.code() == grpc.StatusCode.INTERNAL
    assert "secret" not in bug.details() and "incident" in bug.details()


def test_streaming_error_after_first_event() -> None:
    async def body(channel, server):
        events = []
        with pytest.raises(grpc.aio.AioRpcError) as info:
            async for event in _stub(channel).BuildTrees(orchestrator_pb2.BuildTreesRequest()):
                events.append(event)
        return events, info.value

    events, error = run(_with_server(body))
    assert [e.WhichOneof("event") for e in events] == ["started"]
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "shard" in error.details()


def test_bearer_token_auth() -> None:
    config = ServerConfig(auth_tokens=["s3cret"])
    request = orchestrator_pb2.GetTreeRequest(job_id="payload")

    async def unauthenticated(channel, server):
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await _stub(channel).GetTree(request)
        with pytest.raises(grpc.aio.AioRpcError) as stream_info:
            async for _ in _stub(channel).BuildTrees(orchestrator_pb2.BuildTreesRequest()):
                pass
        health = await health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest())
        return info.value.code(), stream_info.value.code(), health.status

    assert run(_with_server(unauthenticated, config)) == (
        grpc.StatusCode.UNAUTHENTICATED,
        grpc.StatusCode.UNAUTHENTICATED,
        health_pb2.HealthCheckResponse.SERVING,
    )

    async def wrong(channel, server):
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await _stub(channel).GetTree(request)
        return info.value.code()

    assert run(_with_server(wrong, config, token="nope")) == grpc.StatusCode.UNAUTHENTICATED

    async def ok(channel, server):
        return (await _stub(channel).GetTree(request)).tree_json

    assert run(_with_server(ok, config, token="s3cret")) == "payload"


def test_message_size_limit() -> None:
    async def body(channel, server):
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await _stub(channel).GetTree(orchestrator_pb2.GetTreeRequest(job_id="x" * 4096))
        small = await _stub(channel).GetTree(orchestrator_pb2.GetTreeRequest(job_id="y"))
        return info.value.code(), small.tree_json

    assert run(_with_server(body, ServerConfig(max_message_bytes=1024))) == (
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        "y",
    )


def _self_signed(tmp: Path) -> tuple[Path, Path]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=1))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = tmp / "cert.pem", tmp / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return cert_file, key_file


def test_tls(tmp_path: Path) -> None:
    cert, key = _self_signed(tmp_path)
    config = ServerConfig(tls_cert_file=cert, tls_key_file=key, auth_tokens=["t"])

    async def body(channel, server):
        return (await _stub(channel).GetTree(orchestrator_pb2.GetTreeRequest(job_id="over tls"))).tree_json

    async def go():
        spec = ServiceSpec.of(
            RaisingServicer(), orchestrator_pb2, orchestrator_pb2_grpc, "DebateOrchestratorService"
        )
        server, port = await create_server("127.0.0.1:0", spec, config=config)
        try:
            async with open_channel(f"localhost:{port}", tls_ca_file=str(cert), token="t") as channel:
                secure = await body(channel, server)
            async with open_channel(f"localhost:{port}") as plain:  # plaintext client cannot talk TLS
                with pytest.raises(grpc.aio.AioRpcError) as info:
                    await _stub(plain).GetTree(orchestrator_pb2.GetTreeRequest(job_id="x"), timeout=5)
            return secure, info.value.code()
        finally:
            await server.stop(0)

    assert run(go()) == ("over tls", grpc.StatusCode.UNAVAILABLE)


def test_server_config_from_env_and_validation(tmp_path: Path) -> None:
    cfg = ServerConfig.from_env({"PBT_GRPC_AUTH_TOKENS": "a, b", "PBT_GRPC_GRACE_S": "2.5"})
    assert [t.get_secret_value() for t in cfg.auth_tokens] == ["a", "b"] and cfg.grace_s == 2.5
    with pytest.raises(ValueError, match="tls_cert_file and tls_key_file"):
        ServerConfig(tls_cert_file=tmp_path / "c.pem")
