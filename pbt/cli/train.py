"""``pbt train``: SFT and DPO runs (the ``training`` package, through `pbt.jobs.training`) and PyTorchJob submission."""

from __future__ import annotations

import sys

import click

PASS_THROUGH = {"ignore_unknown_options": True, "allow_extra_args": True, "help_option_names": []}


@click.group("train")
def train() -> None:
    """SFT/DPO training with TRL + PEFT LoRA, locally, under torchrun, or as a Kubeflow PyTorchJob."""


def _run(stage: str, args: tuple[str, ...]) -> None:
    from pbt.errors import PbtError
    from pbt.jobs.training import training_entry

    try:
        if any(a in ("-h", "--help") for a in args):
            training_entry("make_parser")(stage).print_help()
            return
        main = training_entry("main")
    except PbtError as exc:
        raise click.ClickException(str(exc)) from None
    code = main(stage, list(args))
    if code:
        sys.exit(code)


@train.command("dpo", context_settings=PASS_THROUGH)
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
def dpo(args: tuple[str, ...]) -> None:
    """DPO on preference pairs: same options as ``python -m training.dpo`` (--config FILE, --flag value)."""
    _run("dpo", args)


@train.command("sft", context_settings=PASS_THROUGH)
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
def sft(args: tuple[str, ...]) -> None:
    """SFT on the chosen responses: same options as ``python -m training.sft``."""
    _run("sft", args)


@train.command("submit")
@click.option(
    "--config",
    "config_path",
    required=True,
    type=click.Path(dir_okay=False),
    help="Training YAML with a job: block.",
)
@click.option(
    "--dry-run", is_flag=True, help="Print the ConfigMap and PyTorchJob as YAML instead of submitting."
)
@click.option(
    "--validate-crd",
    type=click.Path(exists=True, dir_okay=False),
    help="Check the job against this CRD file first.",
)
@click.option(
    "--kubeconfig",
    type=click.Path(dir_okay=False),
    help="Kubeconfig file (default: ~/.kube/config or in-cluster).",
)
@click.option("--context", "kube_context", help="Kubeconfig context.")
def submit_cmd(
    config_path: str,
    dry_run: bool,
    validate_crd: str | None,
    kubeconfig: str | None,
    kube_context: str | None,
) -> None:
    """Render a kubeflow.org/v1 PyTorchJob for a training config and submit it (or print it)."""
    from pbt.errors import PbtError
    from pbt.jobs.pytorchjob import load_job_config, render, submit, to_yaml, validate_job

    try:
        stage, config, job, text = load_job_config(config_path)
        config_map, pytorch_job = render(stage, config, job, text)
        if validate_crd:
            validate_job(pytorch_job, validate_crd)
        if dry_run:
            click.echo(to_yaml(config_map, pytorch_job), nl=False)
            return
        click.echo(f"submitted PyTorchJob {submit(config_map, pytorch_job, kubeconfig, kube_context)}")
    except PbtError as exc:
        raise click.ClickException(str(exc)) from None
