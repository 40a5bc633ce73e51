"""One in-process service on a toy bundle with a small body limit, for the tests of the service's edges.

Each case is a request a hostile or careless client sends; each answer is a 4xx naming
the field at fault (TestClient re-raises a server error, so a 500 fails the test), within
a deadline (a hang fails the test too).
"""

from __future__ import annotations

import pytest
from serveapp import running
from servekit import toy_bundle

MAX_BODY = 64 * 1024


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    root = tmp_path_factory.mktemp("edges")
    with running(toy_bundle(root / "toy"), items_store=root / "items.jsonl", max_body=MAX_BODY) as client:
        yield client
