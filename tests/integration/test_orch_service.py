"""The orchestrator over gRPC, in process on port 0, with scripted agents whose every answer is known.

Agents (ScriptedBackend rules, see pbt/backends/scripted.py): A holds the table answer and gives
in only to the gold answer ("correct"); B never gives in. Per question:
- paris:  A=Paris, B=Lyon  -> nobody agrees: full tree 1-2-6-12 (21 nodes)
- same:   A=Paris, B=Paris -> level 1 agrees: 1-2 (3 nodes)
- rome:   A=Milan, B=Rome (gold Rome) -> A gives in at level 2, those nodes agree: 1-2-6 (9 nodes)
"""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from pathlib import Path

import grpc
import pytest
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from pbt.backends.scripted import ScriptedBackend
from pbt.config import RunConfig
from pbt.personas import load_personas
from pbt.rpc import open_channel, run_config_to_proto
from pbt.store import LocalStore
from pbt.v1 import orchestrator_pb2 as pb
from pbt.v1 import orchestrator_pb2_grpc
from services.common.policy import RequestPolicy
from services.orchestrator.server import start_orchestrator

pytestmark = pytest.mark.integration

QUESTIONS = [
    {"id": "paris", "question": "What is the capital of France?", "answers": ["Paris"]},
    {"id": "same", "question": "Which city hosts the Louvre?", "answers": ["Paris"]},
    {"id": "rome", "question": "What is the capital of Italy?", "answers": ["Rome"]},
]
A_TABLE = {"capital of France": "Paris", "Louvre": "Paris", "capital of Italy": "Milan"}
B_TABLE = {"capital of France": "Lyon", "Louvre": "Paris", "capital of Italy": "Rome"}
GOLD = {"capital of France": "Paris", "Louvre": "Paris", "capital of Italy": "Rome"}


def make_agents(delay: float = 0.0, b_persuasion="never", a_persuasion="correct"):
    a = ScriptedBackend(A_TABLE, persuasion=a_persuasion, gold=GOLD, delay=delay, name="A")
    b = ScriptedBackend(B_TABLE, persuasion=b_persuasion, delay=delay, name="B")
    backends = {"a": a, "b": b, "extractor": ScriptedBackend(name="extractor", delay=delay)}
    return backends, lambda role, agent: backends[role]


def run_config(questions=QUESTIONS, **overrides) -> RunConfig:
    data = {
        "agents": {
            "a": {"endpoint": "scripted:a", "model": "A"},
            "b": {"endpoint": "scripted:b", "model": "B"},
            "extractor": {"endpoint": "scripted:x"},
        },
        "dataset": {"format": "inline", "name": "caps", "questions": questions},
    }
    for key, value in overrides.items():
        data[key] = value
    return RunConfig.from_dict(data)


class Harness:
    """An orchestrator on 127.0.0.1:0 with injected scripted backends and a local store; its
    operator allows scripted agents and files under tmp_path (the persona file test)."""

    def __init__(self, tmp_path: Path, delay: float = 0.0, b_persuasion="never", a_persuasion="correct"):
        self.store = LocalStore(tmp_path / "store")
        self.backends, self.factory = make_agents(delay, b_persuasion, a_persuasion)
        self.policy = RequestPolicy(allow_local_backends=True, data_roots=[tmp_path])

    async def __aenter__(self):
        self.server, port = await start_orchestrator(
            store=self.store, backend_factory=self.factory, progress_interval_s=0.05, policy=self.policy
        )
        self.channel = open_channel(f"127.0.0.1:{port}")
        self.stub = orchestrator_pb2_grpc.DebateOrchestratorServiceStub(self.channel)
        return self

    async def __aexit__(self, *exc):
        await self.channel.close()
        await self.server.stop(0)

    async def build(self, config: RunConfig, job_id: str = "", **kw):
        request = pb.BuildTreesRequest(config=run_config_to_proto(config), job_id=job_id, **kw)
        return [event async for event in self.stub.BuildTrees(request)]


def levels(tree: dict) -> list[int]:
    counts = Counter(n["depth"] for n in tree["nodes"])
    return [counts[d] for d in range(max(counts) + 1)]


