"""Answer extraction after every dialogue turn (PBT-METHOD.md §2).

* `parse_final_answer`: the ``Final Answer:`` line parser shared by every extractor.
* `LLMExtractor`: the extraction prompt through any backend (greedy, 15 tokens).
* `RuleExtractor`: offline, from candidate answers and agreement/disagreement phrases.
* `answer_confidence` / `yes_probability`: p(yes)/(p(yes)+p(no)) from candidate log-probabilities.
* `RuleAgreementJudge`, `LLMAgreementJudge`: judges for `pbt.prefs.filters.ModelFilter`.
"""

from pbt.extract.judge import LLMAgreementJudge, RuleAgreementJudge, same_answer
from pbt.extract.llm import LLMExtractor, answer_confidence, yes_probability
from pbt.extract.parse import AGREE, DISAGREE, NONE, SPECIAL_ANSWERS, canonical_answer, parse_final_answer
from pbt.extract.prompts import EXTRACTION_MARKER, confidence_prompt, extraction_prompt
from pbt.extract.rules import RuleExtractor, committed_candidate, stance

__all__ = [
    "AGREE",
    "DISAGREE",
    "EXTRACTION_MARKER",
    "NONE",
    "SPECIAL_ANSWERS",
    "LLMAgreementJudge",
    "LLMExtractor",
    "RuleAgreementJudge",
    "RuleExtractor",
    "answer_confidence",
    "canonical_answer",
    "committed_candidate",
    "confidence_prompt",
    "extraction_prompt",
    "parse_final_answer",
    "same_answer",
    "stance",
    "yes_probability",
]
