"""Bad input to every gRPC method of the orchestrator and the evaluator (issue #17).

A table of hostile or broken requests: malformed URLs, stores and ids, files that are not UTF-8,
folders where files belong, JSON nested 100k deep, YAML alias bombs, damaged objects in the
store, huge trees and debates, bytes that are no protobuf. For every case: never INTERNAL or
UNKNOWN, a status message of bounded size, no file content echoed, and afterwards the server
still reports SERVING and a good request succeeds. Runs in a few seconds.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_servers import both_servers, outcome

from pbt.store import LocalStore
from pbt.v1 import common_pb2, evaluator_pb2, orchestrator_pb2
from services.common.policy import RequestPolicy

pytestmark = pytest.mark.integration

O = orchestrator_pb2  # noqa: E741
E = evaluator_pb2
SECRET_LINE = "root:x:0:0:SECRET-FILE-CONTENT"
BAD_CODES = {grpc.StatusCode.INTERNAL, grpc.StatusCode.UNKNOWN, grpc.StatusCode.RESOURCE_EXHAUSTED}
LONG = "x" * 20_000
DEEP = "[" * 100_000 + "]" * 100_000
BOMB = 'a: &a ["x","x","x","x","x","x","x","x","x"]\n' + "".join(
    f"{c}: &{c} [*{p},*{p},*{p},*{p},*{p},*{p},*{p},*{p},*{p}]\n"
    for p, c in zip("abcdefgh", "bcdefghi", strict=True)
)


def _files(root: Path) -> dict[str, str]:
    """Broken inputs under the data root: binary, a folder, deep JSON, a YAML bomb, secrets."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "binary.jsonl").write_bytes(b"\xff\xfe\x00\x81" * 100)
    (root / "folder.jsonl").mkdir(exist_ok=True)
    (root / "deep.jsonl").write_text(DEEP + "\n")
    (root / "bomb.yaml").write_text(BOMB)
    (root / "secret.yaml").write_text(SECRET_LINE + "\n")
    (root / "secret.jsonl").write_text(SECRET_LINE + "\n")
    (root / "empty.jsonl").write_text("")
    (root / "blank.jsonl").write_text("\n\n  \n")
    return {p.stem: str(p) for p in root.iterdir()}


def _agent(endpoint: str = "scripted:", **kw: Any) -> common_pb2.AgentSpec:
    return common_pb2.AgentSpec(endpoint=endpoint, **kw)


def _run(**kw: Any) -> O.RunConfig:
    config = O.RunConfig(
        agents=O.Agents(a=_agent(), b=_agent()),
        extraction=O.ExtractionSpec(mode=O.EXTRACTION_MODE_RULES),
        dataset=O.DatasetSpec(
            format=O.DATASET_FORMAT_INLINE,
            questions=[O.QuestionItem(id="q1", question="What is 2+2?", answers=["4"])],
        ),
        tree=O.TreeShape(max_turns=2),
    )
    for path, value in kw.items():
        target = config
        *parents, leaf = path.split(".")
        for p in parents:
            target = getattr(target, p)
        if isinstance(value, list):
            del getattr(target, leaf)[:]
            getattr(target, leaf).extend(value)
        elif hasattr(value, "CopyFrom"):
            getattr(target, leaf).CopyFrom(value)
        else:
            setattr(target, leaf, value)
    return config


def _debate(n: int = 2, **kw: Any) -> O.RunDebateRequest:
    req = O.RunDebateRequest(
        question="What is 2+2?",
        agents=[O.DebateAgent(name=f"p{i}", agent=_agent()) for i in range(n)],
        extraction=O.ExtractionSpec(mode=O.EXTRACTION_MODE_RULES),
        max_turns=1,
    )
    for key, value in kw.items():
        if isinstance(value, list):
            del getattr(req, key)[:]
            getattr(req, key).extend(value)
        elif hasattr(value, "CopyFrom"):
            getattr(req, key).CopyFrom(value)
        else:
            setattr(req, key, value)
    return req


def _eval(suites: E.EvaluationSuites | None = None, **kw: Any) -> E.RunEvaluationRequest:
    config = E.EvaluationConfig(
        eval_id=kw.pop("eval_id", "fz"),
        models=kw.pop("models", [E.EvaluatedModel(name="m", agent=_agent())]),
        seeds=[1],
        suites=suites or E.EvaluationSuites(are_you_sure=E.AreYouSureSuiteSpec(questions="q.jsonl", limit=1)),
        bootstrap_samples=10,
        **kw,
    )
    return E.RunEvaluationRequest(config=config)


