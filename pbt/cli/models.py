"""`pbt models ...`: build tiny offline models."""

from __future__ import annotations

from pathlib import Path

import click


@click.group()
def models() -> None:
    """Build tiny offline models."""


@models.command("tiny")
@click.option(
    "--out",
    "out_dir",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Folder to write the model and tokenizer to (created if missing).",
)
@click.option("--seed", default=0, show_default=True, help="Seed of the random weights.")
@click.option("--hidden-size", type=int, default=None, help="Override the hidden size (default 64).")
@click.option(
    "--layers", "num_hidden_layers", type=int, default=None, help="Override the layer count (default 2)."
)
def tiny(out_dir: Path, seed: int, hidden_size: int | None, num_hidden_layers: int | None) -> None:
    """Build a tiny Llama model with a tokenizer trained on bundled text (no network)."""
    from pbt.errors import ValidationError
    from pbt.models.tiny import build_tiny_model

    overrides = {
        k: v
        for k, v in {"hidden_size": hidden_size, "num_hidden_layers": num_hidden_layers}.items()
        if v is not None
    }
    try:
        path = build_tiny_model(out_dir, seed=seed, **overrides)
    except ValidationError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(str(path))
