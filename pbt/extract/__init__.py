"""Answer extraction after every dialogue turn (PBT-METHOD.md §2)."""

from pbt.extract.parse import AGREE, DISAGREE, NONE, SPECIAL_ANSWERS, canonical_answer, parse_final_answer

__all__ = ["AGREE", "DISAGREE", "NONE", "SPECIAL_ANSWERS", "canonical_answer", "parse_final_answer"]
