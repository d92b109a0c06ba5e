"""The two ways answers are scored.

1. Evaluation (`normalize_answer`, `is_correct_eval`): the TriviaQA/SQuAD normalizer (lowercase,
   underscores and punctuation to spaces, drop the articles a/an/the, squeeze whitespace), then
   membership in the normalized aliases. Used by every evaluation suite.

2. Preference extraction (`score_answers`): the reference implementation's simpler rule, exactly
   (PBT-METHOD.md §3): answers are lowercased and stripped, an ``agree`` answer takes the other
   agent's value, an answer that is a substring of the other with a Levenshtein ratio > 0.5 is
   merged into it, and each answer is correct iff it is one of the aliases. ``NONE`` is just an
   answer that is never correct; a missing answer makes the node unscorable (``None``).

3. The ``Final Answer: ...`` line of an extractor's (or an agent's) output (`parse_final_answer`),
   following the reference extractor (PBT-METHOD.md §2), made explicit:

   a. take the LAST line containing ``final answer`` followed by ``:`` (any case, markdown bold and
      a plural ``answers`` tolerated) and keep what follows the colon on that line;
   b. with no such line, an output whose first line has a colon (``Answer: Paris``) uses the text
      after the first colon; otherwise the answer is ``NONE``;
   c. strip quotes, brackets, markdown ``*``/`` ` `` and trailing ``.``/``!``/``,``/``;``/ellipses;
   d. a parenthetical after a single word is dropped (``Paris (France)`` -> ``Paris``);
   e. the special answers are canonicalised: anything starting with ``agree`` -> ``Agree``,
      ``disagree`` -> ``Disagree``, ``none``/``n/a``/``unknown``/empty -> ``NONE``.

The Levenshtein ratio comes from rapidfuzz: ``Indel.normalized_similarity`` equals
python-Levenshtein's ``ratio`` (1 - indel distance / (len(a) + len(b))).
"""

from __future__ import annotations

import re
import string
from collections.abc import Collection, Iterable, Sequence

from rapidfuzz.distance import Indel

AGREE, DISAGREE, NONE = "Agree", "Disagree", "NONE"
SPECIAL_ANSWERS = (AGREE, DISAGREE, NONE)
#: a sentence only the extractor's prompt (`pbt.extract.prompts`) contains: how a backend that
#: plays the extractor (`pbt.backends.scripted`) recognises an extraction request
EXTRACTION_MARKER = "report the final answer that this response commits to"

#: minimum Levenshtein ratio (exclusive) for the substring merge of §3
MERGE_RATIO = 0.5

_PUNCTUATION = frozenset(string.punctuation + "\u2018\u2019\u00b4`")
_ARTICLES = re.compile(r"\b(a|an|the)\b")


# ---- evaluation ------------------------------------------------------------------------------
def normalize_answer(text: str) -> str:
    """The TriviaQA evaluation normalizer (a superset of SQuAD's: it also maps ``_`` to space)."""
    text = text.replace("_", " ").lower()
    text = "".join(" " if ch in _PUNCTUATION else ch for ch in text)
    text = _ARTICLES.sub(" ", text)
    return " ".join(text.split())


def normalized_aliases(aliases: Iterable[str]) -> frozenset[str]:
    return frozenset(normalize_answer(a) for a in aliases)


def is_correct_eval(answer: str | None, aliases: Iterable[str]) -> bool:
    """True iff the normalized answer equals one of the normalized aliases (empty never counts)."""
    if answer is None:
        return False
    norm = normalize_answer(answer)
    return bool(norm) and norm in normalized_aliases(aliases)


# ---- preference extraction (PBT-METHOD.md §3) ------------------------------------------------
def levenshtein_ratio(a: str, b: str) -> float:
    """python-Levenshtein's ``ratio`` (normalized indel similarity), computed by rapidfuzz."""
    return Indel.normalized_similarity(a, b)


def is_agree(answer: str | None) -> bool:
    """The extractor's ``Agree`` token (any case, surrounding whitespace ignored)."""
    return answer is not None and answer.lower().strip() == "agree"


