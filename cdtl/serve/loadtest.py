"""Concurrent HTTP clients that measure a running service: throughput, latency percentiles and errors, per request kind.

``run_load`` opens ``concurrency`` keep-alive connections and has each send requests
back to back (a closed loop: a client sends its next request when the previous answer
has arrived) until ``seconds`` have passed or ``max_requests`` were sent, whichever comes
first. The client speaks plain HTTP/1.1 over asyncio streams, so it costs little CPU of
its own next to the server it measures. Each request's kind (warm, cold, new-item...)
is kept, so one run reports each kind apart. Every read has a timeout: a hung server is
an error, never a hung test.

``run_load`` runs its event loop in a thread of its own, so it also works from a
notebook, whose loop is already running.

A closed loop slows its load down when the server slows down, so its p99 flatters a
saturated server (coordinated omission). The open-loop mode, ``run_open_loop`` and
``sweep`` (``cdtl.serve.openloop``, also reachable here), sends on a clock at a fixed
rate and measures latency from each request's scheduled time.
"""

from __future__ import annotations

import asyncio
import json
import os
import threading
import time
from typing import Any
from urllib.parse import urlsplit

import numpy as np
import pandas as pd

TIMEOUT = 10.0  # seconds a request may take before it counts as an error


def _encode(host: str, port: int, method: str, path: str, body: Any) -> bytes:
    data = b"" if body is None else json.dumps(body).encode()
    head = (f"{method} {path} HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(data)}\r\nConnection: keep-alive\r\n\r\n")
    return head.encode() + data


async def _read_response(reader: asyncio.StreamReader) -> tuple[int, bool]:
    """(status, keep_alive) of one response, its body read and dropped."""
    status_line = await reader.readline()
    if not status_line:
        raise ConnectionError("the server closed the connection")
    status = int(status_line.split()[1])
    length, keep_alive = 0, True
    while True:
        line = await reader.readline()
        if line in (b"\r\n", b"\n", b""):
            break
        name, _, value = line.decode("latin-1").partition(":")
        name = name.strip().lower()
        if name == "content-length":
            length = int(value.strip())
        elif name == "connection" and value.strip().lower() == "close":
            keep_alive = False
    if length:
        await reader.readexactly(length)
    return status, keep_alive


async def _client(host: str, port: int, plan: list[tuple[str, bytes]], offset: int, stop_at: float,
                  budget: dict[str, int], records: list[tuple[str, float, float, int]]) -> None:
    reader = writer = None
    i = offset
    while time.perf_counter() < stop_at and budget["left"] > 0:
        budget["left"] -= 1
        kind, payload = plan[i % len(plan)]
        i += 1
        started = time.perf_counter()
        try:
            if writer is None:
                reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), TIMEOUT)
            writer.write(payload)
            status, keep_alive = await asyncio.wait_for(_read_response(reader), TIMEOUT)
        except (OSError, asyncio.TimeoutError, asyncio.IncompleteReadError, ConnectionError, ValueError, IndexError):
            status, keep_alive = -1, False  # no answer: an error, and a fresh connection for the next request
        records.append((kind, started, time.perf_counter() - started, status))
        if not keep_alive and writer is not None:
            writer.close()
            reader = writer = None
    if writer is not None:
        writer.close()


