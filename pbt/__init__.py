"""Persuasion-Balanced Training (PBT): the library behind the services and the `pbt` command.

Importable without grpc, kserve or torch: heavy dependencies are imported inside the modules
that need them.
"""

__version__ = "0.1.0"


def code_version() -> str:
    """The package version plus the git commit when run from a checkout (for lineage manifests)."""
    import subprocess
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    try:
        sha = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        sha = ""
    return f"{__version__}+g{sha}" if sha else __version__
