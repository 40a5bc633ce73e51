"""Set-up files stay in step: environment.yml, requirements-ci.txt and the Makefile agree with pyproject.toml."""

from __future__ import annotations

import re
import tomllib

import yaml

from notebooks import ROOT

PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())


def _extras_in(text: str) -> set[str]:
    match = re.search(r"-e \"?\.\[([a-z,-]+)\]", text)
    assert match, "no editable install with extras found"
    return set(match.group(1).split(","))


def test_environment_yml_mirrors_the_pip_requirements():
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    assert set(PYPROJECT["project"]["optional-dependencies"]) == _extras_in(" ".join(pip))
    ci_pins = [l for l in (ROOT / "requirements-ci.txt").read_text().splitlines() if l and not l.startswith("#")]
    assert set(ci_pins) <= set(pip)


def test_makefile_installs_every_extra_and_the_pinned_torch():
    makefile = (ROOT / "Makefile").read_text()
    extras = set(re.search(r"EXTRAS := ([a-z,-]+)", makefile).group(1).split(","))
    assert extras == set(PYPROJECT["project"]["optional-dependencies"])
    assert "-r requirements-ci.txt" in makefile


def test_package_keeps_a_torch_range_while_ci_pins_one():
    torch_req = next(d for d in PYPROJECT["project"]["dependencies"] if d.startswith("torch"))
    assert "==" not in torch_req and ">=" in torch_req
    assert "torch==2.13.0" in (ROOT / "requirements-ci.txt").read_text()
    assert PYPROJECT["project"]["requires-python"] == ">=3.10"