def test_tree_shapes_answers_personas_and_messages(tmp_path: Path) -> None:
    async def go():
        async with Harness(tmp_path) as h:
            events = await h.build(run_config(), job_id="caps-1")
            trees = {}
            for qid in ("paris", "same", "rome"):
                resp = await h.stub.GetTree(pb.GetTreeRequest(job_id="caps-1", tree_id=qid))
                trees[qid] = json.loads(resp.tree_json)
                assert resp.node_count == len(trees[qid]["nodes"])
            return events, trees, h

    events, trees, h = asyncio.run(go())
    kinds = [e.WhichOneof("event") for e in events]
    assert kinds[0] == "started" and kinds[-1] == "summary"
    assert sorted(e.tree.tree_id for e in events if e.WhichOneof("event") == "tree") == [
        "paris",
        "rome",
        "same",
    ]
    summary = events[-1].summary
    assert summary.job_id == "caps-1" and summary.progress.trees_done == 3 and summary.progress.nodes == 33
    assert summary.output_uri.endswith("/trees/caps-1/")

    assert levels(trees["paris"]) == [1, 2, 6, 12]
    assert levels(trees["same"]) == [1, 2]
    assert levels(trees["rome"]) == [1, 2, 6]

    personas = load_personas()
    paris = {n["id"]: n for n in trees["paris"]["nodes"]}
    root = paris["0"]
    assert root["agent"] == 0 and root["answers"] == ["Paris", None]
    assert root["persona"] == personas.pick_level0("paris") and root["persona"] in ("resistant", "logical")
    for node in paris.values():
        depth, parent = node["depth"], paris.get(node["parent"] or "")
        assert node["agent"] == depth % 2
        if depth >= 1:
            expected = ["resistant", "acceptant"] if depth % 2 else ["logical", "emotional", "credibility"]
            siblings = [paris[c]["persona"] for c in parent["children"]]
            assert siblings == expected
            speaker, other = node["agent"], 1 - node["agent"]
            assert node["answers"][speaker] == ("Paris" if speaker == 0 else "Lyon")
            assert node["answers"][other] == parent["answers"][other]  # carried from the parent
    # the messages a level-3 speaker (B) saw: its persona prompt + A's opening merged, its own turn, A's reply
    leaf = next(n for n in paris.values() if n["depth"] == 3)
    path = [leaf]
    while path[-1]["parent"] is not None:
        path.append(paris[path[-1]["parent"]])
    a0, b1, a2, _ = reversed(path)
    prompt = personas.render(leaf["persona"], QUESTIONS[0]["question"])
    assert leaf["messages"] == [
        {"role": "user", "content": f"{prompt}\n\n{a0['text']}"},
        {"role": "assistant", "content": b1["text"]},
        {"role": "user", "content": a2["text"]},
    ]
    assert leaf["usage"]["completion_tokens"] > 0 and leaf["usage"]["prompt_tokens"] > 0
    # the Rome tree: A (wrong) gives in to B's gold answer at level 2, so the branch stops there
    rome = trees["rome"]["nodes"]
    assert all(n["answers"] == ["Rome", "Rome"] for n in rome if n["depth"] == 2)
    # every node's answer was extracted by the extractor agent (LLM mode): one extraction per node
    assert len(h.backends["extractor"].calls) == 33
    manifest = h.store.get_json("trees/caps-1/_manifests/shard-0-of-1.json")
    assert manifest["status"] == "complete" and manifest["counts"]["trees_done"] == 3


def test_siblings_sharing_a_persona_use_one_n_gt_1_request(tmp_path: Path) -> None:
    config = run_config(
        questions=QUESTIONS[:1], tree={"max_turns": 3, "branching": [1, 4, 3]}, extraction={"mode": "rules"}
    )

    async def go():
        async with Harness(tmp_path) as h:
            await h.build(config, job_id="wide")
            resp = await h.stub.GetTree(pb.GetTreeRequest(job_id="wide", tree_id="paris"))
            return json.loads(resp.tree_json), h

    tree, h = asyncio.run(go())
    assert levels(tree) == [1, 4, 12]
    b_requests = [params.n for _, params in h.backends["b"].calls]
    assert sorted(b_requests) == [2, 2]  # 4 children, 2 personas -> one n=2 request per persona
    level1 = [n["persona"] for n in tree["nodes"] if n["depth"] == 1]
    assert level1 == ["resistant", "acceptant", "resistant", "acceptant"]
    assert all(params.n == 1 for _, params in h.backends["a"].calls)
    assert h.backends["extractor"].calls == []  # rules mode needs no extractor


