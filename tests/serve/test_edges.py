"""The service's edges, in-process: ids that cannot be confused, any content type, bodies that say where they broke, 413s counted.

Each case is a request a hostile or careless client sends; each answer is a 4xx naming
the field at fault (TestClient re-raises a server error, so a 500 fails the test), within
a deadline (a hang fails the test too).
"""

from __future__ import annotations

import pytest
from serveapp import AUTH, bounded, running
from servekit import toy_bundle

MAX_BODY = 64 * 1024


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    root = tmp_path_factory.mktemp("edges")
    with running(toy_bundle(root / "toy"), items_store=root / "items.jsonl", max_body=MAX_BODY) as client:
        yield client


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


def test_a_chunked_body_over_the_limit_is_a_413_and_every_status_is_counted(app):
    def chunks():
        for _ in range(2 * MAX_BODY // 4096):
            yield b" " * 4096

    answer = bounded(lambda: app.post("/recommend", content=chunks(), headers={"content-type": "application/json"}))
    assert answer.status_code == 413 and answer.json()["detail"].startswith("body:"), answer.text
    declared = bounded(lambda: app.post("/recommend", content=b" " * (MAX_BODY + 1)))
    assert declared.status_code == 413
    app.post("/recommend", content=b"{")
    app.get("/no-such-path")
    app.post("/items", json={"item": "x", "text": "y"})
    metrics = app.get("/metrics").text
    for status in ("413", "400"):
        assert f'cdtl_requests_total{{endpoint="/recommend",status="{status}"}}' in metrics, status
    assert 'cdtl_requests_total{endpoint="/items",status="401"}' in metrics
    assert 'cdtl_requests_total{endpoint="other",status="404"}' in metrics
    assert 'cdtl_errors_total{endpoint="/recommend",kind="4xx"}' in metrics


def test_ready_shows_the_bundle_path_only_to_the_token(app):
    anyone = app.get("/ready").json()
    assert anyone["status"] == "ready" and "path" not in anyone["bundle"]
    assert "/" not in anyone["store"]["file"]
    holder = app.get("/ready", headers=AUTH).json()
    assert holder["bundle"]["path"].endswith("toy") and holder["store"]["file"].endswith("items.jsonl")
    wrong = app.get("/ready", headers={"Authorization": "Bearer not-the-token-at-all"}).json()
    assert "path" not in wrong["bundle"]


def test_the_openapi_document_says_where_added_items_live(app):
    doc = app.get("/openapi.json").json()
    assert "--items-store" in doc["info"]["description"] and "replica" in doc["info"]["description"]
    assert "store" in doc["paths"]["/items"]["post"]["summary"]
