"""Rule-based answer extraction for offline use (no extractor model).

`RuleExtractor.extract_sync(question, response, candidates)` decides, in this order:

1. A ``Final Answer:`` line wins (`pbt.answers.parse_final_answer`), unless it says ``NONE``.
2. Otherwise the response is normalised (TriviaQA normaliser: lowercase, no punctuation or
   articles) and searched for the candidates (gold aliases, answers already in the dialogue) as
   whole words. A mention right after a negation (``not``, ``isn't``, ``never``, ...) does not
   count. Among the rest, a candidate right after a commitment cue (``answer is``, ``it is``,
   ``change my answer to``, ...) wins; then the most mentioned; then the first mentioned. The
   candidate is returned as it was given.
3. With no candidate: plain agreement (``I agree``, ``you are right``, ...) gives ``Agree`` and
   plain disagreement (``I disagree``, ``you are wrong``, ``mistaken``, ...) gives ``Disagree``;
   an agreement phrase right after a negation (``I don't think that is right``) does not count;
   when both occur, the earlier one sets the stance.
4. Otherwise ``NONE``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

from pbt.answers import AGREE, DISAGREE, NONE, find_final_answer, normalize_answer, parse_final_answer

NEGATIONS = ("not", "isnt", "isn t", "wasnt", "wasn t", "never", "no longer", "rather than", "instead of")
#: phrases that negate an agreement cue right after them ("I don't think that is right")
CUE_NEGATIONS = (*NEGATIONS, "don t think", "do not think", "didn t think", "hardly", "not sure")
COMMIT_CUES = (
    "answer is",
    "answer would be",
    "answer to",
    "it is",
    "it s",
    "it was",
    "i think",
    "i believe",
    "must be",
    "should be",
    "is indeed",
    "was indeed",
    "definitely",
)
AGREE_CUES = (
    "i agree",
    "we agree",
    "you are right",
    "you re right",
    "that s right",
    "that is right",
    "that is correct",
    "that s correct",
    "you are correct",
    "you re correct",
    "same page",
    "exactly",
    "good point",
    "i concur",
    "agreed",
    "makes sense",
    "i see your point",
    "i was wrong",
    "i accept",
    "i stand corrected",
    "made mistake",
    "my mistake",
)
DISAGREE_CUES = (
    "i disagree",
    "don t agree",
    "do not agree",
    "can t agree",
    "cannot agree",
    "disagree",
    "you are wrong",
    "you re wrong",
    "mistaken",
    "incorrect",
    "not correct",
    "not right",
    "that s wrong",
    "that is wrong",
    "i don t think so",
    "i do not think so",
    "check your facts",
    "check their facts",
    "do not accept",
    "don t accept",
    "cannot accept",
    "can t accept",
    "argument is wrong",
)


def _normalize(text: str) -> str:
    # apostrophes become spaces in the normaliser ("isn't" -> "isn t"); cues are written that way
    return normalize_answer(text)


def _find_all(phrase: str, text: str) -> list[int]:
    return [m.start() for m in re.finditer(rf"(?<!\w){re.escape(phrase)}(?!\w)", text)]


def _preceded_by(text: str, pos: int, phrases: Iterable[str]) -> bool:
    """True when one of `phrases` ends right before character `pos` of `text`."""
    before = text[:pos].split()
    return any(before[-len(p.split()) :] == p.split() for p in phrases)


def stance(response: str) -> str | None:
    """``Agree``, ``Disagree`` or None from plain agreement/disagreement phrases (rule 3)."""
    text = _normalize(response)
    agree = min(
        (p for cue in AGREE_CUES for p in _find_all(cue, text) if not _preceded_by(text, p, CUE_NEGATIONS)),
        default=None,
    )
    disagree = min((p for cue in DISAGREE_CUES for p in _find_all(cue, text)), default=None)
    if agree is None and disagree is None:
        return None
    if disagree is None or (agree is not None and agree < disagree):
        return AGREE
    return DISAGREE


def committed_candidate(response: str, candidates: Sequence[str]) -> str | None:
    """The candidate the response commits to (rule 2), or None."""
    text = _normalize(response)
    scored: list[tuple[int, int, int, str]] = []  # (-cue, -count, first position, candidate)
    seen: set[str] = set()
    for cand in candidates:
        norm = _normalize(cand)
        if not norm or norm in seen or cand in (AGREE, DISAGREE, NONE):
            continue
        seen.add(norm)
        positions = [p for p in _find_all(norm, text) if not _preceded_by(text, p, NEGATIONS)]
        if not positions:
            continue
        cued = any(_preceded_by(text, p, COMMIT_CUES) for p in positions)
        scored.append((-int(cued), -len(positions), positions[0], cand))
    if not scored:
        return None
    return min(scored)[3]


class RuleExtractor:
    """Offline extractor (see the module docstring for the rules).

    `aliases` are candidate answers known up front (gold aliases of the question); `extract`
    also takes the answers already given in the dialogue as extra candidates.
    """

    name = "rule"

    def __init__(self, aliases: Sequence[str] = ()):
        self.aliases = list(aliases)

    def extract_sync(self, question: str, response: str, candidates: Sequence[str] = ()) -> str:
        if find_final_answer(response) is not None:
            answer = parse_final_answer(response)
            if answer != NONE:
                return answer
        found = committed_candidate(response, [*candidates, *self.aliases])
        if found is not None:
            return found
        return stance(response) or NONE

    async def extract(self, question: str, response: str, candidates: Sequence[str] = ()) -> str:
        return self.extract_sync(question, response, candidates)
