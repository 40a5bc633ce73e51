"""Prometheus metrics of the service: requests, latency, errors, how users were served, catalogue, bundle and item store.

Each app has its own registry (two services in one process never mix counts), served at
``GET /metrics`` in the Prometheus text format. ``MetricsMiddleware`` times every request
at the ASGI level, outside every other layer, so every answer is counted (a 413 or a
400 for a malformed body too) and its latency includes validation and serialisation; the endpoint
label is the route's path, or ``other`` for unknown paths (a scan of random URLs cannot
blow up the number of series).
"""

from __future__ import annotations

import time
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

PROBES = {"/health", "/ready"}
LATENCY_BUCKETS = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0)


class ServiceMetrics:
    """The service's counters, histograms and gauges in one registry."""

    def __init__(self, endpoints: set[str]) -> None:
        self.endpoints = endpoints
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter("cdtl_requests", "HTTP requests answered", ["endpoint", "status"], registry=r)
        self.latency = Histogram("cdtl_request_seconds", "Time from request to response", ["endpoint"],
                                 buckets=LATENCY_BUCKETS, registry=r)
        self.errors = Counter("cdtl_errors", "Answers with a 4xx or 5xx status", ["endpoint", "kind"], registry=r)
        self.served = Counter("cdtl_recommendations", "Recommendations by the user's path", ["scorer"], registry=r)
        self.fallbacks = Counter("cdtl_fallbacks", "Recommendations served by the fallback (popularity)", registry=r)
        self.unknown_history = Counter("cdtl_unknown_history_items", "History ids the scorer did not know (not used)", registry=r)
        self.items_added = Counter("cdtl_items_added", "Items added through POST /items", registry=r)
        self.reloads = Counter("cdtl_reloads", "Bundle reloads", ["outcome"], registry=r)
        self.store_reads = Counter("cdtl_store_reads", "Reads of the added-item store (start, reload, refresh, add)",
                                   ["outcome"], registry=r)
        self.catalogue = Gauge("cdtl_catalogue_items", "Target items the service recommends", registry=r)
        self.bundle = Gauge("cdtl_bundle_info", "The bundle being served (value 1)", ["bundle"], registry=r)

        self._children: dict[tuple, Any] = {}  # labelled series, looked up once each

    def endpoint(self, path: str) -> str:
        return path if path in self.endpoints else "other"

    def child(self, metric: Any, *labels: str) -> Any:
        """``metric.labels(*labels)``, cached: the service labels the same few series on every request."""
        key = (id(metric), *labels)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = metric.labels(*labels)
        return child

    def observe(self, path: str, status: int, seconds: float) -> None:
        endpoint = self.endpoint(path)
        self.child(self.requests, endpoint, str(status)).inc()
        self.child(self.latency, endpoint).observe(seconds)
        if status >= 400 and endpoint not in PROBES:  # a probe's 503 while loading is its answer, not an error
            self.child(self.errors, endpoint, "5xx" if status >= 500 else "4xx").inc()

    def serving(self, bundle_id: str, n_items: int) -> None:
        """Mark ``bundle_id`` as the one served, with its catalogue size."""
        self.bundle.clear()
        self.bundle.labels(bundle_id).set(1)
        self.catalogue.set(n_items)

    def exposition(self) -> tuple[bytes, str]:
        return generate_latest(self.registry), CONTENT_TYPE_LATEST


class MetricsMiddleware:
    """Pure ASGI middleware: status and latency of every HTTP request into ``ServiceMetrics``."""

    def __init__(self, app: Any, metrics: ServiceMetrics) -> None:
        self.app, self.metrics = app, metrics

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = {"code": 500}

        async def watch(message: dict) -> None:
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, watch)
        finally:
            self.metrics.observe(scope["path"], status["code"], time.perf_counter() - started)


__all__ = ["LATENCY_BUCKETS", "MetricsMiddleware", "ServiceMetrics"]
