"""The service's endpoints: what /ready shows depends on the token."""

from __future__ import annotations

from edges_app import app  # noqa: F401  (fixture)
from serveapp import AUTH


def test_ready_shows_the_bundle_path_only_to_the_token(app):
    anyone = app.get("/ready").json()
    assert anyone["status"] == "ready" and "path" not in anyone["bundle"]
    assert "/" not in anyone["store"]["file"]
    holder = app.get("/ready", headers=AUTH).json()
    assert holder["bundle"]["path"].endswith("toy") and holder["store"]["file"].endswith("items.jsonl")
    wrong = app.get("/ready", headers={"Authorization": "Bearer not-the-token-at-all"}).json()
    assert "path" not in wrong["bundle"]
