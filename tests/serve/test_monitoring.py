"""The service's Prometheus metrics: every request counted by endpoint and status, errors by kind."""

from __future__ import annotations

from edges_app import MAX_BODY, app  # noqa: F401  (fixture)
from serveapp import bounded

from cdtl.serve.monitoring import ServiceMetrics


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


def test_requests_are_counted_by_endpoint_and_a_probes_503_is_no_error():
    counts = ServiceMetrics({"/recommend", "/ready"})
    counts.observe("/recommend", 200, 0.003)
    counts.observe("/recommend", 422, 0.001)
    counts.observe("/secret/path", 404, 0.001)  # an unknown path is "other", never a label of its own
    counts.observe("/ready", 503, 0.001)
    counts.serving("bundle-a", 12)
    counts.serving("bundle-b", 13)
    text = counts.exposition()[0].decode()
    assert 'cdtl_requests_total{endpoint="/recommend",status="200"} 1.0' in text
    assert 'cdtl_errors_total{endpoint="/recommend",kind="4xx"} 1.0' in text
    assert 'cdtl_errors_total{endpoint="other",kind="4xx"} 1.0' in text and "/secret/path" not in text
    assert 'endpoint="/ready",kind' not in text
    assert 'cdtl_request_seconds_count{endpoint="/recommend"} 2.0' in text
    assert 'cdtl_bundle_info{bundle="bundle-b"} 1.0' in text and "bundle-a" not in text
    assert "cdtl_catalogue_items 13.0" in text
