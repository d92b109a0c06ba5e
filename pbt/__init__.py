"""Persuasion-Balanced Training (PBT): the library behind the services and the `pbt` command.

Importable without grpc, kserve or torch: heavy dependencies are imported inside the modules
that need them.
"""

__version__ = "0.1.0"


def code_version(explicit: str | None = None) -> str:
    """The code version every lineage record names: `explicit`, else ``$PBT_CODE_VERSION`` (set in
    images and jobs), else the package version plus the checkout's commit (``+g<sha>``, ``.dirty``
    with uncommitted changes to tracked files), else the package version."""
    import os
    import subprocess
    from pathlib import Path

    if explicit:
        return explicit
    if os.environ.get("PBT_CODE_VERSION"):
        return os.environ["PBT_CODE_VERSION"]
    root = Path(__file__).resolve().parent.parent
    git = ["git", "-C", str(root)]
    try:
        sha = subprocess.run(
            [*git, "rev-parse", "--short", "HEAD"], capture_output=True, text=True, timeout=5, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            [*git, "status", "--porcelain", "--untracked-files=no"], capture_output=True, text=True, timeout=5
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return __version__
    return f"{__version__}+g{sha}{'.dirty' if dirty else ''}" if sha else __version__