def test_rerun_skips_done_questions_and_extract_preferences(tmp_path: Path) -> None:
    # Both agents give in half the time (seeded hash of the conversation): in the Rome tree, B's
    # level-3 siblings under an A node that kept Milan differ (Rome: 1 correct vs Milan: 0), a
    # resist pair (B kept the correct answer under pressure).
    async def go():
        async with Harness(tmp_path, a_persuasion=0.5, b_persuasion=0.5) as h:
            first = await h.build(run_config(), job_id="again")
            calls = len(h.backends["a"].calls)
            second = await h.build(run_config(), job_id="again")
            assert len(h.backends["a"].calls) == calls  # nothing regenerated
            prefs = await h.stub.ExtractPreferences(pb.ExtractPreferencesRequest(job_id="again", seed=3))
            return first, second, prefs, h

    first, second, prefs, h = asyncio.run(go())
    assert second[0].started.trees_skipped == 3 and second[-1].summary.progress.trees_done == 3
    assert prefs.trees_read == 3
    written = {k for k in h.store.list("prefs/again/")}
    assert {f"prefs/again/{m}.jsonl" for m in ("labelled", "accept", "resist", "pbt")} <= written
    for mode, count in (
        ("accept", prefs.accept_pairs),
        ("resist", prefs.resist_pairs),
        ("pbt", prefs.pbt_pairs),
    ):
        lines = [json.loads(x) for x in h.store.get_text(f"prefs/again/{mode}.jsonl").splitlines() if x]
        assert len(lines) == count == prefs.counts[mode]
        assert all(r["code"] == mode for r in lines if mode != "pbt")
    labelled = [json.loads(x) for x in h.store.get_text("prefs/again/labelled.jsonl").splitlines() if x]
    assert len(labelled) == prefs.counts["labelled"] == prefs.accept_pairs + prefs.resist_pairs
    assert prefs.pairs > 0 and prefs.pairs == prefs.counts["pairs_found"]
    assert prefs.resist_pairs > 0
    summary = h.store.get_json("prefs/again/manifest.json")
    assert summary["inputs"][0]["trees"] == 3 and summary["counts"]["accept"] == prefs.accept_pairs
    assert json.loads(prefs.manifest_json)["job_id"] == "again"
    assert summary["filter"] == "none"


def test_extract_preferences_with_the_rule_filter(tmp_path: Path) -> None:
    async def go():
        async with Harness(tmp_path, a_persuasion=0.5, b_persuasion=0.5) as h:
            await h.build(run_config(), job_id="filtered")
            plain = await h.stub.ExtractPreferences(pb.ExtractPreferencesRequest(job_id="filtered", seed=3))
            ruled = await h.stub.ExtractPreferences(
                pb.ExtractPreferencesRequest(
                    job_id="filtered", output_id="filtered-rules", seed=3, pair_filter="rules"
                )
            )
            all_train = await h.stub.ExtractPreferences(
                pb.ExtractPreferencesRequest(
                    job_id="filtered",
                    output_id="all-train",
                    split_fractions=[1, 0, 0],
                    pbt_balance="position",
                )
            )
            only = {
                name: await h.stub.ExtractPreferences(
                    pb.ExtractPreferencesRequest(
                        job_id="filtered", output_id=f"only-{name}", seed=3, pair_agents=name
                    )
                )
                for name in ("a", "b")
            }
            errors = []
            for bad in (
                pb.ExtractPreferencesRequest(job_id="filtered", output_id="bad", pair_filter="llm"),
                pb.ExtractPreferencesRequest(
                    job_id="filtered", output_id="bad", split_fractions=[0.5, 0.6, 0]
                ),
                pb.ExtractPreferencesRequest(job_id="filtered", output_id="bad", pbt_balance="by-level"),
                pb.ExtractPreferencesRequest(job_id="filtered", output_id="bad", pair_agents="c"),
            ):
                with pytest.raises(grpc.aio.AioRpcError) as info:
                    await h.stub.ExtractPreferences(bad)
                errors.append(info.value)
            return plain, ruled, all_train, only, errors, h

    plain, ruled, all_train, only, (error, bad_split, bad_balance, bad_agents), h = asyncio.run(go())
    assert all_train.counts["resist.train"] == all_train.resist_pairs == plain.resist_pairs > 0
    assert all_train.counts["resist.test"] == all_train.counts["resist.dev"] == 0
    assert h.store.get_json("prefs/all-train/manifest.json")["split_fractions"] == [1.0, 0.0, 0.0]
    assert bad_split.code() == grpc.StatusCode.INVALID_ARGUMENT and _violation(bad_split) == "split_fractions"
    assert bad_balance.code() == grpc.StatusCode.INVALID_ARGUMENT and _violation(bad_balance) == "pbt_balance"
    assert bad_agents.code() == grpc.StatusCode.INVALID_ARGUMENT and _violation(bad_agents) == "pair_agents"
    assert h.store.get_json("prefs/all-train/pbt.manifest.json")["settings"]["pbt_balance"] == "position"
    assert h.store.get_json("prefs/all-train/pbt.manifest.json")["settings"]["pair_agents"] == "both"
    # pair_agents narrows every file to one agent's replies; `pairs` still counts what was mined
    assert only["a"].pairs == only["b"].pairs == plain.pairs > 0
    assert only["a"].resist_pairs + only["b"].resist_pairs == plain.resist_pairs > 0  # a partition
    for name, agent in (("a", 0), ("b", 1)):
        rows = [json.loads(x) for x in h.store.get_text(f"prefs/only-{name}/resist.jsonl").splitlines() if x]
        assert len(rows) == only[name].resist_pairs and all(r["agent"] == agent for r in rows)
    assert h.store.get_json("prefs/filtered-rules/pbt.manifest.json")["settings"]["pbt_balance"] == "overall"
    pbt_codes = Counter(
        json.loads(x)["code"] for x in h.store.get_text("prefs/all-train/pbt.jsonl").splitlines() if x
    )
    assert pbt_codes["accept"] == pbt_codes["resist"] == min(all_train.accept_pairs, all_train.resist_pairs)
    manifest = json.loads(ruled.manifest_json)
    assert manifest["filter"] == "rules" and manifest["output_id"] == "filtered-rules"
    assert h.store.get_json("prefs/filtered-rules/pbt.manifest.json")["filter"] == "rules"
    # the filter only removes pairs, and keeps only those whose stance matches the label
    assert ruled.pairs <= plain.pairs and 0 < ruled.resist_pairs <= plain.resist_pairs
    from pbt.extract.rules import stance

    for line in h.store.get_text("prefs/filtered-rules/resist.jsonl").splitlines():
        row = json.loads(line)
        assert stance(row["chosen"][-1]["content"]) != "Agree"
        assert stance(row["rejected"][-1]["content"]) == "Agree"
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT and _violation(error) == "pair_filter"
    assert not any(h.store.list("prefs/bad/")), "a rejected request must not write anything"


