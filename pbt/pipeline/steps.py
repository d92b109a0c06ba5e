"""The one step list of the pipeline, used by both the local runner and the WorkflowTemplate.

Every step is ``pbt pipeline step NAME --spec SPEC --run RUN``: the local runner runs that
command line in this process, the WorkflowTemplate runs it in a container (``train``: in the
pods of a PyTorchJob, under torchrun). ``init`` reads the spec from the file it is given and
copies it to the store; every later step reads it back from there (``store:pipelines/RUN/spec.yaml``),
so both renderers give each step the same arguments. A step's outputs are store keys, recorded
in ``pipelines/RUN/steps/NAME.json``; the next step reads them from there. A step whose record
exists is skipped, so re-submitting a run resumes it.

`steps_for(spec)` is the list a spec runs: `STEPS`, with ``trees`` in an Indexed Job when
``trees.indexed_job`` is set, and ``push`` last when ``promotion.git_secret`` is set.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Literal

from pbt.store.layout import pipeline_spec_key

if TYPE_CHECKING:
    from pbt.pipeline.spec import PipelineSpec

#: placeholders the renderers fill in
SPEC = "{spec}"
RUN = "{run}"


@dataclass(frozen=True)
class Step:
    name: str
    kind: Literal["container", "pytorchjob", "indexed_job"]
    help: str
    #: outputs (names of store keys) the step records
    outputs: tuple[str, ...]

    def argv(self, spec: str, run: str) -> list[str]:
        """The step's command line after ``pbt``."""
        spec_ref = spec if self.name == "init" else f"store:{pipeline_spec_key(run)}"
        return ["pipeline", "step", self.name, "--spec", spec_ref, "--run", run]


STEPS: tuple[Step, ...] = (
    Step(
        "init", "container", "copy the spec to the store (a changed spec under the same run fails)", ("spec",)
    ),
    Step("trees", "container", "BuildTrees (orchestrator over gRPC, or in the step)", ("trees",)),
    Step("prefs", "container", "ExtractPreferences: the pairs of the trees", ("pairs",)),
    Step("train", "pytorchjob", "DPO on a PyTorchJob (the workflow waits for it to succeed)", ("adapter",)),
    Step(
        "load",
        "container",
        "load the candidate (and the promoted) adapter into the serving agent",
        ("candidate",),
    ),
    Step(
        "evaluate", "container", "RunEvaluation on candidate and promoted, same seeds", ("eval_id", "summary")
    ),
    Step("gate", "container", "the gates: promotions/RUN/verdict.json and report.md", ("verdict", "report")),
    Step("propose", "container", "the GitOps values change, refused for a failed verdict", ("proposal",)),
)

PUSH = Step("push", "container", "commit the values change on a branch and push it (git_secret)", ("branch",))

#: every step name, optional ones included, in order
STEP_NAMES = (*(s.name for s in STEPS), PUSH.name)


def steps_for(spec: PipelineSpec) -> tuple[Step, ...]:
    """The steps `spec` runs, in order (both renderers use this list)."""
    steps = [
        replace(s, kind="indexed_job") if s.name == "trees" and spec.trees.indexed_job else s for s in STEPS
    ]
    if spec.promotion.git_secret:
        steps.append(PUSH)
    return tuple(steps)


def step(name: str) -> Step:
    for s in (*STEPS, PUSH):
        if s.name == name:
            return s
    raise KeyError(name)
