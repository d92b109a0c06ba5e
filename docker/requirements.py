"""What one image's dependency group installs, for the Dockerfile's one `deps` stage (ARG GROUP).

    python3 requirements.py GROUP             pyproject's base dependencies and the group's own
    python3 requirements.py --unused GROUP    the code folders the group's image does not carry
    python3 requirements.py --check GROUP     the `pbt` command line the built image must answer

Run in the build stage so that the dependency layer depends only on pyproject.toml and
constraints.txt, never on the code.
"""

import sys
import tomllib

# group -> (its code folder beside pbt/, the `pbt` subcommand proving the install)
IMAGES = {
    "orchestrator": ("services", "serve orchestrator --help"),
    "evaluator": ("services", "serve evaluator --help"),
    "agent": ("services", "serve agent --help"),
    "training": ("training", "train --help"),
}
CODE = sorted({code for code, _ in IMAGES.values()})


def main(argv: list[str]) -> str:
    mode, group = (argv[0], argv[1]) if len(argv) == 2 else ("", argv[0] if argv else "")
    if mode not in ("", "--unused", "--check") or len(argv) not in (1, 2):
        raise SystemExit(__doc__)
    if group not in IMAGES:
        raise SystemExit(
            f"requirements.py: GROUP {group!r} (the Dockerfile's build argument) names no image's "
            f"dependency group: choose one of {', '.join(IMAGES)}"
        )
    if mode == "--unused":
        return " ".join(c for c in CODE if c != IMAGES[group][0])
    if mode == "--check":
        return IMAGES[group][1]
    project = tomllib.load(open("pyproject.toml", "rb"))["project"]
    return "\n".join(project["dependencies"] + project["optional-dependencies"][group])


if __name__ == "__main__":
    print(main(sys.argv[1:]))
