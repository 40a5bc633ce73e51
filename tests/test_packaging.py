"""The package as people install it: licence, one version, typed, URLs, the hashed lock that make installs, and a clean wheel."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import zipfile
from email.parser import Parser

import pytest
import tomllib
import yaml
from notebooks import ROOT
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

import cdtl

PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
LOCK = (ROOT / "requirements-ci.txt").read_text()
PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s\\;]+)", re.M)


def locked() -> dict[str, str]:
    return {canonicalize_name(name): version for name, version in PIN.findall(LOCK)}


def test_the_licence_is_mit_in_spdx_form_and_shipped():
    project = PYPROJECT["project"]
    assert project["license"] == "MIT" and project["license-files"] == ["LICENSE"]
    text = (ROOT / "LICENSE").read_text()
    assert text.startswith("MIT License") and "the cdtl authors" in text
    requires = " ".join(PYPROJECT["build-system"]["requires"])
    assert int(re.search(r"setuptools>=(\d+)", requires).group(1)) >= 77  # SPDX expressions and license-files


def test_one_version_read_from_the_package():
    assert "version" not in PYPROJECT["project"] and "version" in PYPROJECT["project"]["dynamic"]
    assert PYPROJECT["tool"]["setuptools"]["dynamic"]["version"] == {"attr": "cdtl.__version__"}
    assert re.fullmatch(r"\d+\.\d+\.\d+", cdtl.__version__)


def test_the_package_says_it_is_typed():
    assert (ROOT / "cdtl" / "py.typed").is_file()
    assert "py.typed" in PYPROJECT["tool"]["setuptools"]["package-data"]["cdtl"]


def test_project_urls_agree_with_the_books_repository():
    config = yaml.safe_load((ROOT / "_config.yml").read_text())
    repo = config["repository"]["url"].rstrip("/")
    owner, name = repo.removeprefix("https://github.com/").split("/")
    urls = PYPROJECT["project"]["urls"]
    assert urls == {"Homepage": repo, "Documentation": f"https://{owner}.github.io/{name}/", "Source": repo,
                    "Issues": f"{repo}/issues"}


def test_the_lock_pins_every_package_with_hashes():
    entries = re.split(r"\n(?=[A-Za-z0-9])", LOCK.split("\n", 2)[2].strip())
    assert len(entries) == len(locked()) > 100
    for entry in entries:
        assert "--hash=sha256:" in entry, f"no hash for {entry.splitlines()[0]}"
    assert locked()["torch"] == "2.13.0+cpu"  # the CPU build the chapters' results were recorded with


def test_the_lock_covers_every_extra_within_pyprojects_ranges():
    pins = locked()
    project = PYPROJECT["project"]
    wanted = list(project["dependencies"]) + [r for reqs in project["optional-dependencies"].values() for r in reqs]
    for text in wanted:
        req = Requirement(text)
        name = canonicalize_name(req.name)
        assert name in pins, f"{req.name} (pyproject.toml) is not in requirements-ci.txt: run make lock"
        assert req.specifier.contains(pins[name], prereleases=True), f"{name}=={pins[name]} is outside {req.specifier}"


def test_environment_yml_follows_the_lock():
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    pinned = {canonicalize_name(p.split("==")[0]): p.split("==")[1] for p in pip if "==" in p}
    assert pinned == locked(), "environment.yml is not the lock's versions: run python .ci/environment_yml.py"
    editable = next(p for p in pip if p.startswith("-e "))
    assert set(re.search(r"\[([a-z,-]+)\]", editable).group(1).split(",")) == set(PYPROJECT["project"]["optional-dependencies"])


def test_make_installs_the_hashed_lock_then_the_package_alone():
    makefile = (ROOT / "Makefile").read_text()
    extras = set(re.search(r"EXTRAS := ([a-z,-]+)", makefile).group(1).split(","))
    assert extras == set(PYPROJECT["project"]["optional-dependencies"])  # what make lock compiles
    assert "--require-hashes -r requirements-ci.txt" in makefile
    assert re.search(r"install --quiet --no-deps --no-build-isolation -e \.", makefile)
    assert "setuptools" in locked()  # the build backend of that last install comes from the lock too


def test_the_package_keeps_ranges_for_users():
    torch_req = next(d for d in PYPROJECT["project"]["dependencies"] if d.startswith("torch"))
    assert "==" not in torch_req and ">=" in torch_req
    assert PYPROJECT["project"]["requires-python"] == ">=3.10"


def _tool(name: str) -> str | None:
    found = shutil.which(name, path=str(ROOT / ".venv" / "bin")) or shutil.which(name)
    return found


@pytest.mark.slow
def test_the_wheel_and_sdist_build_and_pass_twine_check(tmp_path):
    try:
        import build  # noqa: F401
        import twine  # noqa: F401
    except ImportError as err:  # the test extra installs both
        pytest.skip(f"build and twine are in the test extra; not installed here: {err}")
    src = tmp_path / "src"  # a clean copy: what git tracks, not this checkout's build folders
    files = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=ROOT,
                           capture_output=True, check=True).stdout.decode().split("\0")
    for rel in filter(None, files):
        source = ROOT / rel
        if source.is_file() and not rel.startswith(("chapters/", "book/", "data/", "tests/")):
            (src / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, src / rel, follow_symlinks=False)
    dist = tmp_path / "dist"
    subprocess.run([sys.executable, "-m", "build", "--sdist", "--wheel", "--no-isolation", "--outdir", str(dist), str(src)],
                   check=True, capture_output=True, timeout=600)
    built = sorted(dist.iterdir(), key=lambda p: p.suffix)  # the sdist (.gz), then the wheel
    assert [p.suffix for p in built] == [".gz", ".whl"], built
    check = subprocess.run([sys.executable, "-m", "twine", "check", "--strict", *map(str, built)],
                           capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr
    with zipfile.ZipFile(built[1]) as wheel:
        names = wheel.namelist()
        meta = Parser().parsestr(wheel.read(next(n for n in names if n.endswith(".dist-info/METADATA"))).decode())
    assert "cdtl/py.typed" in names and "cdtl/configs/fusion_ml1m.yaml" in names
    assert any(n.endswith(".dist-info/licenses/LICENSE") for n in names)
    assert meta["Version"] == cdtl.__version__ and meta["License-Expression"] == "MIT"
    assert "Documentation, https://cdtl-course.github.io/cdtl/" in meta.get_all("Project-URL")
