"""The PBT preference engine: dialogue trees -> balanced preference pairs (PBT-METHOD.md §4)."""

from pbt.prefs.dataset import (
    MODES,
    SPLITS,
    PrefsResult,
    build_manifest,
    build_preferences,
    manifest_path,
    pair_record,
    select_pairs,
    split_trees,
    write_preferences,
)
from pbt.prefs.engine import (
    Pair,
    TreeAnalysis,
    analyze_tree,
    is_all_agree,
    label_pair,
    node_correctness,
    resolve_disagree,
    sibling_pairs,
    subtree_scores,
)
from pbt.prefs.filters import PAIR_FILTERS, AgreementJudge, ModelFilter, PairFilterLike, make_pair_filter

__all__ = [
    "MODES",
    "SPLITS",
    "AgreementJudge",
    "ModelFilter",
    "PAIR_FILTERS",
    "make_pair_filter",
    "Pair",
    "PairFilterLike",
    "PrefsResult",
    "TreeAnalysis",
    "analyze_tree",
    "build_manifest",
    "build_preferences",
    "is_all_agree",
    "label_pair",
    "manifest_path",
    "node_correctness",
    "pair_record",
    "resolve_disagree",
    "select_pairs",
    "sibling_pairs",
    "split_trees",
    "subtree_scores",
    "write_preferences",
]
