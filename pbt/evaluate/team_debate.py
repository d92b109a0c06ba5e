"""Suite 4: team debate in both speaking orders (PBT-METHOD §6d).

For each team (a, b), order (``a_first`` / ``b_first``), seed and question, one debate of
`pbt.debate.run_debate` (the orchestrator's team-debate logic, shared with ``RunDebate``): both
agents answer independently with the standard instruction; if they disagree, discussion turns
alternate starting with the first speaker (each sees its own turns as ``assistant`` and the
other's as ``user``); ``Agree`` takes the answer replied to, ``Disagree``/``NONE`` keep the
speaker's previous answer; the debate stops when both answers are equal after normalization.

Turn count: as the reference (``--max_turns 4 --both_do_first``), ``total_turns`` (default 4)
counts every turn, the two independent answers included, so 4 turns = 2 answers + 2 discussion
turns (first speaker, then the other). ``discussion_turns`` (or its old name ``max_turns``) counts
only the turns after the answers. Greedy decoding by default (the reference's --deterministic).

Team accuracy = mean of the two agents' final-answer correctness. Order dependence for a team =
|team accuracy (a first) - team accuracy (b first)|, computed per seed, then mean ± std over seeds,
with an item-level bootstrap over questions (both orders of a drawn question come along).
``order_changed_answers`` = fraction of questions (per seed) whose team answer (the two agents'
normalized final answers) differs between the two orders; ``order_changed_correct`` = fraction whose
team correctness (0, 0.5 or 1) differs. ``alone_a`` / ``alone_b`` = accuracy of each agent's
independent first answer (round 0, before it sees the other's): each model alone, as in the paper's
Fig. 3, on the same questions and prompt (over both orders).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pbt.answers import normalize_answer
from pbt.debate import DebateAgent, run_debate
from pbt.evaluate.base import RunContext, Suite, Unit
from pbt.evaluate.sources import Question, load_questions
from pbt.evaluate.stats import Stat, absolute, difference, order_changed, ratio, where
from pbt.personas import load_personas

ORDERS = ("a_first", "b_first")


#: |team accuracy (a first) - team accuracy (b first)|
_order_dependence = absolute(
    difference(where("is_a_first", 1, ratio("team_correct")), where("is_a_first", 0, ratio("team_correct")))
)


class TeamDebateSuite(Suite):
    name = "team_debate"

    def __init__(self, config, store=None, questions: list[Question] | None = None):
        super().__init__(config)
        self.spec = config.suites.team_debate
        self.personas = load_personas(config.personas)
        self.questions = questions or load_questions(
            self.spec.questions, store, field="suites.team_debate.questions", limit=self.spec.limit
        )

    def units(self) -> list[Unit]:
        out = []
        for team in self.config.teams():
            for order in ORDERS:
                speakers = (team.a, team.b) if order == "a_first" else (team.b, team.a)
                for seed in self.config.seeds:
                    for q in self.questions:
                        key = f"{team.name()}/{order}/{seed}/{q.item_id}"
                        out.append(
                            Unit(
                                key=key,
                                seed=seed,
                                item_id=q.item_id,
                                payload=(team, order, q),
                                models=speakers,
                            )
                        )
        return out

    async def run_unit(self, unit: Unit, ctx: RunContext) -> dict[str, Any]:
        team, order, q = unit.payload
        roles = ("a", "b") if order == "a_first" else ("b", "a")
        agents = [
            DebateAgent(role, ctx.backend(model)) for role, model in zip(roles, unit.models, strict=True)
        ]

        async def extract(question: str, response: str) -> str:
            return await ctx.answer_of(question, response, q.aliases)

        result = await run_debate(
            q.question,
            agents,
            extract=extract,
            max_turns=self.spec.discussion(),
            sampling=ctx.params(
                seed=unit.request_seed,
                temperature=self.config.temperature(self.spec.temperature, "team_debate"),
            ),
            instruction=self.personas.standard,
            gold=q.aliases,
        )
        model_of = {"a": team.a, "b": team.b}
        transcript = [
            {
                "round": t.round,
                "agent": t.agent,
                "model": model_of[t.agent],
                "messages": t.messages,
                "text": t.text,
                "extracted": t.raw_answer,
                "answer": t.answer,
            }
            for t in result.turns
        ]
        correct = result.correct or {"a": False, "b": False}
        alone = {t.agent: int(ctx.is_correct(t.answer, q.aliases)) for t in result.turns if t.round == 0}
        return {
            "key": unit.key,
            "suite": self.name,
            "team": team.name(),
            "a": team.a,
            "b": team.b,
            "order": order,
            "is_a_first": int(order == "a_first"),
            "seed": unit.seed,
            "item_id": q.item_id,
            "question": q.question,
            "gold": list(q.aliases),
            "transcript": transcript,
            "discussion_turns": max((t.round for t in result.turns), default=0),
            "turns_taken": len(result.turns),
            "agreed": int(result.agreed),
            "final_answer_a": result.final_answers["a"],
            "final_answer_b": result.final_answers["b"],
            "correct_a": int(correct["a"]),
            "correct_b": int(correct["b"]),
            "team_correct": (int(correct["a"]) + int(correct["b"])) / 2.0,
            "alone_a": alone.get("a", 0),
            "alone_b": alone.get("b", 0),
            # the team's answer, the same string in both orders when both agents end the same way
            "team_answer": " | ".join(normalize_answer(result.final_answers[r]) for r in ("a", "b")),
        }

    def metric_specs(self) -> dict[str, tuple[Stat, list[str]]]:
        return {
            "team_accuracy": (ratio("team_correct"), ["team_correct"]),
            "accuracy_a": (ratio("correct_a"), ["correct_a"]),
            "accuracy_b": (ratio("correct_b"), ["correct_b"]),
            "agreement_rate": (ratio("agreed"), ["agreed"]),
            "alone_a": (ratio("alone_a"), ["alone_a"]),
            "alone_b": (ratio("alone_b"), ["alone_b"]),
            "order_dependence": (_order_dependence, ["team_correct", "is_a_first"]),
            "order_changed_answers": (order_changed("team_answer"), ["team_answer", "is_a_first"]),
            "order_changed_correct": (order_changed("team_correct"), ["team_correct", "is_a_first"]),
        }

    def group_of(self, record: Mapping[str, Any]) -> list[str]:
        return [f"{record['team']}/{record['order']}", record["team"]]

    def metrics_for_group(self, group: str) -> list[str]:
        if group.endswith(tuple("/" + o for o in ORDERS)):
            return ["team_accuracy", "accuracy_a", "accuracy_b", "agreement_rate"]
        return [
            "team_accuracy",
            "order_dependence",
            "order_changed_answers",
            "order_changed_correct",
            "alone_a",
            "alone_b",
        ]
