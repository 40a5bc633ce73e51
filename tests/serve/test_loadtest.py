"""The closed-loop load test: every request sent is a row with its kind and status, summaries count errors per kind."""

from __future__ import annotations

import json
from http.server import BaseHTTPRequestHandler

import pandas as pd
import pytest
from loopback import loopback

from cdtl.serve import loadtest
from cdtl.serve.loadtest import in_process, run_load, summarize


class _Echo(BaseHTTPRequestHandler):
    """Answers 200 to every path but /broken (500); GET and POST alike."""

    protocol_version = "HTTP/1.1"

    def _answer(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        body = json.dumps({"path": self.path}).encode()
        self.send_response(500 if self.path == "/broken" else 200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = _answer

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def server():
    with loopback(_Echo) as url:
        yield url


def test_every_request_sent_is_a_row_and_errors_are_counted_per_kind(server):
    requests = [("warm", "/recommend", {"user": "u1"}), ("probe", "/health", None), ("bad", "/broken", {"x": 1})]
    records = run_load(server, requests, concurrency=3, seconds=5.0, max_requests=30)
    assert len(records) == 30 and list(records.columns) == ["kind", "start", "latency", "status"]
    assert set(records["kind"]) == {"warm", "probe", "bad"}
    assert set(records.loc[records["kind"] == "bad", "status"]) == {500}
    assert set(records.loc[records["kind"] != "bad", "status"]) == {200}
    assert (records["latency"] > 0).all()
    table = summarize(records)
    assert table.loc["all", "requests"] == 30 and table.loc["all", "errors"] == table.loc["bad", "requests"] > 0
    assert table.loc["warm", "errors"] == 0


def test_summary_numbers_are_computed_from_the_records():
    records = pd.DataFrame({"kind": ["a", "a", "b", "b"], "start": [0.0, 1.0, 0.0, 0.5],
                            "latency": [0.1, 0.3, 0.2, 0.2], "status": [200, -1, 201, 404]})
    table = summarize(records)
    assert table.loc["a", "requests"] == 2 and table.loc["a", "errors"] == 1  # no answer (-1) is an error
    assert table.loc["b", "errors"] == 1
    assert table.loc["a", "requests_per_s"] == pytest.approx(2 / 1.3)
    assert table.loc["a", "p50_ms"] == pytest.approx(200.0) and table.loc["a", "max_ms"] == pytest.approx(300.0)
    assert table.loc["all", "requests"] == 4 and table.loc["all", "errors"] == 2


def test_in_process_times_each_kind_through_the_recommender():
    calls = []

    class Fake:
        def recommend(self, user, history, k):
            calls.append(("recommend", user, k))

        def similar_items(self, item, text, k):
            calls.append(("similar", text, k))

    requests = [("warm", "/recommend", {"user": "u1", "k": 5}), ("text", "/similar-items", {"text": "a film"})]
    table = in_process(Fake(), requests, repeats=2)
    assert calls == [("recommend", "u1", 5), ("similar", "a film", 10)] * 2
    assert list(table.index) == ["warm", "text"] and (table["in_process_p50_ms"] >= 0).all()


def test_bad_arguments_are_refused_and_the_open_loop_is_reachable_here():
    with pytest.raises(ValueError, match="concurrency >= 1"):
        run_load("http://127.0.0.1:9", [("a", "/", None)], concurrency=0)
    with pytest.raises(ValueError, match="at least one request"):
        run_load("http://127.0.0.1:9", [])
    from cdtl.serve.openloop import sweep

    assert loadtest.sweep is sweep
    with pytest.raises(AttributeError, match="no attribute 'nothing'"):
        loadtest.nothing
