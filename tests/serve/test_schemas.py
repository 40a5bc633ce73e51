"""Request bodies' types and limits: ids, titles and texts that could be confused are refused, a title is one clean line."""

from __future__ import annotations

import pytest
from edges_app import app  # noqa: F401  (fixture)
from serveapp import AUTH, bounded

from cdtl.serve.schemas import MAX_ID, check_id, check_text, title_from_text


@pytest.mark.parametrize("body, field, says", [
    ({"item": "   ", "text": "a film"}, "item", "empty or only whitespace"),
    ({"item": "", "text": "a film"}, "item", "at least 1 character"),
    ({"item": " f-x", "text": "a film"}, "item", "starts or ends with whitespace"),
    ({"item": "f\u0000x", "text": "a film"}, "item", "U+0000"),
    ({"item": "f\nx", "text": "a film"}, "item", "U+000A"),
    ({"item": "f\u200bx", "text": "a film"}, "item", "U+200B"),  # zero-width space: looks like "fx"
    ({"item": "f\u202ex", "text": "a film"}, "item", "U+202E"),  # right-to-left override
    ({"item": "f-x", "text": "a film", "title": "Title\u0007"}, "title", "U+0007"),
    ({"item": "f-x", "text": "a film", "title": "  "}, "title", "empty or only whitespace"),
    ({"item": "f-x", "text": "a \u0000 film"}, "text", "U+0000"),
    ({"item": "f-x", "text": " \n "}, "text", "empty or only whitespace"),
])
def test_new_item_ids_titles_and_texts_that_could_be_confused_are_refused(app, body, field, says):
    answer = bounded(lambda: app.post("/items", json=body, headers=AUTH))
    assert answer.status_code == 422 and answer.json()["detail"].startswith(f"{field}:"), answer.text
    assert says in answer.json()["detail"], answer.text


def test_a_text_may_hold_line_breaks_and_its_title_is_one_clean_line(app):
    body = {"item": "f-lines", "text": "A comedy film\nabout a\tkite\u200b festival"}
    assert app.post("/items", json=body, headers=AUTH).status_code == 201
    found = app.post("/similar-items", json={"text": "a kite festival comedy", "k": 13}).json()["items"]
    assert {"f-lines": "A comedy film about a kite festival"}.items() <= {i["item"]: i["title"] for i in found}.items()


@pytest.mark.parametrize("value, says", [
    (7, "must be a string"),
    ("  ", "empty or only whitespace"),
    ("x ", "starts or ends with whitespace"),
    ("a\u2060b", r"U\+2060 at position 1"),  # word joiner: invisible
])
def test_check_id_refuses_what_could_be_confused(value, says):
    with pytest.raises(ValueError, match=says):
        check_id(value)


def test_ids_texts_and_titles_that_are_fine_pass_unchanged():
    assert check_id("f-\u00e9t\u00e9 2") == "f-\u00e9t\u00e9 2"
    assert check_text("line one\n\tline two\r\n") == "line one\n\tline two\r\n"
    with pytest.raises(ValueError, match=r"U\+001B at position 4"):
        check_text("bad \x1b text")
    assert title_from_text("  A film\nabout\u200b a\tkite  ") == "A film about a kite"
    assert title_from_text("x" * 300) == "x" * MAX_ID
    cut = title_from_text("word " * 100)
    assert len(cut) <= MAX_ID and cut == cut.strip()  # cut at the limit, no space left at the end
