"""Dialogue trees: the `pbt.tree/v1` model, file I/O and the reference-format converter."""

from pbt.tree.io import load_trees, read_trees, tree_to_json_line, write_trees
from pbt.tree.model import SCHEMA_VERSION, AgentInfo, Node, Question, StructureError, Tree, Usage
from pbt.tree.validate import tree_from_dict

__all__ = [
    "SCHEMA_VERSION",
    "AgentInfo",
    "Node",
    "Question",
    "StructureError",
    "Tree",
    "Usage",
    "load_trees",
    "read_trees",
    "tree_from_dict",
    "tree_to_json_line",
    "write_trees",
]
