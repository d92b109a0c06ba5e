"""The object-store layout: every key the library reads or writes is built here.

Keys are relative to the store root; their shapes are a contract (docs/store-layout.md,
pinned by tests/unit/test_store_layout.py)::

    trees/{job_id}/{tree_id}.json                       one pbt.tree/v1 tree; tree id = question id,
                                                        "{question_id}-r{j}" for replica j > 0
    trees/{job_id}/_manifests/shard-{i}-of-{N}.json     a shard's config, dataset, counts, status
    trees/{job_id}/_site/                               the viewer's pages of a tree job
    prefs/{output_id}/{mode}.jsonl                      pair records of one mode
    prefs/{output_id}/{mode}.manifest.json              that file's lineage (pbt.prefs/v1)
    prefs/{output_id}/manifest.json                     the extraction's summary (pbt.prefs.job/v1)
    prefs/{output_id}/site/                             the viewer's pages of the pairs
    results/{eval_id}/config.json                       an evaluation's config and fingerprint
    results/{eval_id}/{suite}/examples.jsonl            one record per finished example
    results/{eval_id}/{suite}/summary.json              a suite's metrics
    results/{eval_id}/summary.json                      every suite's summary and the state
    results/{eval_id}/report.md                         the paper-shaped tables
    results/{eval_id}/team_debate/team_accuracy_by_order.png
    results/{eval_id}/site/                             the viewer's pages of the evaluation
    training/{run_id}/...                               a training run (adapter/, metrics.json, manifest.json)
    pipelines/{run}/spec.yaml, steps/{step}.json        a pipeline run's spec and step records
    promotions/{run}/verdict.json, report.md, proposal.json, values.yaml
    demo/{run_id}/report.md, report.json, team_accuracy.png, manifest.json, seed{n}/{name}
"""

from __future__ import annotations

import re

from pbt.errors import ValidationError, shorten

_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


def check_job_id(job_id: str, field: str = "job_id") -> str:
    """An id that becomes one key segment: 1-128 of letters, digits, '.', '_', '-', not starting with a symbol."""
    if not _ID_RE.match(job_id or ""):
        raise ValidationError(
            f"invalid {field.replace('_', ' ')} {shorten(job_id)}: 1-128 characters from letters, digits, '.', '_', '-', "
            "starting with a letter or digit",
            field=field,
        )
    return job_id


# ---- trees ---------------------------------------------------------------------------------
def trees_prefix(job_id: str) -> str:
    return f"trees/{check_job_id(job_id)}/"


def tree_key(job_id: str, tree_id: str) -> str:
    return f"{trees_prefix(job_id)}{tree_id}.json"


def shard_manifests_prefix(job_id: str) -> str:
    return f"{trees_prefix(job_id)}_manifests/"


def shard_manifest_key(job_id: str, index: int, count: int) -> str:
    return f"{shard_manifests_prefix(job_id)}shard-{index}-of-{count}.json"


def trees_site_prefix(job_id: str) -> str:
    return f"trees/{job_id}/_site"


# ---- preference pairs ----------------------------------------------------------------------
def prefs_prefix(output_id: str) -> str:
    return f"prefs/{output_id}"


def pairs_key(output_id: str, mode: str) -> str:
    return f"{prefs_prefix(output_id)}/{mode}.jsonl"


def pairs_manifest_name(name: str) -> str:
    """``pairs.jsonl`` -> ``pairs.manifest.json``: a pair file's lineage lies beside it."""
    return (name[: -len(".jsonl")] if name.endswith(".jsonl") else name) + ".manifest.json"


def pairs_manifest_key(key: str) -> str:
    """The manifest key beside the pair file ``key``."""
    head, _, name = key.rpartition("/")
    return f"{head}/{pairs_manifest_name(name)}" if head else pairs_manifest_name(name)


def prefs_manifest_key(output_id: str) -> str:
    return f"{prefs_prefix(output_id)}/manifest.json"


def prefs_site_prefix(output_id: str) -> str:
    return f"{prefs_prefix(output_id)}/site"


# ---- evaluation results --------------------------------------------------------------------
RESULTS_PREFIX = "results"


def eval_prefix(eval_id: str) -> str:
    return f"{RESULTS_PREFIX}/{eval_id}"


def examples_key(eval_id: str, suite: str) -> str:
    return f"{eval_prefix(eval_id)}/{suite}/examples.jsonl"


def suite_summary_key(eval_id: str, suite: str) -> str:
    return f"{eval_prefix(eval_id)}/{suite}/summary.json"


def summary_key(eval_id: str) -> str:
    return f"{eval_prefix(eval_id)}/summary.json"


def report_key(eval_id: str) -> str:
    return f"{eval_prefix(eval_id)}/report.md"


def config_key(eval_id: str) -> str:
    return f"{eval_prefix(eval_id)}/config.json"


def figure_key(eval_id: str) -> str:
    return f"{eval_prefix(eval_id)}/team_debate/team_accuracy_by_order.png"


def results_site_prefix(eval_id: str) -> str:
    return f"{eval_prefix(eval_id)}/site"


# ---- training ------------------------------------------------------------------------------
TRAINING_PREFIX = "training"


def training_prefix(run_id: str, root: str = TRAINING_PREFIX) -> str:
    return f"{root.strip('/')}/{run_id}"


def training_manifest_key(run_id: str, root: str = TRAINING_PREFIX) -> str:
    return f"{training_prefix(run_id, root)}/manifest.json"


# ---- pipeline runs and promotions ----------------------------------------------------------
def pipeline_prefix(run: str) -> str:
    return f"pipelines/{run}"


def pipeline_spec_key(run: str) -> str:
    return f"{pipeline_prefix(run)}/spec.yaml"


def pipeline_step_key(run: str, step: str) -> str:
    return f"{pipeline_prefix(run)}/steps/{step}.json"


def promotion_prefix(run: str) -> str:
    return f"promotions/{run}"


def verdict_key(run: str) -> str:
    return f"{promotion_prefix(run)}/verdict.json"


def verdict_report_key(run: str) -> str:
    return f"{promotion_prefix(run)}/report.md"


def proposal_key(run: str) -> str:
    return f"{promotion_prefix(run)}/proposal.json"


def proposal_values_key(run: str) -> str:
    return f"{promotion_prefix(run)}/values.yaml"


# ---- the demo ------------------------------------------------------------------------------
def demo_prefix(run_id: str) -> str:
    return f"demo/{run_id}"


def demo_key(run_id: str, name: str) -> str:
    """``report.md``, ``report.json``, ``team_accuracy.png``, ``manifest.json``, ``site``."""
    return f"{demo_prefix(run_id)}/{name}"


def demo_seed_key(run_id: str, seed: int, name: str) -> str:
    return f"{demo_prefix(run_id)}/seed{seed}/{name}"
