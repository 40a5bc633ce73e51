"""Two real service processes on one added-item store: each serves the other's items, a race on one id has one winner.

Also over real HTTP: a chunked body over the limit gets 413 and is counted, and a damaged
store is named in the log while the bundle alone serves. Every request has a timeout and
every wait a deadline.
"""

from __future__ import annotations

import http.client
import threading
import time

import pytest
from servekit import TOKEN, toy_bundle

from cdtl.serve.server import ServiceProcess

pytestmark = pytest.mark.slow  # each test starts service processes

START_TIMEOUT = 240.0


def _served(svc: ServiceProcess) -> dict[str, str]:
    n = svc.get("/ready")[1]["n_items"]
    status, answer = svc.post("/recommend", {"history": ["b1"], "k": n})
    assert status == 200, answer
    return {i["item"]: i["title"] for i in answer["items"]}


def _until(check, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.1)
    raise TimeoutError(f"{what} did not happen within {timeout:.0f} s")


def test_two_replicas_share_one_store_and_a_restart_keeps_it(tmp_path):
    bundle = toy_bundle(tmp_path / "toy")
    args = ["--items-store", str(tmp_path / "shared" / "items.jsonl"), "--store-refresh", "0.2"]
    a = ServiceProcess(bundle, token=TOKEN, ready_timeout=START_TIMEOUT, extra_args=args)
    b = ServiceProcess(bundle, token=TOKEN, ready_timeout=START_TIMEOUT, extra_args=args)
    with a, b:
        item = {"item": "f-penguin", "text": "A comedy film about a penguin who opens a bakery"}
        assert a.post("/items", item, token=TOKEN)[0] == 201
        _until(lambda: "f-penguin" in _served(b), 20, "replica b serving a's item")
        statuses: dict[str, int] = {}
        start = threading.Barrier(2)

        def add(svc: ServiceProcess, name: str) -> None:
            start.wait(30)
            statuses[name] = svc.post("/items", {"item": "f-race", "text": f"A comedy film told by {name}",
                                                 "title": f"race by {name}"}, token=TOKEN)[0]

        threads = [threading.Thread(target=add, args=(svc, name)) for svc, name in ((a, "a"), (b, "b"))]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
        assert sorted(statuses.values()) == [201, 409], statuses
        winner = next(name for name, status in statuses.items() if status == 201)
        _until(lambda: _served(a) == _served(b), 20, "both replicas serving the same catalogue")
        assert _served(a)["f-race"] == f"race by {winner}"
        b.stop()
        with ServiceProcess(bundle, token=TOKEN, ready_timeout=START_TIMEOUT, extra_args=args) as again:
            assert _served(again) == _served(a) and again.get("/ready")[1]["n_items"] == 14
        assert "added items in" in a.log() and "items.jsonl" in a.log()


def _chunked_post(svc: ServiceProcess, path: str, chunks: int, size: int) -> int:
    connection = http.client.HTTPConnection(svc.host, svc.port, timeout=60)
    try:
        connection.putrequest("POST", path)
        connection.putheader("Content-Type", "application/json")
        connection.putheader("Transfer-Encoding", "chunked")
        connection.endheaders()
        block = b" " * size
        for _ in range(chunks):
            connection.send(f"{size:x}\r\n".encode() + block + b"\r\n")
        connection.send(b"0\r\n\r\n")
        return connection.getresponse().status
    finally:
        connection.close()


def test_a_chunked_body_over_the_limit_is_413_counted_and_a_damaged_store_is_named(tmp_path):
    bundle = toy_bundle(tmp_path / "toy")
    store = tmp_path / "items.jsonl"
    store.write_text('{"format": "cdtl.serve.items", "version": 1, "count": 0, "sha256": "0"}\n')
    with ServiceProcess(bundle, token=TOKEN, ready_timeout=START_TIMEOUT,
                        extra_args=["--items-store", str(store)]) as svc:
        assert _chunked_post(svc, "/recommend", 96, 64 * 1024) == 413  # 6 MiB against the 4 MiB limit
        status, metrics = svc.get("/metrics")
        assert 'cdtl_requests_total{endpoint="/recommend",status="413"} 1.0' in metrics
        status, ready = svc.get("/ready")
        assert status == 200 and ready["store"]["status"] == "damaged" and ready["n_items"] == 12
        assert svc.post("/items", {"item": "f-x", "text": "A comedy film"}, token=TOKEN)[0] == 503
        assert str(store) in svc.log() and "refused" in svc.log()
