"""Suite 4: team debate in both speaking orders (PBT-METHOD §6d).

For each team (a, b), order (``a_first`` / ``b_first``), seed and question:

1. Both agents answer independently (each sees only the standard instruction with the question).
   The first speaker's answer is placed first in the transcript.
2. If they do not agree, discussion turns t = 1..max_turns alternate, starting with the first
   speaker. A speaker sees the standard prompt, then the transcript: its own turns as
   ``assistant``, the other's as ``user`` (consecutive same-role messages merged).
3. After each turn the speaker's answer is extracted: ``Agree`` takes the other's current answer;
   ``Disagree`` / ``NONE`` keep the speaker's previous answer. The debate stops when both current
   answers are equal after normalization (greedy decoding throughout).

Team accuracy = mean of the two agents' final-answer correctness. Order dependence for a team =
|team accuracy (a first) - team accuracy (b first)|, with an item-level bootstrap over questions
(both orders of a drawn question come along).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from pbt.answers import normalize_answer
from pbt.evaluate.base import NON_ANSWERS, RunContext, Suite, Unit, merge_consecutive
from pbt.evaluate.sources import Question, load_questions
from pbt.evaluate.stats import Columns, Stat, ratio
from pbt.extract.parse import AGREE
from pbt.personas import load_personas

ORDERS = ("a_first", "b_first")


def _agree(x: str | None, y: str | None) -> bool:
    if x is None or y is None or x in NON_ANSWERS or y in NON_ANSWERS:
        return False
    nx, ny = normalize_answer(x), normalize_answer(y)
    return bool(nx) and nx == ny


def _order_dependence(cols: Columns) -> float:
    first = cols["is_a_first"] == 1
    vals = []
    for mask in (first, ~first):
        sub = cols["team_correct"][mask]
        vals.append(float(np.mean(sub)) if len(sub) else math.nan)
    return abs(vals[0] - vals[1])


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
                        key = f"{team.a}+{team.b}/{order}/{seed}/{q.item_id}"
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

    def _view(self, prompt: str, transcript: list[dict[str, Any]], me: int) -> list[dict[str, str]]:
        msgs = [{"role": "user", "content": prompt}]
        for turn in transcript:
            msgs.append({"role": "assistant" if turn["speaker"] == me else "user", "content": turn["text"]})
        return merge_consecutive(msgs)

    async def run_unit(self, unit: Unit, ctx: RunContext) -> dict[str, Any]:
        team, order, q = unit.payload
        prompt = self.personas.render_standard(q.question)
        params = ctx.params(seed=unit.seed, temperature=0.0)
        transcript: list[dict[str, Any]] = []
        current: list[str | None] = [None, None]  # by speaking position (0 = first speaker)
        for pos in (0, 1):  # independent answers
            text = await ctx.ask(unit.models[pos], [{"role": "user", "content": prompt}], params)
            ans = await ctx.answer_of(q.question, text)
            current[pos] = None if ans in NON_ANSWERS else ans
            transcript.append(
                {"turn": 0, "speaker": pos, "model": unit.models[pos], "text": text, "extracted": ans}
            )
        agreed = _agree(current[0], current[1])
        turns = 0
        while not agreed and turns < self.spec.max_turns:
            turns += 1
            pos = (turns - 1) % 2
            text = await ctx.ask(unit.models[pos], self._view(prompt, transcript, pos), params)
            ans = await ctx.answer_of(q.question, text)
            if ans == AGREE:
                current[pos] = current[1 - pos]
            elif ans not in NON_ANSWERS:
                current[pos] = ans
            transcript.append(
                {"turn": turns, "speaker": pos, "model": unit.models[pos], "text": text, "extracted": ans}
            )
            agreed = _agree(current[0], current[1])
        correct = [ctx.is_correct(a, q.aliases) for a in current]
        a_pos = 0 if order == "a_first" else 1
        return {
            "key": unit.key,
            "suite": self.name,
            "team": f"{team.a}+{team.b}",
            "a": team.a,
            "b": team.b,
            "order": order,
            "is_a_first": int(order == "a_first"),
            "seed": unit.seed,
            "item_id": q.item_id,
            "question": q.question,
            "gold": list(q.aliases),
            "prompt": prompt,
            "transcript": transcript,
            "discussion_turns": turns,
            "agreed": int(agreed),
            "final_answer_a": current[a_pos],
            "final_answer_b": current[1 - a_pos],
            "correct_a": int(correct[a_pos]),
            "correct_b": int(correct[1 - a_pos]),
            "team_correct": (int(correct[0]) + int(correct[1])) / 2.0,
        }

    def metric_specs(self) -> dict[str, tuple[Stat, list[str]]]:
        return {
            "team_accuracy": (ratio("team_correct"), ["team_correct"]),
            "accuracy_a": (ratio("correct_a"), ["correct_a"]),
            "accuracy_b": (ratio("correct_b"), ["correct_b"]),
            "agreement_rate": (ratio("agreed"), ["agreed"]),
            "order_dependence": (_order_dependence, ["team_correct", "is_a_first"]),
        }

    def group_of(self, record: Mapping[str, Any]) -> list[str]:
        return [f"{record['team']}/{record['order']}", record["team"]]

    def metrics_for_group(self, group: str) -> list[str]:
        if group.endswith(tuple("/" + o for o in ORDERS)):
            return ["team_accuracy", "accuracy_a", "accuracy_b", "agreement_rate"]
        return ["team_accuracy", "order_dependence"]
