"""`pbt pipeline`: render the retraining WorkflowTemplate, run the loop locally, run one step."""

from __future__ import annotations

from pathlib import Path

import click

from pbt.pipeline.steps import STEP_NAMES


@click.group("pipeline")
def pipeline() -> None:
    """The closed retraining loop (docs/pipeline.md)."""


@pipeline.command("render")
@click.argument("spec_path", metavar="SPEC", type=click.Path(exists=True, dir_okay=False))
@click.option("--hook", is_flag=True, help="Also print the Argo CD PostSync Workflow that starts a run.")
def render_cmd(spec_path: str, hook: bool) -> None:
    """Print the Argo Workflows WorkflowTemplate of SPEC (YAML)."""
    from pbt.pipeline.spec import load_spec
    from pbt.pipeline.workflow import render_sync_workflow, render_workflow_template, to_yaml

    spec = load_spec(spec_path)
    objects = [render_workflow_template(spec)]
    if hook:
        objects.append(render_sync_workflow(spec))
    click.echo(to_yaml(*objects), nl=False)


def invoke_cli(argv: list[str]) -> None:
    """``pbt argv`` in this process; a usage or command error becomes a `PbtError`."""
    from pbt.cli.main import cli
    from pbt.errors import PbtError

    try:
        cli.main(argv, prog_name="pbt", standalone_mode=False)
    except click.ClickException as exc:
        raise PbtError(exc.format_message()) from None


@pipeline.command("run")
@click.argument("spec_path", metavar="SPEC", type=click.Path(exists=True, dir_okay=False))
@click.option("--local", "local", is_flag=True, required=True, help="Run every step in this process.")
@click.option(
    "--run", "run_id", default=None, help="Run id (default: <name>-v<version>); reuse it to resume."
)
def run_cmd(spec_path: str, local: bool, run_id: str | None) -> None:
    """Run the whole loop on this machine (the same steps and arguments as the WorkflowTemplate)."""
    from pbt.pipeline.run import run_local
    from pbt.pipeline.spec import load_spec

    spec = load_spec(spec_path)
    records = run_local(spec, spec_path, run_id or spec.default_run, invoke=invoke_cli, echo=click.echo)
    verdict = records.get("gate", {}).get("verdict")
    if verdict:
        click.echo(f"verdict: {verdict}")


@pipeline.command("step")
@click.argument("name", type=click.Choice(STEP_NAMES))
@click.option("--spec", "spec_ref", required=True, help="Spec file (init) or store:<key>.")
@click.option("--run", "run_id", required=True, help="Run id.")
@click.option(
    "--shard", default=None, help="trees only: build shard 'i/N' (a pod of the Indexed Job); records nothing."
)
def step_cmd(name: str, spec_ref: str, run_id: str, shard: str | None) -> None:
    """Run one step of a run (what each WorkflowTemplate step runs); skipped when already recorded."""
    from pbt.pipeline.run import run_step

    outputs = run_step(name, spec_ref, run_id, shard=shard)
    for key, value in outputs.items():
        click.echo(f"{key}: {value}")


@click.command("promote")
@click.argument("verdict_ref", metavar="VERDICT")
@click.option(
    "--values-file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="The environment's values file (default: the one the verdict names).",
)
@click.option(
    "--write", is_flag=True, help="Write the change into the values file (default: print the diff)."
)
@click.option(
    "--push", is_flag=True, help="Commit the change on a new branch and push it (needs a Git credential)."
)
def promote(verdict_ref: str, values_file: Path | None, write: bool, push: bool) -> None:
    """Render the production values change for a passed VERDICT (file or store:<key>); refuse a failed one."""
    from pbt.pipeline.promote import promote as do_promote

    result = do_promote(verdict_ref, values_file=values_file, write=write, push=push)
    click.echo(result.diff, nl=False)
    if result.branch and result.already_pushed:
        click.echo(f"branch {result.branch} already pushed (commit {result.commit}); nothing to push")
    elif result.branch:
        click.echo(f"pushed branch {result.branch} (commit {result.commit})")
