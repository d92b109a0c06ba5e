"""Hand-built reference-format trees shared by the preference tests.

`ref_tree(qid, gold, rows)` writes a reference trajectory by hand: rows are
``(node_idx, parent, agent, answer_of_A, answer_of_B)``; the prompt root is node -1 and agent k's
answer is stored at ``extracted_ans[1 - k]``, as the reference does.
"""

from __future__ import annotations

from typing import Any

Row = tuple[int, int, int, str | None, str | None]


def ref_tree(qid: str, gold: list[str], rows: list[Row], question: str = "Q?") -> dict[str, Any]:
    children: dict[int, list[int]] = {-1: []}
    for idx, parent, *_ in rows:
        children.setdefault(idx, [])
        children.setdefault(parent, []).append(idx)
    data = [
        {
            "node_idx": -1,
            "agent_idx": -1,
            "generation": f"Answer the question.\n\nQuestion: {question}",
            "extracted_ans": [None, None],
            "extracted_conf": -1.0,
            "parent": -1,
            "children": children[-1],
        }
    ]
    for idx, parent, agent, ans_a, ans_b in rows:
        data.append(
            {
                "node_idx": idx,
                "agent_idx": agent,
                "generation": f"turn {idx} by {'AB'[agent]}: A={ans_a} B={ans_b}.",
                "extracted_ans": [ans_b, ans_a],
                "extracted_conf": 0.25 if idx % 2 else -1,
                "parent": parent,
                "children": children[idx],
            }
        )
    return {
        "data": data,
        "metadata": {
            "question_id": qid,
            "question": question,
            "answer": {"normalized_aliases": gold, "aliases": [g.title() for g in gold]},
        },
        "model_a": "model-a",
        "model_b": "model-b",
    }


# T1: B is right from level 1 and resists A twice (two resist pairs).
RESIST = ref_tree(
    "t-resist",
    ["paris"],
    [
        (1, -1, 0, "London", None),
        (2, 1, 1, "London", "Paris"),  # (F,T)
        (3, 1, 1, "London", "London"),  # (F,F), no children: never compared with 2 (3 vs 0 children)
        (4, 2, 0, "Paris", "Paris"),  # (T,T) leaf
        (5, 2, 0, "Disagree", "Paris"),  # A's Disagree -> A's answer at node 1 = London: (F,T)
        (6, 2, 0, "London", "Paris"),  # (F,T)
        (7, 5, 1, "London", "Paris"),  # (F,T) 1
        (8, 5, 1, "London", "London"),  # (F,F) 0
        (9, 6, 1, "London", "Paris"),  # (F,T) 1
        (10, 6, 1, "London", "Agree"),  # B agrees -> london: (F,F) 0
    ],
)
# scores: 7=1 8=0 9=1 10=0; 5=1+1=2; 6=2; 4=2; 2=1+2+2+2=7; 3=0; 1 unscorable (keeps 7)
# pairs: 5 vs 6 equal (2=2); 4 has no children -> not compared with 5/6; 2 vs 3 child counts differ;
# 7>8 and 9>10 (1 vs 0): Q sum 1 == P sum 1, B right at G=2, right at P, wrong at D -> resist
RESIST_EXPECTED = {("t-resist", "7", "8", "resist"), ("t-resist", "9", "10", "resist")}
RESIST_SCORES = {"1": 7, "2": 7, "3": 0, "4": 2, "5": 2, "6": 2, "7": 1, "8": 0, "9": 1, "10": 0}

# T3: B starts wrong and takes up the correct answer (three accept pairs).
ACCEPT = ref_tree(
    "t-accept",
    ["paris"],
    [
        (1, -1, 0, "London", None),
        (2, 1, 1, "London", "Berlin"),  # (F,F)
        (3, 1, 1, "London", "Rome"),  # (F,F), no children
        (4, 2, 0, "Madrid", "Berlin"),  # (F,F)
        (5, 2, 0, "London", "Berlin"),  # (F,F)
        (6, 2, 0, "Agree", "Berlin"),  # A agrees -> berlin: (F,F)
        (8, 4, 1, "Madrid", "Paris"),  # (F,T) 1
        (9, 4, 1, "Madrid", "Berlin"),  # 0
        (10, 5, 1, "London", "Paris"),  # (F,T) 1
        (11, 5, 1, "London", "Disagree"),  # B's Disagree -> B at node 2 = Berlin: 0
        (12, 6, 1, "Agree", "Paris"),  # A's Agree -> paris: (T,T) 2
        (13, 6, 1, "Agree", "Berlin"),  # (F,F) 0
    ],
)
# scores: 4=1, 5=1, 6=2 -> 4 vs 6 and 5 vs 6 are exactly 0.5 apart (not > 0.5): skipped
# 8>9, 10>11, 12>13: Q sum < P sum, B wrong at G=2, right at P, wrong at D -> accept
ACCEPT_EXPECTED = {
    ("t-accept", "8", "9", "accept"),
    ("t-accept", "10", "11", "accept"),
    ("t-accept", "12", "13", "accept"),
}

