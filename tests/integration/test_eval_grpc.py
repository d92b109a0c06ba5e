"""EvaluatorService over real gRPC on loopback: streaming progress, summary, errors, health."""

from __future__ import annotations

import asyncio
import json
import re

import grpc
import pytest
import yaml
from click.testing import CliRunner
from grpc_health.v1 import health_pb2, health_pb2_grpc

from pbt.backends.base import ChatBackend
from pbt.backends.scripted import ScriptedBackend
from pbt.cli.main import cli
from pbt.errors import UnavailableError
from pbt.evaluate.results import examples_key, read_jsonl
from pbt.rpc import eval_config_dict_from_proto, eval_config_to_proto, open_channel
from pbt.store import LocalStore
from pbt.v1 import common_pb2, evaluator_pb2, evaluator_pb2_grpc
from services.common.policy import RequestPolicy
from services.evaluator.server import start_evaluator
from services.evaluator.servicer import EvaluatorServicer

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def questions(data_dir, tmp_path_factory):
    rows = [json.loads(line) for line in (data_dir / "nq_open/NQ-open.dev.jsonl").open()][:10]
    path = tmp_path_factory.mktemp("q") / "q.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path, rows


def _factory(rows):
    strong = {r["question"]: (r["answer"][0] if i < 8 else "Atlantis") for i, r in enumerate(rows)}
    weak = {r["question"]: (r["answer"][0] if i < 4 else "Lemuria") for i, r in enumerate(rows)}

    def make(name, agent):
        if agent.endpoint.startswith("scripted:"):
            table = strong if agent.model == "strong" else weak
            return ScriptedBackend(table, persuasion="always", name=agent.endpoint)
        return Down(agent.endpoint)

    return make


class Down(ChatBackend):
    """What the HTTP backend does once its retries are spent on a closed port."""

    def __init__(self, endpoint: str):
        self.name = endpoint

    async def chat(self, messages, params):
        raise UnavailableError("connection refused (3 attempts)", endpoint=self.name)


def _policy(tmp_path) -> RequestPolicy:
    """The operator's options of these test servers: scripted agents, files under the test's
    temporary folders, and the closed port 9 as an agent URL."""
    return RequestPolicy(
        allow_local_backends=True, data_roots=[tmp_path.parent], agent_url_prefixes=["http://127.0.0.1:9/"]
    )


def _request(path, **overrides) -> evaluator_pb2.RunEvaluationRequest:
    models = [
        evaluator_pb2.EvaluatedModel(
            name=n,
            agent=common_pb2.AgentSpec(endpoint=f"scripted:{n}", model=n),
            lineage={"adapter": f"s3://x/{n}"},
        )
        for n in ("strong", "weak")
    ]
    config = evaluator_pb2.EvaluationConfig(
        eval_id=overrides.get("eval_id", "grpc-1"),
        models=models,
        seeds=[1, 2],
        suites=evaluator_pb2.EvaluationSuites(
            team_debate=evaluator_pb2.TeamDebateSuiteSpec(questions=str(path), partner="weak"),
            are_you_sure=evaluator_pb2.AreYouSureSuiteSpec(questions=str(path), limit=4),
        ),
        bootstrap_samples=100,
    )
    return evaluator_pb2.RunEvaluationRequest(config=config)


async def _with_server(tmp_path, rows, body):
    servicer = EvaluatorServicer(
        store=LocalStore(tmp_path), backend_factory=_factory(rows), policy=_policy(tmp_path)
    )
    server, port = await start_evaluator("127.0.0.1:0", servicer)
    try:
        async with open_channel(f"127.0.0.1:{port}") as channel:
            await body(evaluator_pb2_grpc.EvaluatorServiceStub(channel), channel)
    finally:
        await server.stop(0)


def test_run_streams_progress_and_ends_with_summary(tmp_path, questions):
    path, rows = questions

    async def body(stub, channel):
        events = [ev async for ev in stub.RunEvaluation(_request(path), timeout=60)]
        kinds = [ev.WhichOneof("event") for ev in events]
        assert kinds[0] == "started" and kinds[-1] == "summary" and "progress" in kinds
        assert list(events[0].started.suites) == ["are_you_sure", "team_debate"]
        last_progress = [ev.progress for ev in events if ev.WhichOneof("event") == "progress"][-1]
        assert (last_progress.suite, last_progress.done, last_progress.total) == ("team_debate", 40, 40)
        summary = events[-1].summary
        assert summary.state == evaluator_pb2.EVALUATION_STATE_SUCCEEDED
        assert summary.results_uri == f"file://{tmp_path}/results/grpc-1"
        got = {(m.suite, m.group, m.name): m for m in summary.metrics}
        # the hand-worked strong/weak pair of tests/unit/test_eval_suites.py
        assert got[("team_debate", "strong+weak", "order_dependence")].mean == pytest.approx(0.4)
        assert got[("team_debate", "strong+weak/b_first", "team_accuracy")].mean == pytest.approx(0.8)
        assert "## Team debate" in summary.report_markdown
        doc = json.loads(summary.summary_json)
        assert doc["lineage"]["models"]["strong"] == {"adapter": "s3://x/strong"}

        fetched = await stub.GetEvaluation(evaluator_pb2.GetEvaluationRequest(eval_id="grpc-1"), timeout=10)
        assert fetched.summary.state == evaluator_pb2.EVALUATION_STATE_SUCCEEDED
        assert len(fetched.summary.metrics) == len(summary.metrics)

        with pytest.raises(grpc.aio.AioRpcError) as err:
            await stub.GetEvaluation(evaluator_pb2.GetEvaluationRequest(eval_id="nope"), timeout=10)
        assert err.value.code() == grpc.StatusCode.NOT_FOUND

        health = health_pb2_grpc.HealthStub(channel)
        resp = await health.Check(health_pb2.HealthCheckRequest(service="pbt.v1.EvaluatorService"), timeout=5)
        assert resp.status == health_pb2.HealthCheckResponse.SERVING

    asyncio.run(_with_server(tmp_path, rows, body))


