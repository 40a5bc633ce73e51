"""The open-loop load test counts queueing: against a server that answers one request at a time, latency from the
schedule grows with the backlog."""

from __future__ import annotations

import threading
import time
from http.server import BaseHTTPRequestHandler

import numpy as np
import pytest
from loopback import loopback

from cdtl.serve import loadtest
from cdtl.serve.openloop import run_open_loop, schedule, summarize_open, sweep

SERVICE_S = 0.02  # the slow server's time per request: at most 50 answers per second


class _Slow(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as the service speaks
    lock = threading.Lock()  # one request at a time: a queue forms when more than 50 arrive per second

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        with self.lock:
            time.sleep(SERVICE_S)
        body = b'{"ok": true}'
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def slow_server():
    with loopback(_Slow) as url:
        yield url


REQUESTS = [("warm", "/recommend", {"user": "1"})]


def test_latency_from_the_schedule_counts_the_backlog(slow_server):
    rate, seconds = 100.0, 1.0  # twice what the server can answer: the backlog grows by 50 requests a second
    records = run_open_loop(slow_server, REQUESTS, rate=rate, seconds=seconds, arrivals="uniform", max_connections=128)
    assert len(records) == 100 and (records["status"] == 200).all()
    # one at a time, the server's j-th answer comes at the earliest (j + 1) service times after the start, whichever
    # request it answers; so the latencies from the schedule add up to at least that minus the scheduled times
    done = np.sort((records["scheduled"] + records["latency"]).to_numpy())
    served = (np.arange(len(done)) + 1) * SERVICE_S
    assert (done >= 0.9 * served).all()
    floor = (served.sum() - records["scheduled"].sum()) / len(records)  # 0.02 x 50.5 - 0.495 = 0.515 s
    assert records["latency"].mean() >= 0.9 * floor > 20 * SERVICE_S  # the queue, not one service time
    summary = summarize_open(records, rate, seconds)
    assert summary["p99_ms"] > 800 and summary["answered_per_s"] < 55  # the server's capacity, not the offer


def test_a_closed_loop_would_have_reported_the_service_time_alone(slow_server):
    closed = loadtest.run_load(slow_server, REQUESTS, concurrency=1, seconds=0.5)  # the flattering measurement
    assert closed["latency"].quantile(0.99) < 0.2  # about one service time: no backlog is ever seen


def test_below_capacity_latency_is_about_the_service_time(slow_server):
    records = run_open_loop(slow_server, REQUESTS, rate=20.0, seconds=1.0, arrivals="uniform")
    assert (records["status"] == 200).all() and records["latency"].median() < 0.2


def test_sweep_stops_at_saturation(slow_server):
    # at 200/s the backlog reaches ~75 requests (p99 ~1.5 s); the limit leaves a busy test machine room at 10/s
    rows = sweep(slow_server, REQUESTS, [10.0, 200.0, 400.0], seconds=0.5, p99_limit_ms=500.0, arrivals="uniform")
    assert list(rows["offered_per_s"]) == [10.0, 200.0]  # 400 never offered: 200 already saturated the server
    assert list(rows["saturated"]) == [False, True]


def test_requests_go_to_the_replicas_in_turn(slow_server):
    records = run_open_loop([slow_server, slow_server], REQUESTS, rate=20.0, seconds=0.5, arrivals="uniform")
    assert list(records["target"][:4]) == [0, 1, 0, 1]


def test_schedules_are_seeded_and_have_the_offered_rate():
    a, b = schedule(200.0, 5.0, "poisson", seed=3), schedule(200.0, 5.0, "poisson", seed=3)
    assert np.array_equal(a, b) and abs(len(a) / 5.0 - 200) < 30
    assert np.allclose(np.diff(schedule(50.0, 1.0, "uniform")), 0.02)
    with pytest.raises(ValueError, match="arrivals must be one of"):
        schedule(1.0, 1.0, "bursty")
    assert loadtest.run_open_loop is run_open_loop  # the load test module offers both modes