def _yaml(text: str) -> E.RunEvaluationRequest:
    return E.RunEvaluationRequest(config_yaml=text)


def _cases(f: dict[str, str]) -> list[tuple[str, str, str, Any]]:
    """(id, service, method, request)."""
    aus = E.AreYouSureSuiteSpec
    store = common_pb2.StoreSpec
    cases: list[tuple[str, str, str, Any]] = [
        # --- BuildTrees
        ("bt-no-config", "orch", "BuildTrees", O.BuildTreesRequest()),
        ("bt-store-abs", "orch", "BuildTrees", O.BuildTreesRequest(config=_run(**{"store.url": "/etc"}))),
        (
            "bt-store-dots",
            "orch",
            "BuildTrees",
            O.BuildTreesRequest(config=_run(**{"store.url": "a/../../x"})),
        ),
        ("bt-store-s3", "orch", "BuildTrees", O.BuildTreesRequest(config=_run(**{"store.url": "s3://"}))),
        ("bt-store-nul", "orch", "BuildTrees", O.BuildTreesRequest(config=_run(**{"store.url": "a\x00b"}))),
        ("bt-store-long", "orch", "BuildTrees", O.BuildTreesRequest(config=_run(**{"store.url": LONG}))),
    ]
    for name, url in [
        ("v6", "http://[::1"),
        ("crlf", "http://h/v1\r\nX: y"),
        ("bighost", "http://" + "h" * 1_000_000),
        ("port", "http://h:99999"),
        ("space", "http:// h"),
        ("unicode", "http://ħ.example/v1"),
        ("empty", " "),
        ("nohost", "http:///v1"),
    ]:
        cases.append(
            (
                f"bt-agent-{name}",
                "orch",
                "BuildTrees",
                O.BuildTreesRequest(config=_run(**{"agents.a.endpoint": url})),
            )
        )
        cases.append((f"rd-agent-{name}", "orch", "RunDebate", _debate(agents=[])))
        cases[-1][3].agents.extend(
            [O.DebateAgent(name="x", agent=_agent(url)), O.DebateAgent(name="y", agent=_agent())]
        )
    for name in ("binary", "folder", "deep", "secret", "empty", "blank"):
        cases.append(
            (
                f"bt-dataset-{name}",
                "orch",
                "BuildTrees",
                O.BuildTreesRequest(
                    config=_run(dataset=O.DatasetSpec(format=O.DATASET_FORMAT_JSONL, path=f[name]))
                ),
            )
        )
    for name in ("binary", "folder", "bomb", "secret", "deep"):
        cases.append(
            (
                "bt-personas-" + name,
                "orch",
                "BuildTrees",
                O.BuildTreesRequest(config=_run(**{"personas.file": f[name]})),
            )
        )
    cases += [
        (
            "bt-outside-root",
            "orch",
            "BuildTrees",
            O.BuildTreesRequest(config=_run(**{"personas.file": "/etc/passwd"})),
        ),
        (
            "bt-tree-huge",
            "orch",
            "BuildTrees",
            O.BuildTreesRequest(config=_run(tree=O.TreeShape(max_turns=8, branching=[1] + [16] * 7))),
        ),
        (
            "bt-tree-neg",
            "orch",
            "BuildTrees",
            O.BuildTreesRequest(config=_run(tree=O.TreeShape(max_turns=-5))),
        ),
        (
            "bt-replicas",
            "orch",
            "BuildTrees",
            O.BuildTreesRequest(config=_run(tree=O.TreeShape(max_turns=2, trees_per_question=2**31 - 1))),
        ),
        ("bt-job-id-long", "orch", "BuildTrees", O.BuildTreesRequest(config=_run(), job_id=LONG)),
        ("bt-job-id-path", "orch", "BuildTrees", O.BuildTreesRequest(config=_run(), job_id="../../etc")),
        ("bt-shard", "orch", "BuildTrees", O.BuildTreesRequest(config=_run(), shard="7/3")),
        ("bt-shard-long", "orch", "BuildTrees", O.BuildTreesRequest(config=_run(), shard=LONG)),
        ("bt-limit", "orch", "BuildTrees", O.BuildTreesRequest(config=_run(), limit=-1)),
        ("bt-inflight", "orch", "BuildTrees", O.BuildTreesRequest(config=_run(max_trees_in_flight=-1))),
        (
            "bt-sampling",
            "orch",
            "BuildTrees",
            O.BuildTreesRequest(
                config=_run(
                    sampling=common_pb2.SamplingParams(
                        temperature=float("nan"), top_k=2**31 - 1, max_tokens=-1
                    )
                )
            ),
        ),
        (
            "bt-api-key-env",
            "orch",
            "BuildTrees",
            O.BuildTreesRequest(config=_run(**{"agents.a.api_key_env": "HOME"})),
        ),
        (
            "bt-inline-empty",
            "orch",
            "BuildTrees",
            O.BuildTreesRequest(config=_run(dataset=O.DatasetSpec(format=O.DATASET_FORMAT_INLINE))),
        ),
        (
            "bt-inline-blank",
            "orch",
            "BuildTrees",
            O.BuildTreesRequest(
                config=_run(
                    dataset=O.DatasetSpec(
                        format=O.DATASET_FORMAT_INLINE, questions=[O.QuestionItem(id="x", question=" ")]
                    )
                )
            ),
        ),
        (
            "bt-format-unknown",
            "orch",
            "BuildTrees",
            O.BuildTreesRequest(config=_run(**{"dataset.format": 77})),
        ),
        (
            "bt-mode-unknown",
            "orch",
            "BuildTrees",
            O.BuildTreesRequest(config=_run(**{"extraction.mode": 42})),
        ),
        (
            "bt-persona-unknown",
            "orch",
            "BuildTrees",
            O.BuildTreesRequest(config=_run(personas=O.PersonaSpec(a=["nobody"]))),
        ),
        (
            "bt-persona-prompt",
            "orch",
            "BuildTrees",
            O.BuildTreesRequest(config=_run(personas=O.PersonaSpec(prompts={"x": "no placeholder"}))),
        ),
        # --- GetTree
        ("gt-missing", "orch", "GetTree", O.GetTreeRequest(job_id="fz", tree_id="nope")),
        ("gt-id-long", "orch", "GetTree", O.GetTreeRequest(job_id=LONG, tree_id="q")),
        ("gt-qid-path", "orch", "GetTree", O.GetTreeRequest(job_id="fz", tree_id="../../x")),
        ("gt-truncated", "orch", "GetTree", O.GetTreeRequest(job_id="broken", tree_id="truncated")),
        ("gt-deep", "orch", "GetTree", O.GetTreeRequest(job_id="broken", tree_id="deep")),
        ("gt-binary", "orch", "GetTree", O.GetTreeRequest(job_id="broken", tree_id="binary")),
        ("gt-list", "orch", "GetTree", O.GetTreeRequest(job_id="broken", tree_id="list")),
        ("gt-store", "orch", "GetTree", O.GetTreeRequest(job_id="fz", tree_id="q", store=store(url="/"))),
        # --- RunDebate
        ("rd-none", "orch", "RunDebate", O.RunDebateRequest()),
        ("rd-one", "orch", "RunDebate", _debate(1)),
        ("rd-hundred", "orch", "RunDebate", _debate(100)),
        ("rd-mode", "orch", "RunDebate", _debate(extraction=O.ExtractionSpec(mode=7))),
        ("rd-turns", "orch", "RunDebate", _debate(max_turns=2**31 - 1)),
        ("rd-turns-neg", "orch", "RunDebate", _debate(max_turns=-1)),
        ("rd-empty-question", "orch", "RunDebate", _debate(question="")),
        ("rd-dupe-names", "orch", "RunDebate", _debate(agents=[])),
        (
            "rd-sampling",
            "orch",
            "RunDebate",
            _debate(
                sampling=common_pb2.SamplingParams(top_k=2**31 - 1, temperature=1e308, max_tokens=2**31 - 1)
            ),
        ),
        (
            "rd-llm-no-extractor",
            "orch",
            "RunDebate",
            _debate(extraction=O.ExtractionSpec(mode=O.EXTRACTION_MODE_LLM)),
        ),
        (
            "rd-extract-tokens",
            "orch",
            "RunDebate",
            _debate(extraction=O.ExtractionSpec(mode=O.EXTRACTION_MODE_RULES, max_tokens=-3)),
        ),
        # --- ExtractPreferences
        ("ep-missing", "orch", "ExtractPreferences", O.ExtractPreferencesRequest(job_id="nope")),
        ("ep-no-id", "orch", "ExtractPreferences", O.ExtractPreferencesRequest()),
        ("ep-id-long", "orch", "ExtractPreferences", O.ExtractPreferencesRequest(job_id=LONG)),
        ("ep-corrupt", "orch", "ExtractPreferences", O.ExtractPreferencesRequest(job_id="broken")),
        ("ep-no-nodes", "orch", "ExtractPreferences", O.ExtractPreferencesRequest(job_id="nodeless")),
        (
            "ep-fractions",
            "orch",
            "ExtractPreferences",
            O.ExtractPreferencesRequest(job_id="good", split_fractions=[float("nan"), 2, -1]),
        ),
        (
            "ep-filter",
            "orch",
            "ExtractPreferences",
            O.ExtractPreferencesRequest(job_id="good", pair_filter=LONG),
        ),
        (
            "ep-balance",
            "orch",
            "ExtractPreferences",
            O.ExtractPreferencesRequest(job_id="good", pbt_balance="??"),
        ),
        (
            "ep-agents",
            "orch",
            "ExtractPreferences",
            O.ExtractPreferencesRequest(job_id="good", pair_agents="c"),
        ),
        (
            "ep-output",
            "orch",
            "ExtractPreferences",
            O.ExtractPreferencesRequest(job_id="good", output_id="../x"),
        ),
        (
            "ep-store",
            "orch",
            "ExtractPreferences",
            O.ExtractPreferencesRequest(
                job_id="good", store=store(url="s3://b", endpoint="http://127.0.0.1:9")
            ),
        ),
        # --- RunEvaluation
        ("re-no-source", "eval", "RunEvaluation", E.RunEvaluationRequest()),
        ("re-empty-config", "eval", "RunEvaluation", E.RunEvaluationRequest(config=E.EvaluationConfig())),
        ("re-no-models", "eval", "RunEvaluation", _eval(models=[])),
        ("re-eval-id-long", "eval", "RunEvaluation", _eval(eval_id=LONG)),
        (
            "re-model-url",
            "eval",
            "RunEvaluation",
            _eval(models=[E.EvaluatedModel(name="m", agent=_agent("http://[::1"))]),
        ),
        (
            "re-model-local",
            "eval",
            "RunEvaluation",
            _eval(models=[E.EvaluatedModel(name="m", agent=_agent("local:/"))]),
        ),
        (
            "re-misinfo-empty",
            "eval",
            "RunEvaluation",
            _eval(E.EvaluationSuites(misinformation=E.MisinformationSuiteSpec())),
        ),
        ("re-personas-outside", "eval", "RunEvaluation", _eval(personas="/etc/passwd")),
        ("re-store", "eval", "RunEvaluation", _eval(store=store(url="/tmp"))),
        ("re-seeds", "eval", "RunEvaluation", _eval(concurrency=-1)),
        ("re-yaml-bomb", "eval", "RunEvaluation", _yaml(BOMB)),
        ("re-yaml-deep", "eval", "RunEvaluation", _yaml(DEEP)),
        ("re-yaml-garbage", "eval", "RunEvaluation", _yaml("\x00\x01: [")),
        ("re-yaml-list", "eval", "RunEvaluation", _yaml("- 1\n- 2\n")),
        ("re-yaml-secret", "eval", "RunEvaluation", _yaml(SECRET_LINE)),
    ]
    for name in ("binary", "folder", "deep", "secret", "empty", "blank"):
        cases.append(
            (
                "re-questions-" + name,
                "eval",
                "RunEvaluation",
                _eval(E.EvaluationSuites(are_you_sure=aus(questions=f[name]))),
            )
        )
        cases.append(
            (
                "re-farm-" + name,
                "eval",
                "RunEvaluation",
                _eval(E.EvaluationSuites(misinformation=E.MisinformationSuiteSpec(files=[f[name]]))),
            )
        )
    for name in ("binary", "folder", "bomb", "secret", "deep"):
        cases.append(("re-personas-" + name, "eval", "RunEvaluation", _eval(personas=f[name])))
    cases += [
        (
            "re-store-key-binary",
            "eval",
            "RunEvaluation",
            _eval(E.EvaluationSuites(are_you_sure=aus(questions="broken/binary.jsonl"))),
        ),
        (
            "re-store-key-deep",
            "eval",
            "RunEvaluation",
            _eval(E.EvaluationSuites(are_you_sure=aus(questions="broken/deep.jsonl"))),
        ),
        # --- GetEvaluation
        ("ge-missing", "eval", "GetEvaluation", E.GetEvaluationRequest(eval_id="nope")),
        ("ge-empty", "eval", "GetEvaluation", E.GetEvaluationRequest()),
        ("ge-long", "eval", "GetEvaluation", E.GetEvaluationRequest(eval_id=LONG)),
        ("ge-path", "eval", "GetEvaluation", E.GetEvaluationRequest(eval_id="../x")),
        ("ge-corrupt", "eval", "GetEvaluation", E.GetEvaluationRequest(eval_id="corrupt")),
        (
            "ge-store",
            "eval",
            "GetEvaluation",
            E.GetEvaluationRequest(eval_id="x", store=store(url="s3://other")),
        ),
    ]
    # duplicate names in a debate
    for cid, _service, _method, request in cases:
        if cid == "rd-dupe-names":
            request.agents.extend(
                [O.DebateAgent(name="same", agent=_agent()), O.DebateAgent(name="same", agent=_agent())]
            )
    return cases


