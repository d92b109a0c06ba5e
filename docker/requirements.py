"""Print the requirements of one image: pyproject's base dependencies and one optional group.

Run in the image's build stage (`python3 requirements.py GROUP > requirements.txt`) so the
dependency layer depends only on pyproject.toml and constraints.txt, never on the code.
"""

import sys
import tomllib

project = tomllib.load(open("pyproject.toml", "rb"))["project"]
groups = project["optional-dependencies"]
if len(sys.argv) != 2 or sys.argv[1] not in groups:
    sys.exit(f"requirements.py: name one group of pyproject.toml: {', '.join(sorted(groups))}")
print("\n".join(project["dependencies"] + groups[sys.argv[1]]))
