"""Request bodies before FastAPI: JSON read whatever the content type says, a malformed body says where it broke."""

from __future__ import annotations

import pytest
from edges_app import app  # noqa: F401  (fixture)
from serveapp import bounded


@pytest.mark.parametrize("content_type", [None, "application/x-www-form-urlencoded", "text/plain",
                                          "application/json; charset=utf-8"])
def test_a_json_body_is_read_whatever_the_content_type_says(app, content_type):
    headers = {} if content_type is None else {"content-type": content_type}
    answer = app.post("/recommend", content=b'{"user": "u01", "k": 2}', headers=headers)
    assert answer.status_code == 200 and answer.json()["scorer"] == "mf", answer.text


@pytest.mark.parametrize("raw, status, says", [
    (b'{"user": "u01",\n  "k": 2,,}', 400, "malformed JSON at line 2, column 10"),
    (b'{"user": "u01"', 400, "malformed JSON at line 1, column 15"),
    (b'{"user": "u\xff01"}', 400, "invalid UTF-8 at byte 11"),
    (b"[" * 40 + b"]" * 40, 400, "nested deeper than the limit of 32 levels"),
    (b"[" * 30_000 + b"]" * 30_000, 400, "nested deeper than the limit of 32 levels"),  # past Python's recursion limit
    (b"[" * 200_000 + b"]" * 200_000, 413, "over the limit of 65536 bytes"),
    (b'{"history": ["b1", "\\udc00"]}', 400, "history[1]: holds a lone UTF-16 surrogate"),
])
def test_a_malformed_body_says_where_it_broke(app, raw, status, says):
    answer = bounded(lambda: app.post("/recommend", content=raw, headers={"content-type": "application/json"}))
    assert answer.status_code == status and says in answer.json()["detail"], answer.text