async def _drive(url: str, requests: list[tuple[str, str, Any]], concurrency: int, seconds: float,
                 max_requests: int) -> list[tuple[str, float, float, int]]:
    parts = urlsplit(url)
    host, port = parts.hostname, parts.port
    plan = [(kind, _encode(host, port, "GET" if body is None else "POST", path, body)) for kind, path, body in requests]
    records: list[tuple[str, float, float, int]] = []
    budget = {"left": int(max_requests)}
    stop_at = time.perf_counter() + seconds
    step = max(1, len(plan) // concurrency)
    await asyncio.gather(*(_client(host, port, plan, c * step, stop_at, budget, records) for c in range(concurrency)))
    return records


def run_load(url: str, requests: list[tuple[str, str, Any]], *, concurrency: int = 16, seconds: float = 10.0,
             max_requests: int = 100_000) -> pd.DataFrame:
    """One row per request sent: ``kind``, ``start`` and ``latency`` (seconds), ``status`` (-1: no answer).

    ``requests`` lists ``(kind, path, json_body)``: a POST of the body, or a GET when the
    body is None; the clients cycle through it, each starting at a different place.
    """
    if concurrency < 1 or seconds <= 0 or max_requests < 1 or not requests:
        raise ValueError("run_load needs concurrency >= 1, seconds > 0, max_requests >= 1 and at least one request")
    out: dict[str, Any] = {}

    def target() -> None:
        try:
            out["records"] = asyncio.run(_drive(url, requests, concurrency, seconds, max_requests))
        except BaseException as err:  # re-raised in the caller's thread
            out["error"] = err

    thread = threading.Thread(target=target, name="cdtl-load", daemon=True)
    thread.start()
    thread.join(seconds + 4 * TIMEOUT)
    if thread.is_alive():
        raise TimeoutError(f"the load run did not finish within {seconds + 4 * TIMEOUT:.0f} s")
    if "error" in out:
        raise out["error"]
    return pd.DataFrame(out["records"], columns=["kind", "start", "latency", "status"])


def summarize(records: pd.DataFrame, *, by: str = "kind") -> pd.DataFrame:
    """Per kind (and ``all``): requests, errors (non-2xx or no answer), throughput and latency percentiles in ms."""
    rows = []
    groups = [*records.groupby(by, sort=False)] + [("all", records)]
    for name, part in groups:
        span = (part["start"] + part["latency"]).max() - part["start"].min() if len(part) else 0.0
        ms = part["latency"].to_numpy() * 1000
        ok = (part["status"] >= 200) & (part["status"] < 300)
        rows.append({by: name, "requests": len(part), "errors": int((~ok).sum()),
                     "requests_per_s": len(part) / span if span > 0 else float("nan"),
                     "p50_ms": float(np.percentile(ms, 50)) if len(ms) else float("nan"),
                     "p95_ms": float(np.percentile(ms, 95)) if len(ms) else float("nan"),
                     "p99_ms": float(np.percentile(ms, 99)) if len(ms) else float("nan"),
                     "max_ms": float(ms.max()) if len(ms) else float("nan")})
    return pd.DataFrame(rows).set_index(by)


def in_process(recommender: Any, requests: list[tuple[str, str, Any]], *, repeats: int = 3) -> pd.DataFrame:
    """The same recommendations computed in-process (no HTTP): per kind, p50 and p99 in ms: the floor HTTP adds to."""
    rows = []
    quiet = os.environ.get("CDTL_PROGRESS")
    os.environ["CDTL_PROGRESS"] = "0"  # no progress bar for each one-text encoding
    try:
        _time_in_process(recommender, requests, repeats, rows)
    finally:
        if quiet is None:
            os.environ.pop("CDTL_PROGRESS", None)
        else:
            os.environ["CDTL_PROGRESS"] = quiet
    frame = pd.DataFrame(rows, columns=["kind", "ms"])
    return frame.groupby("kind", sort=False)["ms"].describe(percentiles=[0.5, 0.99])[["50%", "99%"]].rename(
        columns={"50%": "in_process_p50_ms", "99%": "in_process_p99_ms"})


def _time_in_process(recommender: Any, requests: list[tuple[str, str, Any]], repeats: int, rows: list) -> None:
    for _ in range(repeats):
        for kind, path, body in requests:
            started = time.perf_counter()
            if path == "/recommend":
                recommender.recommend(body.get("user"), body.get("history"), k=body.get("k", 10))
            else:
                recommender.similar_items(body.get("item"), body.get("text"), k=body.get("k", 10))
            rows.append((kind, (time.perf_counter() - started) * 1000))


OPEN_LOOP = ("run_open_loop", "schedule", "summarize_open", "sweep")


def __getattr__(name: str) -> Any:  # the open-loop mode lives in cdtl.serve.openloop, which builds on this module
    if name in OPEN_LOOP:
        from cdtl.serve import openloop

        return getattr(openloop, name)
    raise AttributeError(f"module 'cdtl.serve.loadtest' has no attribute {name!r}")


__all__ = ["in_process", "run_load", "summarize", *OPEN_LOOP]
