"""Where the Amazon pair cannot be obtained (no offline copy, downloads refused), chapters 04 and 05 still run, say so,
and record every key their prose glues, so the book builds there too."""

from __future__ import annotations

import nbformat
import pytest
from nbclient import NotebookClient
from notebooks import ROOT, glued_keys, read_records_from

import cdtl.data

pytestmark = pytest.mark.notebooks

FINDINGS = {"04_cross_domain_transfer": ["amazon_findings"], "05_new_items_and_domains": ["few_findings", "blend_findings"]}


@pytest.mark.parametrize("stem", sorted(FINDINGS))
def test_a_chapter_without_the_amazon_pair_says_so_and_records_every_glued_key(stem, tmp_path, monkeypatch):
    monkeypatch.setenv("CDTL_AMAZON_FOOD_KITCHEN", str(tmp_path / "absent"))  # no offline copy
    monkeypatch.setenv("CDTL_OFFLINE", "1")  # and no download
    monkeypatch.setenv("CDTL_PROFILE", "smoke")  # the path under test is the same in both profiles
    monkeypatch.setenv("CDTL_RECORD_DIR", str(tmp_path / "records"))  # leave this session's records alone
    monkeypatch.setenv("CDTL_NOTEBOOK", stem)
    with pytest.raises(cdtl.data.FetchError):  # a prepared copy in the data cache would make this test meaningless
        cdtl.data.load("amazon-food-kitchen")
    book = nbformat.read(ROOT / "chapters" / f"{stem}.ipynb", as_version=4)
    NotebookClient(book, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(ROOT / "chapters")}}
                   ).execute()
    records = read_records_from(book)
    assert records["amazon_available"] == 0
    missing = sorted(glued_keys(book.cells) - set(records))
    assert not missing, f"{stem}: without the Amazon pair the prose glues keys nothing recorded: {missing}"
    for key in FINDINGS[stem]:
        assert "Amazon" in records[key] or "no sample" in records[key], records[key]
    printed = "".join(out.get("text", "") for cell in book.cells if cell.cell_type == "code" for out in cell.outputs)
    assert "could not be obtained" in printed and "CDTL_OFFLINE" in printed  # the reader is told why