def _damage(store: LocalStore) -> None:
    """Objects a crash or another tool could have left in the store."""
    store.put_bytes("trees/broken/truncated.json", b'{"id": "truncated", "nodes": [{"id": 0, "te')
    store.put_text("trees/broken/deep.json", DEEP)
    store.put_bytes("trees/broken/binary.json", b"\xff\xfe\x00")
    store.put_text("trees/broken/list.json", "[1, 2]")
    store.put_text("trees/nodeless/q.json", json.dumps({"id": "q", "nodes": []}))
    store.put_text("results/corrupt/summary.json", '{"eval_id": "corrupt", "state": ')
    store.put_bytes("broken/binary.jsonl", b"\xff\xfe\x00\x81")
    store.put_text("broken/deep.jsonl", DEEP + "\n")
    store.put_text("q.jsonl", json.dumps({"question": "What is 2+2?", "answer": ["4"]}) + "\n")


def test_no_bad_request_is_internal_and_the_servers_stay_healthy(tmp_path: Path) -> None:
    files = _files(tmp_path / "data")
    store = LocalStore(tmp_path / "store")
    _damage(store)
    policy = RequestPolicy(allow_local_backends=True, data_roots=[tmp_path / "data"])

    async def go() -> list[tuple[str, grpc.StatusCode, str]]:
        results = []
        async with both_servers(store, policy) as servers:
            oc, ec, stubs = servers.orch_channel, servers.eval_channel, servers.stubs
            # a good tree job first, for the ExtractPreferences cases
            assert (
                await outcome(stubs["orch"].BuildTrees, O.BuildTreesRequest(config=_run(), job_id="good"))
            )[0] == grpc.StatusCode.OK
            for cid, service, method, request in _cases(files):
                code, details = await outcome(getattr(stubs[service], method), request)
                results.append((cid, code, details))
            # bytes that are no protobuf message, on every method
            for channel, service in (
                (oc, "pbt.v1.DebateOrchestratorService"),
                (ec, "pbt.v1.EvaluatorService"),
            ):
                names = (
                    ["BuildTrees", "GetTree", "RunDebate", "ExtractPreferences"]
                    if "Orchestrator" in service
                    else ["RunEvaluation", "GetEvaluation"]
                )
                for name in names:
                    streaming = name in ("BuildTrees", "RunEvaluation")
                    make = channel.unary_stream if streaming else channel.unary_unary
                    call = make(f"/{service}/{name}", request_serializer=None, response_deserializer=None)
                    for i, raw in enumerate((b"\xff\xff\xff\xff", b"\x0a\xff\xff\xff\xff\x0f", b"\x0a" * 3)):
                        results.append((f"raw-{name}-{i}", *await outcome(call, raw, timeout=30)))
            # still healthy, and good requests still work
            for channel in (oc, ec):
                health = await health_pb2_grpc.HealthStub(channel).Check(
                    health_pb2.HealthCheckRequest(), timeout=5
                )
                assert health.status == health_pb2.HealthCheckResponse.SERVING
            reply = await stubs["orch"].RunDebate(_debate(), timeout=30)
            assert len(reply.turns) >= 2
            events = [e async for e in stubs["eval"].RunEvaluation(_eval(eval_id="after"), timeout=60)]
            assert events[-1].summary.state == E.EVALUATION_STATE_SUCCEEDED
        return results

    results = asyncio.run(go())
    bad = [(cid, code.name, details[:300]) for cid, code, details in results if code in BAD_CODES]
    assert not bad, "\n".join(map(str, bad))
    ok = [cid for cid, code, _ in results if code == grpc.StatusCode.OK and not cid.startswith("raw-")]
    assert not ok, f"bad input accepted: {ok}"
    for cid, _code, details in results:
        assert len(details) <= 1100, (cid, len(details))
        assert "SECRET-FILE-CONTENT" not in details, (cid, details)
