"""Test session settings shared by unit tests and notebook runs: smoke profile, data cache, recorded results, tiers."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent
RECORD_DIR = ROOT / "build" / "records"

# chapters executed under nbval feed the book build (tests/support/nbval_cache.py)
sys.path.insert(0, str(ROOT / "tests" / "support"))
pytest_plugins = ["nbval_cache"]

os.environ.setdefault("CDTL_PROFILE", "smoke")
os.environ.setdefault("CDTL_DATA_DIR", str(ROOT / "data" / "cache"))
os.environ.setdefault("CDTL_PROGRESS", "summary")  # a chapter's outputs are the book's: one line per run, no bars
# OpenMP threads spin briefly, then sleep, while they wait between operations. With the default (a long spin)
# spinning threads starve each other on a shared CPU; sleeping at once (OMP_WAIT_POLICY=PASSIVE) pays a wake-up
# for every small operation. An MMoE training step, 2 threads: 10.8 / 20.1 / 11.4 ms quiet and 77.5 / 45.1 /
# 36.6 ms beside two busy processes (default / passive / this); results are unchanged
os.environ.setdefault("GOMP_SPINCOUNT", "20000")
# nothing in the tests downloads a model: a model that is not on this machine fails at once instead of retrying
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ["CDTL_RECORD_DIR"] = str(RECORD_DIR)
# Unit tests draw off screen; a chapter's kernel draws inline, as in the book, since its figures are the book's.
_TEST_BACKEND = os.environ.setdefault("MPLBACKEND", "Agg")
NOTEBOOK_BACKEND = "module://matplotlib_inline.backend_inline"


def pytest_sessionstart(session: pytest.Session) -> None:
    """Start every session with no recorded results, so a chapter test never reads stale numbers."""
    shutil.rmtree(RECORD_DIR, ignore_errors=True)
    RECORD_DIR.mkdir(parents=True, exist_ok=True)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark every chapter cell ``notebooks``, and skip ``gpu`` tests where there is no CUDA device."""
    cuda = None
    for item in items:
        if Path(str(item.fspath)).suffix == ".ipynb":
            item.add_marker(pytest.mark.notebooks)
        if item.get_closest_marker("gpu") is not None:
            if cuda is None:
                import torch

                cuda = torch.cuda.is_available()
            if not cuda:
                item.add_marker(pytest.mark.skip(reason="needs a CUDA device"))


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    """Tell a notebook's kernel (started when its first cell runs) which chapter it records for."""
    path = Path(str(item.fspath))
    if path.suffix == ".ipynb":
        os.environ["CDTL_NOTEBOOK"] = path.stem
        os.environ["MPLBACKEND"] = NOTEBOOK_BACKEND
    else:
        os.environ["MPLBACKEND"] = _TEST_BACKEND
