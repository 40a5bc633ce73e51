"""Chapter helpers: the profile announced in one line, results recorded, read back and glued, intervals in metric tables."""

from __future__ import annotations

import json

import nbformat
import pytest

from cdtl import nb


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


def test_the_chapters_profile_is_announced_in_one_line_that_says_how_to_switch(monkeypatch, capsys):
    monkeypatch.delenv("CDTL_PROFILE", raising=False)
    assert nb.profile("smoke").name == "smoke"
    line = capsys.readouterr().out
    assert line.count("\n") == 1 and 'Profile "smoke"' in line and 'PROFILE = "full"' in line and "CDTL_PROFILE=full" in line


def test_metric_table_has_a_row_per_system_and_an_interval_per_metric():
    def m(mean):
        return {"mean": mean, "low": mean - 0.01, "high": mean + 0.01, "n": 10}

    rows = {"mf": {"ndcg@10": m(0.3), "recall@10": m(0.5)}, "pop": {"ndcg@10": m(0.2), "recall@10": m(0.4)}}
    table = nb.metric_table(rows)
    assert list(table.index) == ["mf", "pop"] and list(table.columns) == ["ndcg@10", "recall@10"]
    assert table.loc["mf", "ndcg@10"] == "0.3000 [0.2900, 0.3100]"
    picked = nb.metric_table(rows, ["recall@10"], users=True)
    assert list(picked.columns) == ["recall@10", "users"] and picked["users"].tolist() == [10, 10]
    with pytest.raises(ValueError, match="rows is empty"):
        nb.metric_table({})


def test_a_markdown_record_is_glued_as_markdown_and_must_be_text(monkeypatch, tmp_path):
    """``markdown=True`` glues a paragraph for {glue:md}; the records file keeps the text; a number is refused."""
    from IPython.core.interactiveshell import InteractiveShell
    from IPython.utils.capture import capture_output
    from myst_nb.ext.glue import extract_glue_data

    monkeypatch.setattr(InteractiveShell, "_instance", None)
    InteractiveShell.instance()
    monkeypatch.setenv("CDTL_RECORD_DIR", str(tmp_path))
    monkeypatch.setenv("CDTL_NOTEBOOK", "99_markdown")
    monkeypatch.setattr(nb, "_glued", {})
    with capture_output() as captured:
        nb.record("findings", "Popularity wins by **0.0123**.", markdown=True)
    outputs = [nbformat.v4.new_output("display_data", data=o.data, metadata=o.metadata) for o in captured.outputs]
    book = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("", outputs=outputs)])
    glued = extract_glue_data(book, [0], logger=None)
    assert glued["findings"]["data"]["text/markdown"] == "Popularity wins by **0.0123**."
    assert json.loads((tmp_path / "99_markdown.json").read_text())["findings"] == "Popularity wins by **0.0123**."
    with pytest.raises(ValueError, match="markdown=True needs a string"):
        nb.record("findings", 0.5, markdown=True)
