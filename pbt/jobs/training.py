"""The training package's entry points, found through the ``pbt.training`` entry-point group.

The library never imports ``training`` (the pod code); it looks up the callables that the
``training`` package registers in pyproject (``[project.entry-points."pbt.training"]``):
``main(stage, argv) -> int``, ``make_parser(stage)``, ``parse_setup(stage, argv)`` and
``run_training(setup)``.
"""

from __future__ import annotations

from collections.abc import Callable
from importlib.metadata import entry_points
from typing import Any

from pbt.errors import UnavailableError

GROUP = "pbt.training"


def training_entry(name: str) -> Callable[..., Any]:
    """The callable registered as `name` in the ``pbt.training`` group."""
    found = entry_points(group=GROUP, name=name)
    if not found:
        raise UnavailableError(
            f"no {name!r} entry point in the {GROUP!r} group: the training package is not installed "
            "(run `make setup` or `pip install -e .`)"
        )
    return next(iter(found)).load()