# T4: level-2 pairs (never labelled: G is level 0, which has no answer of B) and one level-3 accept.
LEVELS = ref_tree(
    "t-levels",
    ["paris"],
    [
        (1, -1, 0, "Paris", None),
        (2, 1, 1, "Paris", "London"),  # (T,F)
        (3, 1, 1, "Paris", "Paris"),  # (T,T), no children
        (4, 2, 0, "Paris", "London"),  # (T,F)
        (5, 2, 0, "Rome", "London"),  # (F,F)
        (6, 2, 0, "London", "London"),  # (F,F)
        (7, 4, 1, "Paris", "Paris"),  # 2
        (8, 4, 1, "Paris", "London"),  # 1  -> 7 vs 8 is 2 vs 1: exactly 0.5, skipped
        (9, 5, 1, "Rome", "Rome"),  # 0
        (10, 5, 1, "Rome", "London"),  # 0  -> equal, skipped
        (11, 6, 1, "London", "London"),  # 0
        (12, 6, 1, "London", "Paris"),  # (F,T) 1 -> accept (Q sum 0 < 1, B wrong at 2)
    ],
)
# scores: 4 = 1+2+1 = 4, 5 = 0, 6 = 0+0+1 = 1: 4>5 (1.0), 4>6 (0.75), 6>5 (1 vs 0)
LEVELS_EXPECTED_ALL = {
    ("t-levels", "4", "5", None),
    ("t-levels", "4", "6", None),
    ("t-levels", "6", "5", None),
    ("t-levels", "12", "11", "accept"),
}

# T5: nothing may be kept: alias + substring merges, both-correct siblings, missing answers,
# and a 0.5 tie at level 1.
NOTHING = ref_tree(
    "t-nothing",
    ["diego rivera"],
    [
        (1, -1, 0, "Diego Rivera", None),
        (2, 1, 1, "Diego Rivera", "Rivera"),  # substring, ratio 12/18 > .5: B takes A's value: (T,T)
        (3, 1, 1, "Diego Rivera", "Frida Kahlo"),  # (T,F)
        (4, 2, 0, "Diego Rivera", "Rivera"),  # (T,T)
        (5, 2, 0, "diego rivera ", "Rivera"),  # lowercased + stripped: (T,T)
        (6, 3, 0, "Diego Rivera", "Frida Kahlo"),  # (T,F)
        (7, 3, 0, None, "Frida Kahlo"),  # missing answer: unscorable
        (8, 4, 1, "Diego Rivera", "Rivera"),  # 2
        (9, 4, 1, "Diego Rivera", "Diego Rivera"),  # 2
        (10, 5, 1, "diego rivera ", None),  # missing: 0
        (11, 5, 1, "diego rivera ", None),  # missing: 0
        (12, 6, 1, "Diego Rivera", "Frida Kahlo"),  # 1
        (13, 6, 1, "Diego Rivera", "Agree"),  # agree -> (T,T) 2
        (14, 7, 1, None, "Diego Rivera"),  # missing
        (15, 7, 1, None, "Frida Kahlo"),  # missing
    ],
)
# scores: 4 = 2+2+2 = 6, 5 = 2 (6 vs 2 would be kept, but both are fully correct);
# 6 = 1+1+2 = 4, 7 = 0 (unscorable; 4 vs 0 skipped because 7 cannot be scored);
# 2 = 2+6+2 = 10, 3 = 1+4 = 5 (7 passes nothing up): exactly 0.5 -> skipped; 12 vs 13: 1 vs 2 -> 0.5
NOTHING_SCORES = {"2": 10, "3": 5, "4": 6, "5": 2, "6": 4, "7": 0, "1": 15}

# T6: every node below level 0 agrees -> dropped.
ALL_AGREE = ref_tree(
    "t-agree",
    ["paris"],
    [
        (1, -1, 0, "London", None),
        (2, 1, 1, "London", "Agree"),
        (3, 1, 1, "London", "London"),
    ],
)
# T7: NONE/NONE does not count as agreement -> kept; 3 beats 2 (1 vs 0) but has no label
# (G is level 0, which has no answer of B).
NONE_NONE = ref_tree(
    "t-none",
    ["paris"],
    [
        (1, -1, 0, "NONE", None),
        (2, 1, 1, "NONE", "NONE"),
        (3, 1, 1, "NONE", "Paris"),
    ],
)
