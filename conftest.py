"""Test session settings shared by unit tests and notebook runs: smoke profile, data cache, recorded results."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent
RECORD_DIR = ROOT / "build" / "records"

os.environ.setdefault("CDTL_PROFILE", "smoke")
os.environ.setdefault("CDTL_DATA_DIR", str(ROOT / "data" / "cache"))
os.environ.setdefault("MPLBACKEND", "Agg")
os.environ["CDTL_RECORD_DIR"] = str(RECORD_DIR)


def pytest_sessionstart(session: pytest.Session) -> None:
    """Start every session with no recorded results, so a chapter test never reads stale numbers."""
    shutil.rmtree(RECORD_DIR, ignore_errors=True)
    RECORD_DIR.mkdir(parents=True, exist_ok=True)


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    """Tell a notebook's kernel (started when its first cell runs) which chapter it records for."""
    path = Path(str(item.fspath))
    if path.suffix == ".ipynb":
        os.environ["CDTL_NOTEBOOK"] = path.stem
