"""Run anywhere: the first cell installs in Colab only, launch buttons open the chapter, and the profile default fits
the machine."""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
import types

import book_build
import nbformat
import pytest
import yaml
from IPython.core.inputtransformer2 import TransformerManager
from notebooks import ROOT, toc_files

import cdtl
import cdtl.nb

pytestmark = pytest.mark.notebooks  # checks what the chapters printed when nbval executed them

CONFIG = yaml.safe_load((ROOT / "_config.yml").read_text())
CHAPTERS = toc_files()
REPO = CONFIG["repository"]["url"]
PIP = f'install --quiet "cdtl[offline] @ git+{REPO}.git"'
FIND_SPEC = importlib.util.find_spec


class _Shell:
    """Stands in for IPython: records the magics a cell runs instead of running them."""

    def __init__(self) -> None:
        self.magics: list[tuple[str, str]] = []

    def run_line_magic(self, name: str, line: str) -> None:
        self.magics.append((name, line))


def _run_first_cell(path, monkeypatch, *, colab: bool, installed: bool) -> list[tuple[str, str]]:
    source = nbformat.read(path, as_version=4).cells[0].source
    code = TransformerManager().transform_cell(source)  # %pip -> get_ipython().run_line_magic("pip", ...)
    shell = _Shell()
    if colab:
        monkeypatch.setitem(sys.modules, "google.colab", types.ModuleType("google.colab"))
    else:
        monkeypatch.delitem(sys.modules, "google.colab", raising=False)
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: (FIND_SPEC(name, *a) if installed else None) if name == "cdtl" else FIND_SPEC(name, *a))
    exec(compile(code, f"{path.name}[0]", "exec"), {"get_ipython": lambda: shell})
    return shell.magics


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.stem)
def test_first_cell_installs_in_colab_and_does_nothing_elsewhere(path, monkeypatch):
    assert _run_first_cell(path, monkeypatch, colab=True, installed=False) == [("pip", PIP)]
    assert _run_first_cell(path, monkeypatch, colab=True, installed=True) == []  # after a runtime restart
    assert _run_first_cell(path, monkeypatch, colab=False, installed=False) == []
    assert _run_first_cell(path, monkeypatch, colab=False, installed=True) == []


def test_launch_button_opens_the_chapter_notebook_in_colab():
    html = book_build.build().html
    for path in CHAPTERS:
        page = (html / "chapters" / f"{path.stem}.html").read_text()
        links = set(re.findall(r'href="(https://colab\.research\.google\.com/[^"]+)"', page))
        expected = f"https://colab.research.google.com/github/{REPO.removeprefix('https://github.com/')}/blob/" \
                   f"{CONFIG['repository']['branch']}/chapters/{path.stem}.ipynb"
        assert links == {expected}, f"{path.stem}: launch links {links}"


@pytest.mark.parametrize(("gpu", "expected"), [(True, "full"), (False, "smoke")])
def test_the_default_profile_follows_the_hardware_and_says_how_to_switch(monkeypatch, capsys, gpu, expected):
    monkeypatch.delenv("CDTL_PROFILE", raising=False)
    monkeypatch.setattr(cdtl.profiles, "cuda_available", lambda: gpu)
    assert cdtl.nb.profile(None).name == expected
    line = capsys.readouterr().out.splitlines()[0]
    other = "smoke" if expected == "full" else "full"
    assert f'Profile "{expected}"' in line and ("no CUDA GPU" in line) != gpu
    assert f'PROFILE = "{other}"' in line and f"CDTL_PROFILE={other}" in line
    monkeypatch.setenv("CDTL_PROFILE", other)  # the environment wins over the hardware
    assert cdtl.nb.profile(None).name == other
    assert cdtl.nb.profile(expected).name == expected  # and the parameters cell over both


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.stem)
def test_the_first_output_line_says_which_profile_ran(path):
    from jupyter_cache import get_cache

    book_build.build()  # the chapters' executions are in the book's cache now
    cache = get_cache(str(book_build.nbval_cache.book_cache_dir(book_build.PROFILE)))
    _, executed = cache.merge_match_into_notebook(nbformat.read(path, as_version=4))
    outputs = [out for cell in executed.cells if cell.cell_type == "code" for out in cell.outputs]
    first = outputs[0]
    assert first.output_type == "stream" and first.name == "stdout", f"{path.stem}: first output {first.output_type}"
    assert first.text.startswith('Profile "smoke" (') and 'PROFILE = "full"' in first.text.splitlines()[0]


def _make_dry_run(target: str, **env: str) -> str:
    environ = {k: v for k, v in os.environ.items() if k not in ("CDTL_PROFILE", "MAKEFLAGS", "MAKELEVEL")}
    environ.update(env)
    result = subprocess.run(["make", "-n", target], cwd=ROOT, capture_output=True, text=True, env=environ, timeout=120)
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_make_chooses_the_profile_the_package_would(monkeypatch):
    monkeypatch.delenv("CDTL_PROFILE", raising=False)
    default = cdtl.profiles.choose()[0]  # this machine's default: smoke here, full on a GPU runner
    assert f"--path-output _build/{default} " in _make_dry_run("book")  # no profile given: the hardware decides
    assert "--path-output _build/full " in _make_dry_run("book", CDTL_PROFILE="full")  # forced, even on a CPU
    assert "CDTL_PROFILE=smoke " in _make_dry_run("test")  # make test always runs the smoke profile
    assert "CDTL_PROFILE=full " in _make_dry_run("test-gpu")
