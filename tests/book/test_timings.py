"""Measured run times: read, written back atomically, and told to a reader in words."""

from __future__ import annotations

import json
import shutil
import sys

import pytest
from notebooks import ROOT

sys.path.insert(0, str(ROOT / "book"))
from cdtl_book import timings  # noqa: E402


def test_durations_read_like_a_person_would_say_them():
    assert timings.duration(1.2) == "under 5 s"
    assert timings.duration(37) == "about 35 s"
    assert timings.duration(96) == "about 95 s"
    assert timings.duration(1440) == "about 24 min"
    assert timings.duration(5400) == "about 1.5 h"


def test_the_book_timings_file_is_valid_and_covers_every_chapter():
    from notebooks import toc_files

    data = timings.load()
    for chapter in toc_files():
        assert chapter.stem in data["chapters"], f"book/timings.json has no entry for {chapter.stem}"
        for profile in timings.PROFILES:
            timings.runtime_text(data, chapter.stem, profile)


def test_runtime_text_per_profile_and_machine():
    data = {"machines": {"cpu": "a 2-core CPU", "gpu": "one GPU"},
            "chapters": {"04_x": {"smoke": {"cpu": 87.0}, "full": {"cpu": 3000, "gpu": None}}}}
    assert timings.runtime_text(data, "04_x", "smoke") == "about 85 s on a 2-core CPU"
    assert timings.runtime_text(data, "04_x", "full") == "about 50 min on a 2-core CPU; not yet measured on one GPU"
    with pytest.raises(KeyError, match="make timings"):
        timings.runtime_text(data, "05_y", "smoke")
    with pytest.raises(ValueError, match="unknown profile"):
        timings.runtime_text(data, "04_x", "tiny")


def test_record_keeps_other_entries_and_rejects_bad_input(tmp_path):
    path = tmp_path / "timings.json"
    shutil.copy(timings.TIMINGS, path)
    before = json.loads(path.read_text())
    timings.record({"02_matrix_factorization": 41.26}, "full", "gpu", path)
    after = json.loads(path.read_text())
    assert after["chapters"]["02_matrix_factorization"]["full"]["gpu"] == 41.3
    assert after["chapters"]["02_matrix_factorization"]["smoke"] == before["chapters"]["02_matrix_factorization"]["smoke"]
    with pytest.raises(ValueError, match="unknown machine 'tpu'"):
        timings.record({"02_matrix_factorization": 1.0}, "full", "tpu", path)
    path.write_text(json.dumps({"machines": {"cpu": "x"}, "chapters": {"01": {"smoke": {"cpu": -3}}}}))
    with pytest.raises(ValueError, match="seconds > 0"):
        timings.load(path)
    assert not list(tmp_path.glob("*.part"))


def test_record_reads_the_seconds_a_build_cached(tmp_path, capsys):
    import nbformat
    from jupyter_cache import get_cache
    from jupyter_cache.base import CacheBundleIn

    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("1 + 1")])
    get_cache(str(tmp_path / "cache")).cache_notebook_bundle(
        CacheBundleIn(notebook, str(tmp_path / "chapters" / "09_x.ipynb"), data={"execution_seconds": 12.5}),
        check_validity=False)
    assert timings.cached_seconds(tmp_path / "cache") == {"09_x": 12.5}
    assert timings.main(["show", "--cache", str(tmp_path / "cache")]) == 0
    assert "09_x" in capsys.readouterr().out
    assert timings.main(["show", "--cache", str(tmp_path / "nothing")]) == 2
    assert "no execution cache" in capsys.readouterr().err