def test_extract_preferences_with_an_allow_listed_judge(tmp_path: Path) -> None:
    """pair_filter "judge" needs `judge`, an agent the operator allowed (policy.py); the judge's
    backend comes from the server's factory. A judge that never says yes drops every labelled pair
    of every split; dev and test are filtered by default (here by the judge, the train filter)."""
    from pbt.backends.base import ChatBackend as _Base
    from pbt.backends.base import ChatResult, Choice, Usage
    from pbt.v1 import common_pb2

    class NoJudge(_Base):
        def __init__(self):
            self.prompts = 0

        async def chat(self, messages, params):
            self.prompts += 1
            return ChatResult(choices=[Choice(index=0, text="no")], usage=Usage(), model="judge")

        async def candidate_logprobs(self, messages, candidates):
            raise NotImplementedError

    async def go():
        h = Harness(tmp_path, a_persuasion=0.5, b_persuasion=0.5)
        h.backends["judge"] = NoJudge()
        h.policy = RequestPolicy(
            allow_local_backends=True, data_roots=[tmp_path], agents={"llama-judge": "http://127.0.0.1:9/v1"}
        )
        async with h:
            await h.build(run_config(), job_id="judged")
            plain = await h.stub.ExtractPreferences(pb.ExtractPreferencesRequest(job_id="judged", seed=3))
            judged = await h.stub.ExtractPreferences(
                pb.ExtractPreferencesRequest(
                    job_id="judged",
                    output_id="judged-llm",
                    seed=3,
                    pair_filter="judge",
                    judge=common_pb2.AgentSpec(endpoint="llama-judge", model="llama-3-8b"),
                )
            )
            errors = []
            for bad in (
                pb.ExtractPreferencesRequest(job_id="judged", output_id="bad", pair_filter="judge"),
                pb.ExtractPreferencesRequest(
                    job_id="judged",
                    output_id="bad",
                    pair_filter="judge",
                    judge=common_pb2.AgentSpec(endpoint="http://203.0.113.9:8000/v1"),
                ),
                pb.ExtractPreferencesRequest(job_id="judged", output_id="bad", eval_pair_filter="llm"),
            ):
                with pytest.raises(grpc.aio.AioRpcError) as info:
                    await h.stub.ExtractPreferences(bad)
                errors.append(info.value)
            return plain, judged, errors, h

    plain, judged, (no_judge, not_allowed, bad_eval), h = asyncio.run(go())
    assert plain.resist_pairs > 0 and judged.resist_pairs == judged.accept_pairs == 0
    assert h.backends["judge"].prompts > 0
    summary = h.store.get_json("prefs/judged-llm/manifest.json")
    assert summary["filter"] == summary["eval_filter"] == "judge"
    settings = h.store.get_json("prefs/judged-llm/resist.manifest.json")["settings"]
    assert settings["judge"] == {"endpoint": "llama-judge", "model": "llama-3-8b"}
    assert h.store.get_json("prefs/judged/manifest.json")["eval_filter"] == "rules"  # the default
    assert no_judge.code() == grpc.StatusCode.INVALID_ARGUMENT and _violation(no_judge) == "judge"
    assert not_allowed.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert _violation(not_allowed) == "judge.endpoint"
    assert bad_eval.code() == grpc.StatusCode.INVALID_ARGUMENT and _violation(bad_eval) == "eval_pair_filter"
    assert not any(h.store.list("prefs/bad/")), "a rejected request must not write anything"


