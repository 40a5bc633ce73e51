"""Open-loop load: requests sent on a clock at a fixed offered rate, latency counted from each request's scheduled time.

A closed loop (``cdtl.serve.loadtest.run_load``) sends a client's next request only when
its last answer has arrived, so a server that slows down also slows its load, and the
requests that would have waited are never sent: the reported p99 flatters the server
(coordinated omission). Here the send times are fixed before the run, Poisson (random
exponential gaps, seeded) or uniform, at ``rate`` requests per second, whatever the
server does. A request whose time has come is sent on an idle keep-alive connection, or
on a new one, up to ``max_connections`` in flight; beyond that it waits for one. Its
latency runs from its *scheduled* time to its answer, so time spent queued (in the
client, the kernel or the server) counts. ``lag`` (sent minus scheduled) shows how much
of that was the client's own queue.

``sweep`` offers rising rates until the p99 passes a limit (saturation) and returns one
row per rate; ``urls`` may name several replicas, which get the requests in turn (client
round robin).
"""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any
from urllib.parse import urlsplit

import numpy as np
import pandas as pd

from cdtl.serve.loadtest import TIMEOUT, _encode, _read_response

ARRIVALS = ("poisson", "uniform")
COLUMNS = ["kind", "target", "scheduled", "lag", "latency", "status"]
ERRORS = (OSError, asyncio.TimeoutError, asyncio.IncompleteReadError, ConnectionError, ValueError, IndexError)


def schedule(rate: float, seconds: float, arrivals: str = "poisson", seed: int = 0) -> np.ndarray:
    """Send times (seconds from the start) of a run at ``rate`` per second for ``seconds``: Poisson or uniform gaps."""
    if not rate > 0 or not seconds > 0:
        raise ValueError(f"rate and seconds must be positive, got rate={rate!r}, seconds={seconds!r}")
    if arrivals not in ARRIVALS:
        raise ValueError(f"arrivals must be one of {ARRIVALS}, got {arrivals!r}")
    n = max(1, int(round(rate * seconds)))
    if arrivals == "uniform":
        return np.arange(n) / rate
    gaps = np.random.default_rng(seed).exponential(1.0 / rate, n)
    times = np.concatenate([[0.0], np.cumsum(gaps[:-1])])
    return times[times < seconds] if (times < seconds).any() else times[:1]


class _Target:
    """One replica: its address and its idle keep-alive connections."""

    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        if not parts.hostname or not parts.port:
            raise ValueError(f"a load target needs a host and a port, e.g. http://127.0.0.1:8000; got {url!r}")
        self.url, self.host, self.port = url, parts.hostname, parts.port
        self.idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []

    async def send(self, payload: bytes, timeout: float) -> int:
        """One request on an idle connection (or a new one); its HTTP status."""
        reader, writer = self.idle.pop() if self.idle else await asyncio.wait_for(
            asyncio.open_connection(self.host, self.port), timeout)
        try:
            writer.write(payload)
            status, keep_alive = await asyncio.wait_for(_read_response(reader), timeout)
        except BaseException:
            writer.close()
            raise
        if keep_alive:
            self.idle.append((reader, writer))
        else:
            writer.close()
        return status

    def close(self) -> None:
        for _, writer in self.idle:
            writer.close()
        self.idle.clear()


async def _drive(urls: list[str], requests: list[tuple[str, str, Any]], times: np.ndarray, max_connections: int,
                 timeout: float) -> list[tuple]:
    targets = [_Target(u) for u in urls]
    plans = [[(kind, _encode(t.host, t.port, "GET" if body is None else "POST", path, body)) for kind, path, body in requests]
             for t in targets]
    slots = asyncio.Semaphore(max_connections)
    records: list[tuple] = []
    start = time.perf_counter() + 0.05

    async def one(i: int) -> None:
        scheduled = start + times[i]
        which = i % len(targets)
        kind, payload = plans[which][i % len(requests)]
        async with slots:  # beyond max_connections in flight, a request waits here: its latency keeps running
            sent = time.perf_counter()
            try:
                status = await targets[which].send(payload, timeout)
            except ERRORS:
                status = -1
        records.append((kind, which, times[i], sent - scheduled, time.perf_counter() - scheduled, status))

    tasks = []
    for i in range(len(times)):
        delay = start + times[i] - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(i)))
    await asyncio.gather(*tasks)
    for target in targets:
        target.close()
    return records


