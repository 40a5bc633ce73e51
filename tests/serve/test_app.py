"""The app create_app builds: its OpenAPI document."""

from __future__ import annotations

from edges_app import app  # noqa: F401  (fixture)


def test_the_openapi_document_says_where_added_items_live(app):
    doc = app.get("/openapi.json").json()
    assert "--items-store" in doc["info"]["description"] and "replica" in doc["info"]["description"]
    assert "store" in doc["paths"]["/items"]["post"]["summary"]
