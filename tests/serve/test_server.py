"""The real service in a child process on loopback: answers, every kind of bad input, tokens, new items, reload, metrics.

Every request has a timeout and every loop a bound on its count and its time, so a broken
server fails the test instead of hanging it. Ports are chosen by the server (port 0).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
import time

import pytest
from servekit import TOKEN, toy_bundle

from cdtl.serve.server import ServiceProcess

pytestmark = pytest.mark.slow  # each test starts the service in its own process

START_TIMEOUT = 240.0  # seconds for the child to load torch, the encoder and the bundle on a busy machine


@pytest.fixture(scope="module")
def bundles(tmp_path_factory):
    root = tmp_path_factory.mktemp("http")
    return toy_bundle(root / "one", seed=0), toy_bundle(root / "two", seed=1)


@pytest.fixture(scope="module")
def svc(bundles):
    service = ServiceProcess(bundles[0], token=TOKEN, ready_timeout=START_TIMEOUT)
    service.start()
    yield service
    service.stop()
    service._dir.cleanup()


def test_health_ready_and_the_three_kinds_of_user(svc):
    assert svc.get("/health") == (200, {"status": "ok"})
    status, ready = svc.get("/ready")
    assert status == 200 and ready["status"] == "ready" and ready["index"] == "exact" and ready["n_items"] == 12
    status, warm = svc.post("/recommend", {"user": "u01", "k": 3})
    assert status == 200 and warm["scorer"] == "mf" and len(warm["items"]) == 3
    assert abs(sum(warm["weights"].values()) - 1) < 1e-6 and warm["bundle"] == ready["bundle"]["id"]
    status, cold = svc.post("/recommend", {"history": ["b1", "b2", "f3", "nope"], "ratings": [5, 4, 3, 1], "k": 4})
    assert status == 200 and cold["scorer"] == "bridge" and cold["unknown_items"] == ["f3", "nope"]
    assert cold["history_used"] == 2 and len(cold["items"]) == 4
    status, nobody = svc.post("/recommend", {"history": ["nope"]})
    assert status == 200 and nobody["scorer"] == "fallback" and nobody["unknown_items"] == ["nope"]
    status, similar = svc.post("/similar-items", {"item": "f1", "k": 2})
    assert status == 200 and len(similar["items"]) == 2 and "f1" not in [i["item"] for i in similar["items"]]


BAD = [  # (body or raw bytes, status, the field the answer must name)
    ({"user": "u01", "k": 0}, 422, "k"),
    ({"user": "u01", "k": -5}, 422, "k"),
    ({"user": "u01", "k": 10**12}, 422, "k"),
    ({"user": "u01", "k": "10"}, 422, "k"),
    ({"user": "u01", "k": 2.5}, 422, "k"),
    ({"user": "u01", "exclude_seen": "yes"}, 422, "exclude_seen"),
    ({"user": ["u01"]}, 422, "user"),
    ({"user": True}, 422, "user"),
    ({"user": "no-such-user"}, 404, "user"),
    ({"history": []}, 422, "history"),
    ({"history": "b1"}, 422, "history"),
    ({"history": ["b1", 2.5]}, 422, "history[1]"),
    ({"history": [str(i) for i in range(100_000)]}, 422, "history"),
    ({"history": ["b1"], "ratings": [9]}, 422, "ratings[0]"),
    ({"history": ["b1", "b2"], "ratings": [4]}, 422, "ratings"),
    ({"user": "u01", "history": ["b1"]}, 422, "user"),
    ({}, 422, "user"),
    ({"user": "u01", "colour": "red"}, 422, "colour"),
    ([1, 2, 3], 422, "body"),
    (b"{\"user\": \"u01\",", 400, "body"),
    (b"not json at all", 400, "body"),
    (b"", 422, "body"),
    (b"x" * (5 * 1024 * 1024), 413, "body"),
]


@pytest.mark.parametrize("body, status, field", BAD, ids=lambda v: str(v)[:40] if not isinstance(v, int) else str(v))
def test_bad_input_is_a_4xx_that_names_the_field(svc, body, status, field):
    raw = body if isinstance(body, bytes) else None
    got, answer = svc.post("/recommend", None if raw is not None else body, raw=raw, timeout=60)
    assert got == status, answer
    assert answer["detail"].startswith(f"{field}:") or any(e["field"] == field for e in answer["errors"]), answer


@pytest.mark.parametrize("body, status, field", [
    ({"item": "no-such-item"}, 404, "item"),
    ({"item": "f1", "text": "both"}, 422, "item"),
    ({"text": ""}, 422, "text"),
    ({"text": "x" * 5000}, 422, "text"),
    ({"item": "f1", "k": 0}, 422, "k"),
])
def test_bad_similar_items_requests(svc, body, status, field):
    got, answer = svc.post("/similar-items", body, timeout=60)
    assert got == status and answer["detail"].startswith(f"{field}:"), answer


def test_writes_need_the_token_and_a_new_item_is_found_by_its_own_text(svc):
    item = {"item": "f-new", "text": "A comedy film about a penguin who opens a bakery", "title": "Penguin Bakery"}
    status, answer = svc.post("/items", item)
    assert status == 401 and answer["detail"].startswith("authorization:")
    assert svc.post("/items", item, token="not-the-token-at-all")[0] == 401
    assert svc.post("/items", {**item, "extra": 1}, token=TOKEN)[0] == 422
    status, added = svc.post("/items", item, token=TOKEN)
    assert status == 201 and added["n_items"] == 13
    status, similar = svc.post("/similar-items", {"text": item["text"], "k": 1})
    assert status == 200 and similar["items"][0]["item"] == "f-new"
    status, recs = svc.post("/recommend", {"history": ["b1"], "k": 13})
    assert "f-new" in [i["item"] for i in recs["items"]]
    assert svc.post("/items", item, token=TOKEN)[0] == 409


def test_reload_under_concurrent_requests_fails_no_request(svc, bundles):
    results: list[tuple[int, str]] = []
    stop = threading.Event()

    def client() -> None:
        deadline = time.monotonic() + 120
        for n in range(400):  # bounded in count and in time
            if stop.is_set() or time.monotonic() > deadline:
                return
            status, answer = svc.post("/recommend", {"history": ["b1", "b4"], "k": 3}, timeout=60)
            results.append((status, answer.get("bundle") if isinstance(answer, dict) else None))

    threads = [threading.Thread(target=client) for _ in range(4)]
    for t in threads:
        t.start()
    reloads = []
    for target in (bundles[1], bundles[0]):
        time.sleep(0.5)
        reloads.append(svc.post("/reload", {"bundle": str(target)}, token=TOKEN, timeout=120))
    time.sleep(0.5)
    stop.set()
    for t in threads:
        t.join(150)
    assert [r[0] for r in reloads] == [200, 200], reloads
    assert reloads[1][1]["carried_items"] >= 0 and reloads[0][1]["previous"] != reloads[0][1]["bundle"]["id"]
    assert results and all(status == 200 for status, _ in results)
    assert len({bundle for _, bundle in results}) >= 1


def test_a_bad_reload_is_refused_and_the_old_bundle_keeps_serving(svc, bundles, tmp_path):
    broken = tmp_path / "broken"
    shutil.copytree(bundles[1], broken)
    (broken / "fusion.safetensors").write_bytes(b"changed")
    status, answer = svc.post("/reload", {"bundle": str(broken)}, token=TOKEN, timeout=120)
    assert status == 422 and "fusion.safetensors" in answer["detail"]
    assert svc.post("/reload", {"bundle": str(broken)})[0] == 401
    assert svc.post("/recommend", {"user": "u01"})[0] == 200


def test_metrics_count_requests_latency_errors_and_fallbacks(svc):
    svc.post("/recommend", {"history": ["nope"]})
    svc.post("/recommend", {"user": "u01", "k": 0})
    status, text = svc.get("/metrics")
    assert status == 200
    for needle in ('cdtl_requests_total{endpoint="/recommend",status="200"}', 'cdtl_request_seconds_bucket{endpoint="/recommend"',
                   'cdtl_errors_total{endpoint="/recommend",kind="4xx"}', 'cdtl_recommendations_total{scorer="fallback"}',
                   "cdtl_fallbacks_total", "cdtl_catalogue_items", "cdtl_bundle_info{bundle="):
        assert needle in text, needle
    assert 'endpoint="/no-such-path"' not in text


def test_openapi_documents_every_endpoint_with_examples(svc):
    status, doc = svc.get("/openapi.json")
    assert status == 200
    assert {"/health", "/ready", "/recommend", "/similar-items", "/items", "/reload", "/metrics"} <= set(doc["paths"])
    schemas = doc["components"]["schemas"]
    for name in ("RecommendRequest", "RecommendResponse", "SimilarRequest", "NewItemRequest"):
        assert schemas[name].get("examples"), name
    assert schemas["RecommendRequest"]["properties"]["k"]["maximum"] == 1000
    assert schemas["RecommendRequest"]["additionalProperties"] is False


def _serve(args: list[str], env: dict[str, str], timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "cdtl.cli", "serve", *args, "--host", "127.0.0.1", "--port", "0"],
                          capture_output=True, text=True, env=env, timeout=timeout)


def test_no_token_no_writable_service(bundles):
    env = {k: v for k, v in os.environ.items() if k != "CDTL_SERVE_TOKEN"}
    done = _serve([str(bundles[0])], env)
    assert done.returncode == 2 and "need a token" in done.stderr


def test_a_tampered_bundle_refuses_to_start_naming_the_file(bundles, tmp_path):
    broken = tmp_path / "broken"
    shutil.copytree(bundles[0], broken)
    serving = json.loads((broken / "serving.json").read_text())
    serving["target"] = "books"
    (broken / "serving.json").write_text(json.dumps(serving))
    done = _serve([str(broken)], {**os.environ, "CDTL_SERVE_TOKEN": TOKEN})
    assert done.returncode == 2 and "serving.json: sha256" in done.stderr


def test_a_read_only_service_needs_no_token_and_refuses_writes(bundles):
    env = {k: v for k, v in os.environ.items() if k != "CDTL_SERVE_TOKEN"}
    with ServiceProcess(bundles[0], read_only=True, env=env, ready_timeout=START_TIMEOUT) as service:
        status, answer = service.post("/items", {"item": "x", "text": "y"}, token=TOKEN)
        assert status == 403 and "read-only" in answer["detail"]
        assert service.post("/recommend", {"user": "u01"})[0] == 200