def run_open_loop(urls: str | list[str], requests: list[tuple[str, str, Any]], *, rate: float, seconds: float,
                  arrivals: str = "poisson", seed: int = 0, max_connections: int = 256,
                  timeout: float = TIMEOUT) -> pd.DataFrame:
    """One row per scheduled request: ``kind``, ``target`` (replica index), ``scheduled`` (s from start), ``lag``,
    ``latency`` (s from the scheduled time to the answer) and ``status`` (-1: no answer within ``timeout``).

    ``requests`` lists ``(kind, path, json_body)`` (a GET when the body is None), sent in turn.
    """
    urls = [urls] if isinstance(urls, str) else list(urls)
    if not urls or not requests or max_connections < 1:
        raise ValueError("run_open_loop needs at least one url, one request and max_connections >= 1")
    times = schedule(rate, seconds, arrivals, seed)
    out: dict[str, Any] = {}

    def target() -> None:
        try:
            out["records"] = asyncio.run(_drive(urls, requests, times, max_connections, timeout))
        except BaseException as err:  # re-raised in the caller's thread
            out["error"] = err

    thread = threading.Thread(target=target, name="cdtl-open-loop", daemon=True)
    thread.start()
    thread.join(seconds + 4 * timeout + 10)
    if thread.is_alive():
        raise TimeoutError(f"the open-loop run did not finish within {seconds + 4 * timeout + 10:.0f} s")
    if "error" in out:
        raise out["error"]
    return pd.DataFrame(out["records"], columns=COLUMNS).sort_values("scheduled", kind="stable").reset_index(drop=True)


def summarize_open(records: pd.DataFrame, rate: float, seconds: float) -> dict[str, float]:
    """Offered and answered rates, p50/p99/max latency from the schedule (ms), the client's p99 lag, and errors."""
    ok = (records["status"] >= 200) & (records["status"] < 300)
    ms = records["latency"].to_numpy() * 1000
    span = float((records["scheduled"] + records["latency"]).max()) if len(records) else float("nan")
    return {"offered_per_s": rate, "sent": len(records), "answered_per_s": int(ok.sum()) / max(span, seconds),
            "p50_ms": float(np.percentile(ms, 50)), "p99_ms": float(np.percentile(ms, 99)), "max_ms": float(ms.max()),
            "client_lag_p99_ms": float(np.percentile(records["lag"].to_numpy() * 1000, 99)),
            "errors": int((~ok).sum())}


def sweep(urls: str | list[str], requests: list[tuple[str, str, Any]], rates: list[float], *, seconds: float = 10.0,
          p99_limit_ms: float = 100.0, arrivals: str = "poisson", seed: int = 0, max_connections: int = 256,
          on_row: Any = None) -> pd.DataFrame:
    """Offer each rate in turn (rising) for ``seconds``; stop after the first whose p99 passes ``p99_limit_ms``
    or that has errors in more than 1% of its requests (saturation). One row per rate offered."""
    rows = []
    for i, rate in enumerate(sorted(rates)):
        records = run_open_loop(urls, requests, rate=rate, seconds=seconds, arrivals=arrivals, seed=seed + i,
                                max_connections=max_connections)
        row = summarize_open(records, rate, seconds)
        row["saturated"] = row["p99_ms"] > p99_limit_ms or row["errors"] > 0.01 * row["sent"]
        rows.append(row)
        if on_row is not None:
            on_row(row)
        if row["saturated"]:
            break
    return pd.DataFrame(rows)


__all__ = ["ARRIVALS", "run_open_loop", "schedule", "summarize_open", "sweep"]