def _violation(error: grpc.aio.AioRpcError) -> str:
    status = rpc_status.from_call(error)
    bad = error_details_pb2.BadRequest()
    assert status is not None and status.details[0].Unpack(bad)
    return bad.field_violations[0].field


@pytest.mark.parametrize(
    ("mutate", "field"),
    [
        (lambda r: r.config.ClearField("dataset"), "config.dataset"),
        (lambda r: setattr(r, "shard", "3/2"), "shard"),
        (lambda r: setattr(r, "shard", "first half"), "shard"),
        (lambda r: setattr(r.config.tree, "max_turns", 0), "config.tree.max_turns"),
        (lambda r: setattr(r.config.tree, "max_turns", 9), "config.tree.max_turns"),
        (lambda r: r.config.personas.a.append("sarcastic"), "config.personas.a[0]"),
        (lambda r: setattr(r.config.agents.a, "endpoint", ""), "config.agents.a.endpoint"),
        (lambda r: setattr(r, "job_id", "../escape"), "job_id"),
        (lambda r: r.ClearField("config"), "config"),
    ],
)
def test_invalid_requests_name_the_field(tmp_path: Path, mutate, field: str) -> None:
    request = pb.BuildTreesRequest(config=run_config_to_proto(run_config()), job_id="bad")
    mutate(request)

    async def go():
        async with Harness(tmp_path) as h:
            with pytest.raises(grpc.aio.AioRpcError) as info:
                async for _ in h.stub.BuildTrees(request):
                    pass
            return info.value, h

    error, h = asyncio.run(go())
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT, error.details()
    assert _violation(error) == field
    assert field.split(".")[-1].split("[")[0] in error.details()
    assert not any(h.store.list("trees/")), "an invalid request must not write anything"


def test_get_tree_not_found_and_job_id_conflict(tmp_path: Path) -> None:
    async def go():
        async with Harness(tmp_path) as h:
            with pytest.raises(grpc.aio.AioRpcError) as missing:
                await h.stub.GetTree(pb.GetTreeRequest(job_id="nope", tree_id="paris"))
            await h.build(run_config(questions=QUESTIONS[:1]), job_id="j")
            other = run_config(questions=QUESTIONS[:1], sampling={"temperature": 0.2})
            with pytest.raises(grpc.aio.AioRpcError) as conflict:
                await h.build(other, job_id="j")
            with pytest.raises(grpc.aio.AioRpcError) as no_trees:
                await h.stub.ExtractPreferences(pb.ExtractPreferencesRequest(job_id="nope"))
            return missing.value, conflict.value, no_trees.value

    missing, conflict, no_trees = asyncio.run(go())
    assert missing.code() == grpc.StatusCode.NOT_FOUND
    assert (
        conflict.code() == grpc.StatusCode.FAILED_PRECONDITION
        and "another configuration" in conflict.details()
    )
    assert no_trees.code() == grpc.StatusCode.NOT_FOUND


def test_deadline_cancels_the_job_and_leaves_only_whole_trees(tmp_path: Path) -> None:
    questions = [
        {"id": f"q{i}", "question": f"What is the capital of France? ({i})", "answers": ["Paris"]}
        for i in range(8)
    ]
    config = run_config(questions=questions, max_trees_in_flight=2)

    async def go():
        async with Harness(tmp_path, delay=0.02) as h:
            request = pb.BuildTreesRequest(config=run_config_to_proto(config), job_id="late")
            with pytest.raises(grpc.aio.AioRpcError) as info:
                async for _ in h.stub.BuildTrees(request, timeout=0.6):
                    pass
            await asyncio.sleep(0.2)
            calls = len(h.backends["a"].calls) + len(h.backends["b"].calls)
            await asyncio.sleep(0.4)
            after = len(h.backends["a"].calls) + len(h.backends["b"].calls)
            return info.value, calls, after, h

    error, calls, after, h = asyncio.run(go())
    assert error.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    assert after == calls, "the cancelled call kept generating"
    keys = [k for k in h.store.list("trees/late/") if "/_manifests/" not in k]
    assert len(keys) < 8
    for key in keys:  # every tree written is whole
        assert len(h.store.get_json(key)["nodes"]) == 21


