"""The tree-building engine: agents with bounded concurrency, the tree builder, the store-backed job.

from pbt.orchestrate import TreeJob
summary = await TreeJob(config, store, job_id="nq-1", shard=Shard.parse("0/4")).run()
"""

from pbt.orchestrate.agents import AgentPool
from pbt.orchestrate.builder import TreeBuilder
from pbt.orchestrate.job import (
    JobStarted,
    Progress,
    Summary,
    TreeBuilt,
    TreeJob,
    list_tree_keys,
    manifest_key,
    tree_key,
)

__all__ = [
    "AgentPool",
    "JobStarted",
    "Progress",
    "Summary",
    "TreeBuilder",
    "TreeBuilt",
    "TreeJob",
    "list_tree_keys",
    "manifest_key",
    "tree_key",
]