def test_errors_map_to_status_codes_and_keep_results(tmp_path, questions, data_dir):
    path, rows = questions
    bad_farm = tmp_path / "NQ9.jsonl"
    good_line = (data_dir / "farm/NQ1.jsonl").open().readline()
    bad_farm.write_text(good_line + '{"question": "x", "adv": \n')

    async def body(stub, channel):
        req = _request(path, eval_id="bad-farm")
        req.config.suites.misinformation.files.append(str(bad_farm))
        with pytest.raises(grpc.aio.AioRpcError) as err:
            _ = [ev async for ev in stub.RunEvaluation(req, timeout=30)]
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert f"{bad_farm}:2" in err.value.details()

        req = _request(path, eval_id="bad-field")
        req.config.models[0].name = "has space"
        with pytest.raises(grpc.aio.AioRpcError) as err:
            _ = [ev async for ev in stub.RunEvaluation(req, timeout=30)]
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "config.models[0].name" in err.value.details()

        # a third model whose endpoint is down: the first suite's examples of the others stay
        req = _request(path, eval_id="down")
        req.config.concurrency = 1  # examples run in order: strong's and weak's before down's
        req.config.models.append(
            evaluator_pb2.EvaluatedModel(
                name="down", agent=common_pb2.AgentSpec(endpoint="http://127.0.0.1:9/v1")
            )
        )
        with pytest.raises(grpc.aio.AioRpcError) as err:
            _ = [ev async for ev in stub.RunEvaluation(req, timeout=30)]
        assert err.value.code() == grpc.StatusCode.UNAVAILABLE
        assert "http://127.0.0.1:9/v1" in err.value.details()
        fetched = await stub.GetEvaluation(evaluator_pb2.GetEvaluationRequest(eval_id="down"), timeout=10)
        assert fetched.summary.state == evaluator_pb2.EVALUATION_STATE_FAILED
        assert "127.0.0.1:9" in fetched.summary.error
        kept = read_jsonl(LocalStore(tmp_path), examples_key("down", "are_you_sure"))
        assert {r["model"] for r in kept} == {"strong", "weak"} and len(kept) == 2 * 4 * 2

    asyncio.run(_with_server(tmp_path, rows, body))


def test_config_round_trips_through_proto(questions):
    path, _ = questions
    from pbt.evaluate import parse_config

    cfg = parse_config(eval_config_dict_from_proto(_request(path).config))
    assert [m.name for m in cfg.models] == ["strong", "weak"] and cfg.seeds == [1, 2]
    assert cfg.suites.team_debate.partner == "weak" and cfg.suites.misinformation is None
    again = parse_config(eval_config_dict_from_proto(eval_config_to_proto(cfg)))
    assert again.fingerprint() == cfg.fingerprint()


def test_deadline_cancels_the_run_and_keeps_finished_examples(tmp_path, questions):
    path, rows = questions
    slow = {r["question"]: r["answer"][0] for r in rows}

    def factory(name, agent):
        return ScriptedBackend(slow, delay=0.05)

    async def main():
        servicer = EvaluatorServicer(
            store=LocalStore(tmp_path), backend_factory=factory, policy=_policy(tmp_path)
        )
        server, port = await start_evaluator("127.0.0.1:0", servicer)
        try:
            async with open_channel(f"127.0.0.1:{port}") as channel:
                stub = evaluator_pb2_grpc.EvaluatorServiceStub(channel)
                req = _request(path, eval_id="slow")
                req.config.concurrency = 2
                req.config.checkpoint_every = 1
                with pytest.raises(grpc.aio.AioRpcError) as err:
                    _ = [ev async for ev in stub.RunEvaluation(req, timeout=1.0)]
                assert err.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
                await asyncio.sleep(0.3)
                got = await stub.GetEvaluation(evaluator_pb2.GetEvaluationRequest(eval_id="slow"), timeout=5)
                assert got.summary.state == evaluator_pb2.EVALUATION_STATE_FAILED
                assert "re-run to resume" in got.summary.error
        finally:
            await server.stop(0)

    asyncio.run(main())
    kept = read_jsonl(LocalStore(tmp_path), examples_key("slow", "are_you_sure"))
    assert 0 < len(kept) < 16