def test_run_debate_over_grpc_with_scripted_specs(tmp_path: Path) -> None:
    strong = tmp_path / "strong.json"
    weak = tmp_path / "weak.json"
    strong.write_text(json.dumps({"capital of France": "Paris"}))
    weak.write_text(json.dumps({"capital of France": "Lyon"}))
    request = pb.RunDebateRequest(
        question="What is the capital of France?",
        gold_answers=["Paris"],
        agents=[
            pb.DebateAgent(name="weak", agent={"endpoint": f"scripted:{weak}?persuasion=always"}),
            pb.DebateAgent(name="strong", agent={"endpoint": f"scripted:{strong}"}),
        ],
        extraction=pb.ExtractionSpec(mode=pb.EXTRACTION_MODE_RULES),
    )

    async def go():
        server, port = await start_orchestrator(  # the real backend factory
            store=LocalStore(tmp_path / "s"),
            policy=RequestPolicy(allow_local_backends=True, data_roots=[tmp_path]),
        )
        try:
            async with open_channel(f"127.0.0.1:{port}") as channel:
                stub = orchestrator_pb2_grpc.DebateOrchestratorServiceStub(channel)
                ok = await stub.RunDebate(request)
                bad = pb.RunDebateRequest(question="q", agents=[request.agents[0]])
                with pytest.raises(grpc.aio.AioRpcError) as info:
                    await stub.RunDebate(bad)
                return ok, info.value
        finally:
            await server.stop(0)

    resp, error = asyncio.run(go())
    assert [(t.round, t.agent, t.answer) for t in resp.turns] == [
        (0, "weak", "Lyon"),
        (0, "strong", "Paris"),
        (1, "weak", "Paris"),
    ]
    assert resp.agreed
    assert {f.agent: (f.answer, f.correct) for f in resp.final_answers} == {
        "weak": ("Paris", True),
        "strong": ("Paris", True),
    }
    assert [m.role for m in resp.turns[2].messages] == ["user", "assistant", "user"]
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT and _violation(error) == "agents"


def test_run_debate_total_turns_is_the_reference_reading(tmp_path: Path) -> None:
    """Two agents that never give in use the whole budget: total_turns 4 = the two independent
    answers + two discussion turns (the reference's team protocol); max_turns 4 = 4 + 2 = 6 turns."""
    strong = tmp_path / "strong.json"
    weak = tmp_path / "weak.json"
    strong.write_text(json.dumps({"capital of France": "Paris"}))
    weak.write_text(json.dumps({"capital of France": "Lyon"}))
    agents = [
        pb.DebateAgent(name="strong", agent={"endpoint": f"scripted:{strong}"}),
        pb.DebateAgent(name="weak", agent={"endpoint": f"scripted:{weak}"}),
    ]
    rules = pb.ExtractionSpec(mode=pb.EXTRACTION_MODE_RULES)
    q = "What is the capital of France?"

    async def go():
        server, port = await start_orchestrator(
            store=LocalStore(tmp_path / "s"),
            policy=RequestPolicy(allow_local_backends=True, data_roots=[tmp_path]),
        )
        try:
            async with open_channel(f"127.0.0.1:{port}") as channel:
                stub = orchestrator_pb2_grpc.DebateOrchestratorServiceStub(channel)
                total = await stub.RunDebate(
                    pb.RunDebateRequest(question=q, agents=agents, extraction=rules, total_turns=4)
                )
                legacy = await stub.RunDebate(
                    pb.RunDebateRequest(question=q, agents=agents, extraction=rules, max_turns=4)
                )
                errors = []
                for bad in (
                    pb.RunDebateRequest(question=q, agents=agents, extraction=rules, total_turns=2),
                    pb.RunDebateRequest(
                        question=q, agents=agents, extraction=rules, total_turns=4, max_turns=2
                    ),
                ):
                    with pytest.raises(grpc.aio.AioRpcError) as info:
                        await stub.RunDebate(bad)
                    errors.append(info.value)
                return total, legacy, errors
        finally:
            await server.stop(0)

    total, legacy, errors = asyncio.run(go())
    assert [(t.round, t.agent) for t in total.turns] == [
        (0, "strong"),
        (0, "weak"),
        (1, "strong"),
        (2, "weak"),
    ]
    assert not total.agreed and len(legacy.turns) == 6
    assert all(
        e.code() == grpc.StatusCode.INVALID_ARGUMENT and _violation(e) == "total_turns" for e in errors
    )


def test_32_concurrent_build_trees_calls(tmp_path: Path) -> None:
    config = run_config(questions=QUESTIONS[:2], extraction={"mode": "rules"})

    async def go():
        async with Harness(tmp_path, delay=0.001) as h:
            results = await asyncio.gather(*(h.build(config, job_id=f"load-{i}") for i in range(32)))
            return results, h

    results, h = asyncio.run(go())
    assert len(results) == 32
    for i, events in enumerate(results):
        summary = events[-1].summary
        assert summary.job_id == f"load-{i}" and summary.progress.trees_done == 2
    assert len([k for k in h.store.list("trees/") if "/_manifests/" not in k]) == 64