def is_disagree(answer: str | None) -> bool:
    """The extractor's ``Disagree`` token, any case (the reference compares without stripping)."""
    return answer is not None and answer.lower() == "disagree"


def prepare_aliases(aliases: Iterable[str]) -> frozenset[str]:
    """Aliases as the preference rule compares them: lowercased and stripped.

    TriviaQA's ``normalized_aliases`` are already in this form, so for them this is the identity
    (and the rule stays exactly the reference's); other gold lists (mixed case) still match.
    """
    return frozenset(a.lower().strip() for a in aliases)


def merged_answers(answers: Sequence[str | None]) -> tuple[str, str] | None:
    """Both answers (index = agent) after lowercasing, ``agree`` resolution and the substring merge.

    Returns None when either answer is missing. The order of operations is the reference's,
    which works on its stored list ``[B, A]`` (agent k at position 1-k): B's ``agree`` takes A's
    answer, then A's ``agree`` takes B's; then, if one string contains the other and their
    Levenshtein ratio is > 0.5, **B's** answer (the reference's first position) takes A's value.
    """
    if len(answers) != 2:
        raise ValueError(f"expected 2 answers (index = agent), got {len(answers)}")
    a_raw, b_raw = answers
    if a_raw is None or b_raw is None:
        return None
    a = str(a_raw).lower().strip()
    b = str(b_raw).lower().strip()
    if b == "agree":
        b = a
    if a == "agree":
        a = b
    if (b in a or a in b) and levenshtein_ratio(b, a) > MERGE_RATIO:
        b = a
    return a, b


def score_answers(answers: Sequence[str | None], aliases: Collection[str]) -> tuple[bool, bool] | None:
    """Correctness of both agents' answers at a node under the §3 rule, or None if unscorable.

    `aliases` should come from `prepare_aliases` (a frozenset) when called in a loop; any other
    collection is prepared on the fly.
    """
    merged = merged_answers(answers)
    if merged is None:
        return None
    pool = aliases if isinstance(aliases, frozenset) else prepare_aliases(aliases)
    a, b = merged
    return a in pool, b in pool


def node_agrees(answers: Sequence[str | None]) -> bool:
    """The stopping rule of §2: identical strings (not both missing, not both ``NONE``), or an
    exact ``Agree`` token in either slot. Case-sensitive, as in the reference."""
    a, b = answers
    if a == b and not (a is None and b is None) and not (a == NONE and b == NONE):
        return True
    return a == AGREE or b == AGREE


# --- the Final Answer line (3. above) ---
_FINAL_RE = re.compile(r"final\s+answers?\s*\**\s*:\s*\**(?P<ans>[^\n]*)", re.IGNORECASE)
_PAREN_RE = re.compile(r"^(\w+)\s*\(.*$")
_STRIP_CHARS = " \t\"'`*[]<>"
_NONE_WORDS = {"none", "n/a", "na", "unknown", "no answer", "null"}


def canonical_answer(answer: str) -> str:
    """Clean one raw answer string and canonicalise the special answers (rules 3-5 above)."""
    ans = answer.strip().strip(_STRIP_CHARS).strip()
    ans = ans.rstrip(".!,;\u2026").rstrip().strip(_STRIP_CHARS).strip()
    match = _PAREN_RE.match(ans)
    if match:
        ans = match.group(1)
    low = ans.lower()
    if not ans or low in _NONE_WORDS:
        return NONE
    if low.startswith("disagree"):
        return DISAGREE
    if low.startswith("agree"):
        return AGREE
    return ans


def find_final_answer(text: str) -> str | None:
    """The raw text after the last ``Final Answer:`` in `text`, or None when there is none."""
    matches = list(_FINAL_RE.finditer(text or ""))
    if not matches:
        return None
    return matches[-1].group("ans")


def parse_final_answer(text: str) -> str:
    """The answer an extractor output commits to: a short answer, ``Agree``, ``Disagree`` or ``NONE``."""
    raw = find_final_answer(text)
    if raw is None:
        first_line = (text or "").strip().split("\n", 1)[0]
        if ":" not in first_line:
            return NONE
        raw = first_line.split(":", 1)[1]
    return canonical_answer(raw)
