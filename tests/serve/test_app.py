"""The app create_app builds: its endpoints counted and documented, a token required to write, errors one line per field."""

from __future__ import annotations

import json

import pytest
from edges_app import app  # noqa: F401  (fixture)
from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError

from cdtl.serve.app import PATHS, create_app, fastapi_app, openapi, validation_errors


def test_the_openapi_document_says_where_added_items_live(app):
    doc = app.get("/openapi.json").json()
    assert "--items-store" in doc["info"]["description"] and "replica" in doc["info"]["description"]
    assert "store" in doc["paths"]["/items"]["post"]["summary"]


def test_every_endpoint_is_counted_by_name_and_documented(tmp_path):
    app = create_app(tmp_path / "bundle", token="t" * 16, items_store=tmp_path / "items.jsonl")
    inner = fastapi_app(app)
    assert isinstance(inner, FastAPI) and inner.state.metrics.endpoints == PATHS
    documented = set(openapi(app)["paths"])
    assert documented == PATHS - {"/docs", "/openapi.json"}


def test_a_writable_app_needs_a_token_and_a_read_only_one_does_not(tmp_path):
    with pytest.raises(ValueError, match="need a token"):
        create_app(tmp_path / "bundle", token=None)
    app = create_app(tmp_path / "bundle", token=None, read_only=True)
    assert fastapi_app(app).state.service.read_only


def test_validation_errors_are_one_line_per_field():
    exc = RequestValidationError([
        {"type": "extra_forbidden", "loc": ("body", "colour"), "msg": "Extra inputs are not permitted"},
        {"type": "int_type", "loc": ("body", "history", 2), "msg": "Input should be a valid integer"},
        {"type": "string_type", "loc": ("body", "history", 2), "msg": "Input should be a valid integer"},
    ])
    answer = validation_errors(exc)
    body = json.loads(answer.body)
    assert answer.status_code == 422
    assert body["detail"] == "colour: unknown field; history[2]: Input should be a valid integer"
    malformed = validation_errors(RequestValidationError([{"type": "json_invalid", "loc": ("body", 7), "msg": "",
                                                           "ctx": {"error": "Expecting value"}}]))
    assert malformed.status_code == 400
    assert json.loads(malformed.body)["detail"] == "body: malformed JSON (Expecting value at position 7)"
