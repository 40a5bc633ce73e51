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


def test_writes_need_the_bearer_token_and_reads_do_not(app):
    missing = app.post("/reload")
    assert missing.status_code == 401 and missing.headers["www-authenticate"] == "Bearer"
    assert missing.json()["detail"].startswith("authorization:") and "POST /reload" in missing.json()["detail"]
    wrong = app.post("/items", json={"item": "f-x", "text": "a film"}, headers={"Authorization": "Bearer wrong-token"})
    assert wrong.status_code == 401 and "not valid" in wrong.json()["detail"]
    assert app.get("/health").json() == {"status": "ok"}
    assert app.post("/recommend", json={"user": "u01", "k": 2}).status_code == 200


def test_ratings_need_one_number_per_history_item_on_the_rating_scale(app):
    fine = app.post("/recommend", json={"history": ["b1", "b2"], "ratings": [5, 1], "k": 2})
    assert fine.status_code == 200, fine.text
    short = app.post("/recommend", json={"history": ["b1", "b2"], "ratings": [5], "k": 2})
    assert short.status_code == 422 and short.json()["detail"].startswith("ratings:"), short.text
    outside = app.post("/recommend", json={"history": ["b1", "b2"], "ratings": [5, 9], "k": 2})
    assert outside.status_code == 422 and outside.json()["detail"].startswith("ratings[1]:"), outside.text
    assert "[1.0, 5.0]" in outside.json()["detail"]
