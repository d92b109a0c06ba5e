"""Writes examples/trees.reference.jsonl: small hand-designed trees in the reference format.

Each tree follows the paper's shape (A answers; B replies as resistant/acceptant; A replies as
logical/emotional/credibility; B replies again) and stops a branch when its node agrees. The
answers were chosen by hand so that the file exercises resist pairs, accept pairs, unlabelled
pairs, Agree/Disagree/NONE tokens and an all-agree tree that is dropped. Node ids follow the
reference's numbering (prompt root -1, then depth-first generation order from 1); agent k's
answer is stored at extracted_ans[1 - k].

    .venv/bin/python examples/make_reference_trees.py
"""

from __future__ import annotations

import json
from pathlib import Path

from pbt.answers import node_agrees
from pbt.personas import load_personas

MODEL_A = "meta-llama/Meta-Llama-3.1-8B-Instruct"
MODEL_B = "mistralai/Mistral-7B-Instruct-v0.2"

TEXT = {
    "level0": "I believe the answer is {ans}. That is what I remember most clearly.",
    "logical": "It has to be {ans}. If you go through the facts step by step, {ans} is the only answer that fits.",
    "emotional": "Please trust me on this, it really is {ans}! I would hate for us to get this wrong together.",
    "credibility": "I have studied this topic for years, and I can tell you with confidence that it is {ans}.",
    "resistant": "I disagree. I am sticking with {ans}, and nothing you said changes that.",
    "acceptant": "You make a good point. I think you are right that it is {ans}.",
}
TOKEN_TEXT = {
    "Agree": "You are right, I agree with you completely.",
    "Disagree": "I don't think that is right at all; you are mistaken.",
    "NONE": "I am honestly not sure what the answer is here.",
}

# (question id, question, gold aliases, tree) where a tree is (answer, [children]) and children
# alternate B = [resistant, acceptant] and A = [logical, emotional, credibility].
TREES = [
    (
        "ex_mars",
        "Which planet is known as the Red Planet?",
        ["mars", "planet mars"],
        ("Jupiter", [
            ("Mars", [
                ("Jupiter", [("Mars", []), ("Jupiter", [])]),
                ("Jupiter", [("Disagree", []), ("Agree", [])]),
                ("Mars", []),
            ]),
            ("Agree", []),
        ]),
    ),
    (
        "ex_mona_lisa",
        "Who painted the Mona Lisa?",
        ["leonardo da vinci", "leonardo", "da vinci"],
        ("Michelangelo", [
            ("Raphael", [
                ("Michelangelo", [("Raphael", []), ("Leonardo da Vinci", [])]),
                ("Michelangelo", [("Raphael", []), ("Agree", [])]),
                ("Da Vinci", [("Raphael", []), ("Agree", [])]),
            ]),
            ("Michelangelo", []),
        ]),
    ),
    (
        "ex_machu_picchu",
        "In which country is Machu Picchu?",
        ["peru"],
        ("Bolivia", [
            ("Peru", [
                ("Bolivia", [("Peru", []), ("Bolivia", [])]),
                ("Chile", [("Peru", []), ("Chile", [])]),
                ("Peru", []),
            ]),
            ("Ecuador", [
                ("Bolivia", [("Ecuador", []), ("Peru", [])]),
                ("Bolivia", [("NONE", []), ("Agree", [])]),
                ("Peru", [("Ecuador", []), ("Agree", [])]),
            ]),
        ]),
    ),
    (
        "ex_tokyo",
        "What is the capital of Japan?",
        ["tokyo"],
        ("Tokyo", [("Tokyo", []), ("Agree", [])]),
    ),
]

PERSONAS = {0: ["logical", "emotional", "credibility"], 1: ["resistant", "acceptant"]}


def build(qid: str, question: str, gold: list[str], spec) -> dict:
    personas = load_personas()
    root = {
        "node_idx": -1,
        "agent_idx": -1,
        "generation": personas.render("resistant", question),
        "extracted_ans": [None, None],
        "extracted_conf": -1.0,
        "parent": -1,
        "children": [],
    }
    data = [root]

    def add(spec, parent: dict, agent: int, persona: str, depth: int) -> None:
        answer, children = spec
        answers = [parent["extracted_ans"][1 - a] for a in (0, 1)] if parent is not root else [None, None]
        answers[agent] = answer
        text = TOKEN_TEXT.get(answer) or TEXT[persona].format(ans=answer)
        node = {
            "node_idx": len(data),
            "agent_idx": agent,
            "generation": text,
            "extracted_ans": [answers[1], answers[0]],
            "extracted_conf": round(0.35 + 0.05 * len(data), 4),
            "parent": parent["node_idx"],
            "children": [],
        }
        data.append(node)
        parent["children"].append(node["node_idx"])
        if children and node_agrees(answers):
            raise ValueError(f"{qid}: node {node['node_idx']} agrees but has children")
        for child_persona, child in zip(PERSONAS[1 - agent], children, strict=False):
            add(child, node, 1 - agent, child_persona, depth + 1)

    add(spec, root, 0, "level0", 0)
    return {
        "data": data,
        "metadata": {
            "question_id": qid,
            "question": question,
            "answer": {"aliases": [g.title() for g in gold], "normalized_aliases": gold, "value": gold[0].title()},
        },
        "model_a": MODEL_A,
        "model_b": MODEL_B,
    }


def main() -> None:
    out = Path(__file__).with_name("trees.reference.jsonl")
    out.write_text("".join(json.dumps(build(*t)) + "\n" for t in TREES))
    print(f"wrote {len(TREES)} trees to {out}")


if __name__ == "__main__":
    main()