class _PartlyUnreachable(ScriptedBackend):
    """Scripted answers, except that questions mentioning 'unreachable' go to a real HTTP backend
    whose port nobody listens on (the real retry path ends in UnavailableError)."""

    def __init__(self, table, port: int):
        super().__init__(table, name="B")
        from pbt.backends.http import HttpBackend

        self.http = HttpBackend(
            f"http://127.0.0.1:{port}", "m", max_attempts=2, backoff_initial=0.01, backoff_max=0.05
        )

    async def chat(self, messages, params):
        if "unreachable" in messages[0]["content"]:
            return await self.http.chat(messages, params)
        return await super().chat(messages, params)


def test_unreachable_agent_ends_unavailable_and_keeps_finished_trees(tmp_path: Path) -> None:
    from pbt.net import free_port

    questions = [
        *QUESTIONS[:2],
        {"id": "down", "question": "unreachable capital of France?", "answers": ["Paris"]},
    ]
    config = run_config(questions=questions, max_trees_in_flight=1, extraction={"mode": "rules"})

    async def go():
        async with Harness(tmp_path) as h:
            h.backends["b"] = _PartlyUnreachable(B_TABLE, free_port())
            events = []
            with pytest.raises(grpc.aio.AioRpcError) as info:
                async for event in h.stub.BuildTrees(
                    pb.BuildTreesRequest(config=run_config_to_proto(config), job_id="flaky")
                ):
                    events.append(event)
            await h.backends["b"].http.aclose()
            return events, info.value, h

    events, error, h = asyncio.run(go())
    assert error.code() == grpc.StatusCode.UNAVAILABLE
    assert "127.0.0.1" in error.details()
    built = sorted(e.tree.tree_id for e in events if e.WhichOneof("event") == "tree")
    assert built == ["paris", "same"]
    assert sorted(k for k in h.store.list("trees/flaky/") if "/_manifests/" not in k) == [
        "trees/flaky/paris.json",
        "trees/flaky/same.json",
    ]
    manifest = h.store.get_json("trees/flaky/_manifests/shard-0-of-1.json")
    assert manifest["status"] == "failed" and "UnavailableError" in manifest["error"]


def test_server_policy_limits_endpoints_and_paths(tmp_path: Path) -> None:
    """Without --allow-local-backends only allow-listed http(s) agents are accepted; with
    --data-root, files outside the roots are refused before anything reads them; a request's
    store may only be a prefix inside the server's store."""
    roots = RequestPolicy(data_roots=[tmp_path / "data"], agent_url_prefixes=["http://127.0.0.1:9/"])
    debate = pb.RunDebateRequest(
        question="q?",
        agents=[pb.DebateAgent(name=n, agent={"endpoint": "scripted:/etc/hostname"}) for n in ("x", "y")],
        extraction=pb.ExtractionSpec(mode=pb.EXTRACTION_MODE_RULES),
    )
    http = {"endpoint": "http://127.0.0.1:9/v1"}
    build = pb.BuildTreesRequest(
        config=run_config_to_proto(
            run_config(questions=QUESTIONS[:1], agents={"a": http, "b": http}, extraction={"mode": "rules"})
        )
    )
    outside_data = pb.BuildTreesRequest()
    outside_data.CopyFrom(build)
    outside_data.config.dataset.Clear()
    outside_data.config.dataset.format = pb.DATASET_FORMAT_NQ_OPEN
    outside_data.config.dataset.path = "/etc/passwd"
    local_agent = pb.BuildTreesRequest()
    local_agent.CopyFrom(build)
    local_agent.config.agents.a.endpoint = "local:/models/secret"
    outside_store = pb.BuildTreesRequest()
    outside_store.CopyFrom(build)
    outside_store.config.store.url = str(tmp_path / "elsewhere")

    async def go():
        server, port = await start_orchestrator(store=LocalStore(tmp_path / "data" / "store"), policy=roots)
        errors = []
        try:
            async with open_channel(f"127.0.0.1:{port}") as channel:
                stub = orchestrator_pb2_grpc.DebateOrchestratorServiceStub(channel)
                with pytest.raises(grpc.aio.AioRpcError) as info:
                    await stub.RunDebate(debate)
                errors.append(info.value)
                for request in (outside_data, outside_store, local_agent):
                    with pytest.raises(grpc.aio.AioRpcError) as info:
                        async for _ in stub.BuildTrees(request):
                            pass
                    errors.append(info.value)
        finally:
            await server.stop(0)
        return errors

    errors = asyncio.run(go())
    assert [e.code() for e in errors] == [grpc.StatusCode.INVALID_ARGUMENT] * 4
    assert [_violation(e) for e in errors] == [
        "agents[0].agent.endpoint",
        "config.dataset.path",
        "config.store.url",
        "config.agents.a.endpoint",
    ]
    assert not list((tmp_path / "data" / "store").rglob("*.json")), "a refused request wrote something"
    assert "--allow-local-backends" in errors[0].details() and "data roots" in errors[1].details()
    assert "prefix inside" in errors[2].details()
    assert "root:" not in errors[1].details()  # nothing of the file leaks


