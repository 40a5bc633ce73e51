"""In-process services for the serving tests: apps made by ``create_app`` on a toy bundle, behind FastAPI's TestClient.

Every app loads its own ``Recommender`` (an app changes its catalogue), but all share
one text encoder, loaded once per bundle path. Waits are bounded: a broken app fails
the test instead of hanging it.
"""

from __future__ import annotations

import contextlib
import functools
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient
from servekit import TOKEN

from cdtl.serve.app import create_app, fastapi_app
from cdtl.serve.bundle import read_bundle
from cdtl.serve.loading import load_encoder
from cdtl.serve.recommender import Recommender

AUTH = {"Authorization": f"Bearer {TOKEN}"}


@functools.cache
def _encoder(bundle: str) -> Any:
    return load_encoder(read_bundle(Path(bundle)))[0]


def load(path: Path) -> Recommender:
    """A recommender for ``path`` with the shared encoder (``create_app``'s ``load``)."""
    bundle = read_bundle(path)
    return Recommender(bundle, encoder=_encoder(str(path)))


def wait_for(check: Callable[[], Any], timeout: float = 30.0, what: str = "the condition") -> Any:
    """``check()``'s first truthy value, polled every 50 ms for at most ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.05)
    raise TimeoutError(f"{what} did not happen within {timeout:.0f} s")


def bounded(call: Callable[[], Any], seconds: float = 60.0) -> Any:
    """``call()``'s value, or a failure if it takes more than ``seconds`` (it runs in a daemon thread: a hang fails)."""
    result: dict[str, Any] = {}

    def run() -> None:
        try:
            result["value"] = call()
        except BaseException as err:  # handed to the test's thread below
            result["error"] = err

    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    worker.join(seconds)
    if worker.is_alive():
        raise AssertionError(f"no answer within {seconds:.0f} s")
    if "error" in result:
        raise result["error"]
    return result["value"]


@contextlib.contextmanager
def running(bundle: Path, *, token: str | None = TOKEN, **options: Any) -> Iterator[TestClient]:
    """A started app on ``bundle`` (``options`` go to ``create_app``), once ``GET /ready`` answers 200."""
    app = create_app(bundle, token=token, load=load, **options)
    with TestClient(app) as client:
        client.service = fastapi_app(app).state.service
        wait_for(lambda: client.get("/ready").status_code == 200, 120, "GET /ready 200")
        yield client


def catalogue(client: TestClient) -> dict[str, str]:
    """Every target item the app serves, id -> title (one recommendation as long as the catalogue)."""
    n = client.get("/ready").json()["n_items"]
    answer = client.post("/recommend", json={"history": ["b1"], "k": n})
    assert answer.status_code == 200, answer.text
    return {i["item"]: i["title"] for i in answer.json()["items"]}


__all__ = ["AUTH", "bounded", "catalogue", "load", "running", "wait_for"]