def test_auth_token_required_when_configured(tmp_path, questions):
    from services.common import ServerConfig

    async def main():
        servicer = EvaluatorServicer(store=LocalStore(tmp_path))
        server, port = await start_evaluator("127.0.0.1:0", servicer, ServerConfig(auth_tokens=["s3cret"]))
        try:
            req = evaluator_pb2.GetEvaluationRequest(eval_id="none")
            async with open_channel(f"127.0.0.1:{port}") as channel:
                with pytest.raises(grpc.aio.AioRpcError) as err:
                    await evaluator_pb2_grpc.EvaluatorServiceStub(channel).GetEvaluation(req, timeout=5)
                assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED
            async with open_channel(f"127.0.0.1:{port}", token="s3cret") as channel:
                with pytest.raises(grpc.aio.AioRpcError) as err:
                    await evaluator_pb2_grpc.EvaluatorServiceStub(channel).GetEvaluation(req, timeout=5)
                assert err.value.code() == grpc.StatusCode.NOT_FOUND
        finally:
            await server.stop(0)

    asyncio.run(main())


def test_pbt_serve_evaluator_process(tmp_path, questions):
    path, rows = questions
    import subprocess
    import sys

    from pbt.net import free_port, wait_for_port

    port = free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "pbt",
            "serve",
            "evaluator",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--store",
            str(tmp_path),
            "--allow-local-backends",
            "--data-root",
            str(tmp_path.parent),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        wait_for_port(port, timeout=60, proc=proc)
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            health = health_pb2_grpc.HealthStub(channel)
            resp = health.Check(health_pb2.HealthCheckRequest(service="pbt.v1.EvaluatorService"), timeout=10)
            assert resp.status == health_pb2.HealthCheckResponse.SERVING
            from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

            reflect = reflection_pb2_grpc.ServerReflectionStub(channel)
            (answer,) = reflect.ServerReflectionInfo(
                iter([reflection_pb2.ServerReflectionRequest(list_services="")])
            )
            names = {s.name for s in answer.list_services_response.service}
            assert "pbt.v1.EvaluatorService" in names and "grpc.health.v1.Health" in names
            stub = evaluator_pb2_grpc.EvaluatorServiceStub(channel)
            with pytest.raises(grpc.RpcError) as err:
                stub.GetEvaluation(evaluator_pb2.GetEvaluationRequest(eval_id="x"), timeout=10)
            assert err.value.code() == grpc.StatusCode.NOT_FOUND
        # the CLI as a client of that server (scripted endpoints via make_backend specs)
        (tmp_path / "answers.json").write_text(json.dumps({r["question"]: r["answer"][0] for r in rows[:2]}))
        config = {
            "eval_id": "via-cli",
            "seeds": [1],
            "models": [{"name": "m", "endpoint": f"scripted:{tmp_path / 'answers.json'}"}],
            "suites": {"are_you_sure": {"questions": str(path), "limit": 4}},
            "bootstrap_samples": 20,
        }
        (tmp_path / "eval.yaml").write_text(yaml.safe_dump(config))
        result = CliRunner().invoke(
            cli, ["eval", "run", "--config", str(tmp_path / "eval.yaml"), "--server", f"127.0.0.1:{port}"]
        )
        assert result.exit_code == 0, result.output
        assert re.search(r"│ m\s+│\s+50\.00 ± 0\.00", result.output)  # the rich table
        assert (tmp_path / "results/via-cli/are_you_sure/examples.jsonl").is_file()  # written by the server
        # the server's store is on this machine: the client writes the viewer site into it
        assert f"site: file://{tmp_path}/results/via-cli/site/index.html" in result.output
    finally:
        proc.terminate()
        assert proc.wait(timeout=20) == 0


def test_same_eval_id_twice_at_once_is_refused(tmp_path, questions):
    path, rows = questions

    def factory(name, agent):
        return ScriptedBackend({}, delay=0.05)

    async def main():
        servicer = EvaluatorServicer(
            store=LocalStore(tmp_path), backend_factory=factory, policy=_policy(tmp_path)
        )
        server, port = await start_evaluator("127.0.0.1:0", servicer)
        try:
            async with open_channel(f"127.0.0.1:{port}") as channel:
                stub = evaluator_pb2_grpc.EvaluatorServiceStub(channel)
                first = stub.RunEvaluation(_request(path, eval_id="twice"), timeout=30)
                assert (await first.read()).WhichOneof("event") == "started"
                with pytest.raises(grpc.aio.AioRpcError) as err:
                    _ = [ev async for ev in stub.RunEvaluation(_request(path, eval_id="twice"), timeout=10)]
                assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION
                assert "already running" in err.value.details()
                first.cancel()
        finally:
            await server.stop(0)

    asyncio.run(main())
