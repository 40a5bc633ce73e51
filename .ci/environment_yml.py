"""Write environment.yml from the lock (requirements-ci.txt): conda's Python, then pip with the lock's exact versions.

    python .ci/environment_yml.py        # after `make lock`; tests/test_packaging.py checks the two agree

conda's pip cannot check hashes and install the package itself in one requirements list
(an editable install has no file to hash), so environment.yml carries the lock's pins
without their hashes; `make` installs the hashed lock.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*==[^\s\\;]+)", re.M)
TORCH_INDEX = "https://download.pytorch.org/whl/cpu"
HEADER = """\
# conda users: `conda env create -f environment.yml && conda activate cdtl`.
# Generated from the lock, requirements-ci.txt, by .ci/environment_yml.py: the same exact versions
# (without the hashes, which `make` checks), then the package with every extra.
# tests/test_packaging.py keeps the two in step.
name: cdtl
channels:
  - conda-forge
dependencies:
  - python=3.11
  - pip
  - pip:
"""


def pins(lock: str) -> list[str]:
    """The lock's ``name==version`` lines, in its order."""
    return PIN.findall(lock)


def render(lock: str, extras: str) -> str:
    lines = [f"      - --extra-index-url {TORCH_INDEX}  # the CPU build of torch"]
    lines += [f"      - {pin}" for pin in pins(lock)]
    lines.append(f"      - -e .[{extras}]")
    return HEADER + "\n".join(lines) + "\n"


def main() -> int:
    import tomllib

    extras = ",".join(tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"])
    (ROOT / "environment.yml").write_text(render((ROOT / "requirements-ci.txt").read_text(), extras))
    return 0


if __name__ == "__main__":
    sys.exit(main())
