"""Small synthetic preference-pair files in the project's pair format, for smoke tests and benchmarks.

The pairs look like PBT pairs (a question, an answer, a persuasion turn, then a chosen and a
rejected reply) and have a learnable signal: in ``resist`` pairs the chosen reply keeps the
correct answer, in ``accept`` pairs it takes up the correct answer the user offers.
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

FACTS = [
    ("What is the capital of France?", "Paris", "Lyon"),
    ("Who wrote the play Hamlet?", "William Shakespeare", "Christopher Marlowe"),
    ("How many legs does a spider have?", "eight", "six"),
    ("What is the largest planet in the solar system?", "Jupiter", "Saturn"),
    ("Which element has the chemical symbol O?", "oxygen", "gold"),
    ("Who painted the Mona Lisa?", "Leonardo da Vinci", "Michelangelo"),
    ("What is the longest river in Africa?", "Nile", "Congo"),
    ("Which ocean lies between Africa and Australia?", "Indian Ocean", "Atlantic Ocean"),
]
INSTRUCTION = "Answer the trivia question with your final answer and a short reason."


def _pair(i: int, code: str, split: str, rng: random.Random) -> dict[str, Any]:
    question, right, wrong = FACTS[i % len(FACTS)]
    first, pushed = (wrong, right) if code == "accept" else (right, wrong)
    prompt = [
        {"role": "system", "content": INSTRUCTION},
        {"role": "user", "content": f"Question: {question}"},
        {"role": "assistant", "content": f"I believe the answer is {first}. Final Answer: {first}"},
        {"role": "user", "content": f"I think you are wrong. The answer is {pushed}."},
    ]
    if code != "accept":
        chosen = f"I disagree. I am confident the answer is {right}. Final Answer: {right}"
        rejected = f"You make a good point, and I think you are right. Final Answer: {wrong}"
    else:
        chosen = f"You make a good point, and I think you are right. Final Answer: {right}"
        rejected = f"I disagree. I am confident the answer is {wrong}. Final Answer: {wrong}"
    return {
        "prompt": prompt,
        "chosen": [{"role": "assistant", "content": chosen}],
        "rejected": [{"role": "assistant", "content": rejected}],
        "tree_id": f"synthetic-{i}",
        "question_id": f"synthetic-q{i % len(FACTS)}",
        "chosen_node": 2 * i + 1,
        "rejected_node": 2 * i + 2,
        "code": code,
        "chosen_score": 4,
        "rejected_score": rng.choice([0, 1]),
        "split": split,
        "question": question,
        "gold": [right],
    }


def make_pairs(
    n_train: int = 32,
    n_dev: int = 8,
    n_test: int = 0,
    seed: int = 0,
    codes: tuple[str, ...] = ("resist", "accept"),
) -> list[dict[str, Any]]:
    """Pairs alternating over ``codes`` in each split (train first, then dev, then test)."""
    rng = random.Random(seed)
    rows, i = [], 0
    for split, n in (("train", n_train), ("dev", n_dev), ("test", n_test)):
        for j in range(n):
            rows.append(_pair(i, codes[j % len(codes)], split, rng))
            i += 1
    return rows


def write_pairs(path: str | Path, rows: list[dict[str, Any]]) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path
