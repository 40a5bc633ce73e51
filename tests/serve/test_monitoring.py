"""The service's Prometheus metrics: every request counted by endpoint and status, errors by kind."""

from __future__ import annotations

from edges_app import MAX_BODY, app  # noqa: F401  (fixture)
from serveapp import bounded


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