def test_extract_preferences_uses_the_tree_jobs_persona_set(tmp_path: Path) -> None:
    # trees built with a custom persona file: the pairs' prompts must start with that set's standard
    # instruction, not the bundled one (the world agents, for one, know only the world's words)
    import yaml

    from pbt.personas import default_personas_path

    custom = yaml.safe_load(default_personas_path().read_text())
    custom["name"] = "custom"
    custom["standard"] = "Answer briefly. Question: {question}"
    personas_file = tmp_path / "personas.yaml"
    personas_file.write_text(yaml.safe_dump(custom))

    async def go():
        async with Harness(tmp_path, a_persuasion=0.5, b_persuasion=0.5) as h:
            await h.build(run_config(personas={"file": str(personas_file)}), job_id="world-personas")
            reply = await h.stub.ExtractPreferences(
                pb.ExtractPreferencesRequest(job_id="world-personas", seed=3)
            )
            personas_file.unlink()  # the job's persona set is gone: a clear error, nothing written
            with pytest.raises(grpc.aio.AioRpcError) as info:
                await h.stub.ExtractPreferences(
                    pb.ExtractPreferencesRequest(job_id="world-personas", output_id="gone", seed=3)
                )
            return reply, info.value, h

    reply, error, h = asyncio.run(go())
    rows = [
        json.loads(x)
        for mode in ("accept", "resist")
        for x in h.store.get_text(f"prefs/world-personas/{mode}.jsonl").splitlines()
        if x
    ]
    assert rows and reply.accept_pairs + reply.resist_pairs == len(rows)
    for row in rows:
        assert row["prompt"][0]["content"].startswith(f"Answer briefly. Question: {row['question']}")
    manifest = h.store.get_json("prefs/world-personas/resist.manifest.json")
    assert manifest["settings"]["personas"]["name"] == "custom"
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT and "persona set" in error.details()
    assert not any(h.store.list("prefs/gone/"))


def test_trees_per_question_builds_replicas_that_resume_and_split_together(tmp_path: Path) -> None:
    config = run_config(
        tree={"max_turns": 4, "trees_per_question": 3}, sampling={"temperature": 0.7, "seed": 5}
    )

    async def go():
        async with Harness(tmp_path, a_persuasion=0.5, b_persuasion=0.5) as h:
            first = await h.build(config, job_id="replicas", limit=2)
            again = await h.build(config, job_id="replicas")  # the third question's 3 trees only
            prefs = await h.stub.ExtractPreferences(
                pb.ExtractPreferencesRequest(job_id="replicas", split_fractions=[0.34, 0.33, 0.33])
            )
            return first, again, prefs, h

    first, again, prefs, h = asyncio.run(go())
    assert first[0].started.trees_total == 6
    assert {e.tree.tree_id for e in first if e.HasField("tree")} == {
        "paris", "paris-r1", "paris-r2", "same", "same-r1", "same-r2",
    }  # fmt: skip
    assert again[0].started.trees_total == 9 and again[0].started.trees_skipped == 6
    trees = {
        k.rsplit("/", 1)[-1][:-5]: h.store.get_json(k)
        for k in h.store.list("trees/replicas/")
        if "_manifests" not in k
    }
    assert len(trees) == 9 and {t["question"]["id"] for t in trees.values()} == {"paris", "same", "rome"}
    assert all(t["id"] == tid for tid, t in trees.items())
    # replicas are sampled with their own seeds: not all copies of a question are the same tree
    texts = {tid: [n["text"] for n in t["nodes"]] for tid, t in trees.items()}
    assert any(texts[q] != texts[f"{q}-r{j}"] for q in ("paris", "same", "rome") for j in (1, 2))
    manifest = h.store.get_json("trees/replicas/_manifests/shard-0-of-1.json")
    assert manifest["counts"]["trees_total"] == 9 and manifest["dataset"]["questions_in_shard"] == 3
    # every pair of a question's replicas is in that question's split
    rows = [json.loads(x) for x in h.store.get_text("prefs/replicas/resist.jsonl").splitlines() if x]
    assert prefs.trees_read == 9 and rows
    split_of_question: dict[str, set[str]] = {}
    for row in rows:
        split_of_question.setdefault(trees[row["tree_id"]]["question"]["id"], set()).add(row["split"])
    assert all(len(splits) == 1 for splits in split_of_question.values())
