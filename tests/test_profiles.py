"""Profiles size every chapter; recorded results round-trip through files and executed notebooks."""

from __future__ import annotations

import json

import nbformat
import pytest

import cdtl
from cdtl import nb


def test_profile_from_argument_env_and_default(monkeypatch):
    monkeypatch.delenv("CDTL_PROFILE", raising=False)
    monkeypatch.setattr(cdtl.profiles, "cuda_available", lambda: True)
    assert cdtl.profile().name == "full"  # the default with a CUDA GPU
    monkeypatch.setattr(cdtl.profiles, "cuda_available", lambda: False)
    assert cdtl.profile().name == "smoke"  # and without one
    monkeypatch.setenv("CDTL_PROFILE", "smoke")
    assert cdtl.profile().name == "smoke"
    assert cdtl.profile("full").name == "full"  # a parameters cell wins over the environment
    assert cdtl.profile("smoke").movielens == "movielens-100k"
    assert cdtl.profile("full").movielens == "movielens-1m"


def test_profile_overrides_and_errors(monkeypatch):
    assert cdtl.profile("smoke", epochs=7).epochs == 7
    with pytest.raises(ValueError, match="unknown profile field"):
        cdtl.profile("smoke", epoch=7)
    with pytest.raises(ValueError, match=r"unknown profile 'tiny'.*\['full', 'smoke'\]"):
        cdtl.profile("tiny")
    monkeypatch.setenv("CDTL_PROFILE", "huge")
    with pytest.raises(ValueError, match="CDTL_PROFILE"):
        cdtl.profile()


def test_smoke_is_smaller_than_full_in_every_size():
    smoke, full = cdtl.PROFILES["smoke"], cdtl.PROFILES["full"]
    for field in ("epochs", "batch_size", "embedding_dim", "bootstrap", "plot_sample", "finetune_max_history"):
        assert getattr(smoke, field) < getattr(full, field), field
    assert len(smoke.seeds) <= len(full.seeds)


def test_record_writes_the_chapter_file(monkeypatch, tmp_path):
    monkeypatch.setenv("CDTL_RECORD_DIR", str(tmp_path))
    monkeypatch.setenv("CDTL_NOTEBOOK", "99_test")
    import numpy as np

    assert nb.record("users", np.int64(943)) == 943
    nb.record("ci", (0.1, np.float32(0.25)))
    saved = json.loads((tmp_path / "99_test.json").read_text())
    from cdtl.versions import versions

    assert saved.pop(nb.VERSIONS_KEY) == versions()  # which versions produced the records
    assert saved == {"users": 943, "ci": [0.1, 0.25]}
    with pytest.raises(ValueError, match="_versions"):
        nb.record(nb.VERSIONS_KEY, 1)
    with pytest.raises(ValueError, match="non-finite"):
        nb.record("bad", float("nan"))
    with pytest.raises(TypeError, match="object"):
        nb.record("bad", object())


def test_read_records_from_an_executed_notebook(tmp_path):
    book = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell("")
    cell.outputs = [nbformat.v4.new_output("display_data", data={nb.MIME: {"name": "ndcg", "value": 0.3},
                                                                   "text/plain": "ndcg = 0.3"})]
    book.cells = [cell]
    path = tmp_path / "x.ipynb"
    nbformat.write(book, path)
    assert nb.read_records(path) == {"ndcg": 0.3}


def test_record_glues_its_value_for_the_prose(monkeypatch, tmp_path):
    """Inside a notebook a record is also glued (hidden), so {glue:text} can quote it; the same value twice glues once."""
    from IPython.core.interactiveshell import InteractiveShell
    from IPython.utils.capture import capture_output
    from myst_nb.ext.glue import extract_glue_data

    monkeypatch.setattr(InteractiveShell, "_instance", None)  # a shell of our own, gone after the test
    InteractiveShell.instance()
    monkeypatch.setenv("CDTL_RECORD_DIR", str(tmp_path))
    monkeypatch.setenv("CDTL_NOTEBOOK", "99_glue")
    monkeypatch.setattr(nb, "_glued", {})
    with capture_output() as captured:
        nb.record("ndcg", 0.3125)
        nb.record("best", "ptupcdr")
        nb.record("ndcg", 0.3125)  # a cell run twice
    outputs = [nbformat.v4.new_output("display_data", data=o.data, metadata=o.metadata) for o in captured.outputs]
    assert sum(nb.MIME in out.data for out in outputs) == 3  # every record is shown and machine-readable
    book = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("", outputs=outputs)])
    glued = extract_glue_data(book, [0], logger=None)  # how the book reads glued values (a duplicate would warn)
    assert {name: value["data"]["text/plain"] for name, value in glued.items()} == {"ndcg": "0.3125", "best": "ptupcdr"}
    saved = json.loads((tmp_path / "99_glue.json").read_text())
    assert saved.pop(nb.VERSIONS_KEY)["cdtl"] and saved == {"ndcg": 0.3125, "best": "ptupcdr"}
