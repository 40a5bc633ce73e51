"""A stand-in for the Hugging Face hub on 127.0.0.1, and the Amazon pair's files in the release's exact layout.

The server answers ``/datasets/<repo>/resolve/<revision>/<path>`` as the hub does: a HEAD
gets a redirect carrying the file's sha256 in ``X-Linked-Etag`` (when ``publish`` is set),
a GET the bytes. It serves a bounded number of requests and stops by itself.
"""

from __future__ import annotations

import hashlib
import http.server
import json
import threading
import time

from cdtl.data import registry

ENTRY = "amazon-food-kitchen"


def hub_source() -> dict:
    """The registry's hub source of the Amazon pair (paths, revision and preparation as published)."""
    return next(s for s in registry._raw()[ENTRY]["sources"] if s["kind"] == "hub")


def release_files(n_both: int = 40, n_kitchen: int = 30, n_food: int = 30) -> dict[str, bytes]:
    """Small files in the release's layout: 5-core rating CSVs with their header row, metadata JSONL."""
    kitchen_items = [f"K{i:09d}" for i in range(24)]
    food_items = [f"F{i:09d}" for i in range(18)]
    rows = {"kitchen": [], "food": []}
    users = ([(f"AB{u:026d}", ("kitchen", "food")) for u in range(n_both)]
             + [(f"AK{u:026d}", ("kitchen",)) for u in range(n_kitchen)]
             + [(f"AF{u:026d}", ("food",)) for u in range(n_food)])
    for u, (user, domains) in enumerate(users):
        for domain in domains:
            items = kitchen_items if domain == "kitchen" else food_items
            for k in range(8 if domain == "food" else 6):
                item = items[(u * 5 + k * 7) % len(items)]
                stamp = 1_600_000_000_000 + u * 1000 + k * 10 + (5 if domain == "food" else 0)
                rows[domain].append(f"{user},{item},{1 + (u + k) % 5}.0,{stamp}")
    def meta(items: list[str], kind: str) -> bytes:
        return "".join(json.dumps({"main_category": kind, "title": f"{kind} product {i}", "average_rating": 4.5,
                                   "features": [], "description": [], "parent_asin": item}) + "\n"
                       for i, item in enumerate(items[:-1])).encode()  # the last item has no metadata
    header = "user_id,parent_asin,rating,timestamp\n"
    return {
        "benchmark/5core/rating_only/Home_and_Kitchen.csv": (header + "\n".join(rows["kitchen"]) + "\n").encode(),
        "benchmark/5core/rating_only/Grocery_and_Gourmet_Food.csv": (header + "\n".join(rows["food"]) + "\n").encode(),
        "raw/meta_categories/meta_Home_and_Kitchen.jsonl": meta(kitchen_items, "Amazon Home"),
        "raw/meta_categories/meta_Grocery_and_Gourmet_Food.jsonl": meta(food_items, "Grocery"),
    }


class HubServer:
    """Serve ``files`` (path -> bytes) under the registry's repository and revision, 127.0.0.1 only."""

    def __init__(self, files: dict[str, bytes], *, publish: dict[str, str] | None = None, status: int = 200,
                 max_requests: int = 40) -> None:
        source = hub_source()
        self.prefix = f"/datasets/{source['repo']}/resolve/{source['revision']}/"
        self.files, self.publish, self.status = dict(files), dict(publish or {}), status
        self.requests: list[str] = []
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def _path(self) -> str | None:
                server.requests.append(f"{self.command} {self.path}")
                return self.path[len(server.prefix):] if self.path.startswith(server.prefix) else None

            def do_HEAD(self) -> None:  # noqa: N802 - the http.server API
                path = self._path()
                if path not in server.files or server.status != 200:
                    self.send_response(404 if path not in server.files else server.status)
                    self.end_headers()
                    return
                self.send_response(302)
                if path in server.publish:
                    self.send_header("X-Linked-Etag", f'"{server.publish[path]}"')
                self.send_header("Location", self.path)
                self.end_headers()

            def do_GET(self) -> None:  # noqa: N802
                path = self._path()
                if server.status != 200 or path not in server.files:
                    self.send_response(server.status if server.status != 200 else 404)
                    self.end_headers()
                    return
                body = server.files[path]
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.httpd.timeout = 0.2
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.max_requests = max_requests
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        deadline = time.monotonic() + 120
        while len(self.requests) < self.max_requests and time.monotonic() < deadline:
            self.httpd.handle_request()

    def close(self) -> None:
        self.max_requests = 0
        self.thread.join(timeout=5)
        self.httpd.server_close()

    def __enter__(self) -> HubServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
