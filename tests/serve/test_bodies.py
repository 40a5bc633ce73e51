"""Request bodies before FastAPI: JSON read whatever the content type says, a malformed body says where it broke."""

from __future__ import annotations

import json

import pytest
from edges_app import app  # noqa: F401  (fixture)
from serveapp import bounded

from cdtl.serve.bodies import MAX_DEPTH, BodyError, check_json, error_response


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


def test_check_json_parses_a_good_body_and_says_where_a_bad_one_broke():
    assert check_json(b'{"user": "u01", "history": [1, "b2"]}') == {"user": "u01", "history": [1, "b2"]}
    assert check_json("{\"text\": \"caf\u00e9 \\ud83d\\ude00\"}".encode()) == {"text": "caf\u00e9 \U0001F600"}  # a pair
    cases = [
        (b'{"a": 1,}', "malformed JSON at line 1, column 9"),
        (b'\xff{}', "invalid UTF-8 at byte 0"),
        (b"[" * (MAX_DEPTH + 1) + b"]" * (MAX_DEPTH + 1), f"limit of {MAX_DEPTH} levels"),
    ]
    for raw, says in cases:
        with pytest.raises(BodyError, match=says) as err:
            check_json(raw)
        assert err.value.status == 400 and err.value.field == "body"
    assert check_json(b"[" * MAX_DEPTH + b"]" * MAX_DEPTH) is not None  # exactly the limit is read
    with pytest.raises(BodyError) as err:
        check_json(b'{"history": ["b1", {"x": "\\udc00"}]}')
    assert err.value.field == "history[1].x" and "lone UTF-16 surrogate" in err.value.message


def test_an_error_response_names_the_field_first():
    answer = error_response(413, "body", "over the limit", headers={"Connection": "close"})
    assert answer.status_code == 413 and answer.headers["connection"] == "close"
    body = json.loads(answer.body)
    assert body == {"detail": "body: over the limit", "errors": [{"field": "body", "message": "over the limit"}]}
