"""Parsing an extractor's (or an agent's) ``Final Answer: ...`` line.

The rules follow the reference extractor (PBT-METHOD.md §2), made explicit:

1. Take the LAST line containing ``final answer`` followed by ``:`` (any case, markdown bold and
   a plural ``answers`` tolerated) and keep what follows the colon on that line.
2. With no such line, an output whose first line has a colon (``Answer: Paris``) uses the text
   after the first colon; otherwise the answer is ``NONE``.
3. Strip quotes, brackets, markdown ``*``/`` ` `` and trailing ``.``/``!``/``,``/``;``/ellipses.
4. A parenthetical after a single word is dropped (``Paris (France)`` -> ``Paris``).
5. The special answers are canonicalised: anything starting with ``agree`` -> ``Agree``,
   ``disagree`` -> ``Disagree``, ``none``/``n/a``/``unknown``/empty -> ``NONE``.
"""

from __future__ import annotations

import re

AGREE, DISAGREE, NONE = "Agree", "Disagree", "NONE"
SPECIAL_ANSWERS = (AGREE, DISAGREE, NONE)

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
