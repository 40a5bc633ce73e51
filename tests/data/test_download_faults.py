"""Downloads under faults: deadlines, progress, nothing left behind, files placed by hand, parallel first loads."""

from __future__ import annotations

import hashlib
import http.server
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from fetch_fixtures import GOOD_ZIP, WHEEL, _zip_bytes, toy_registry  # noqa: F401  (fixture)

from cdtl.data import download as fetch_mod
from cdtl.data import registry
from cdtl.env import EnvError

ROOT = Path(__file__).resolve().parents[2]


class _Server:
    """A local HTTP server for toy.zip: bounded (stops after ``max_requests``), 127.0.0.1 only."""

    def __init__(self, body: bytes, *, trickle: float = 0.0, delay: float = 0.0, max_requests: int = 8) -> None:
        self.requests = 0
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - the http.server API
                server.requests += 1
                time.sleep(delay)
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                try:
                    if trickle:
                        for i in range(0, len(body), 16):
                            self.wfile.write(body[i:i + 16])
                            self.wfile.flush()
                            time.sleep(trickle)
                    else:
                        self.wfile.write(body)
                except (BrokenPipeError, ConnectionResetError):
                    pass

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/toy.zip"
        self.max_requests = max_requests
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        self.httpd.timeout = 0.2
        deadline = time.monotonic() + 60
        while self.requests < self.max_requests and time.monotonic() < deadline:
            self.httpd.handle_request()

    def close(self) -> None:
        self.max_requests = 0
        self.thread.join(timeout=5)
        self.httpd.server_close()


def _leftovers(root: Path) -> list[str]:
    """Anything in the cache that is neither a finished dataset, a verified archive, a lock nor a file set aside."""
    bad = []
    for path in root.rglob("*"):
        name = path.name
        if ".tmp" in name or name.startswith("tmp"):
            bad.append(str(path.relative_to(root)))
    return bad


def test_a_hand_placed_file_with_the_wrong_hash_is_reported_and_moved_aside(toy_registry, monkeypatch):
    downloads = fetch_mod.cache_dir() / "downloads"
    downloads.mkdir(parents=True)
    (downloads / "toy.zip").write_bytes(b"my own file")
    monkeypatch.setattr(fetch_mod, "_pip_download", lambda *a: (_ for _ in ()).throw(OSError("no mirror")))
    with pytest.warns(UserWarning, match="hash mismatch"), pytest.raises(fetch_mod.FetchError) as err:
        fetch_mod.fetch("toy", offline=True)
    assert "hash mismatch" in str(err.value) and "moved it aside" in str(err.value)
    aside = [p for p in downloads.iterdir() if p.name.startswith("toy.zip.hash-mismatch")]
    assert len(aside) == 1 and aside[0].read_bytes() == b"my own file"  # kept, not deleted
    assert not (downloads / "toy.zip").exists()


@pytest.mark.parametrize("value,offline", [("1", True), ("true", True), ("YES", True), ("on", True),
                                           ("0", False), ("false", False), ("No", False), ("", False)])
def test_cdtl_offline_accepts_the_usual_spellings(toy_registry, monkeypatch, value, offline):
    calls = []
    monkeypatch.setenv("CDTL_OFFLINE", value)
    monkeypatch.setattr(fetch_mod, "_download_url", lambda url, dest: calls.append(url) or dest.write_bytes(GOOD_ZIP))
    if offline:
        with pytest.raises(fetch_mod.FetchError, match="offline"):
            fetch_mod.fetch("toy")
        assert calls == []
    else:
        fetch_mod.fetch("toy")
        assert len(calls) == 1


def test_cdtl_offline_with_a_bad_value_names_the_variable(toy_registry, monkeypatch):
    monkeypatch.setenv("CDTL_OFFLINE", "maybe")
    with pytest.raises(EnvError, match=r"CDTL_OFFLINE='maybe'.*1, 0, true, false, yes, no"):
        fetch_mod.fetch("toy")


def test_bad_data_dir_is_one_clear_error(toy_registry, monkeypatch, tmp_path):
    a_file = tmp_path / "not-a-folder"
    a_file.write_text("x")
    monkeypatch.setenv("CDTL_DATA_DIR", str(a_file))
    with pytest.raises(fetch_mod.FetchError, match=r"CDTL_DATA_DIR=.*not-a-folder is a file, not a folder"):
        fetch_mod.fetch("toy")
    monkeypatch.setenv("CDTL_DATA_DIR", str(a_file / "sub"))
    with pytest.raises(fetch_mod.FetchError, match="cannot create the data cache"):
        fetch_mod.fetch("toy")


@pytest.mark.slow
def test_download_has_an_overall_deadline_and_leaves_nothing(toy_registry, monkeypatch):
    server = _Server(GOOD_ZIP + bytes(8000), trickle=0.05)  # 16 bytes every 50 ms: alive, but far too slow
    try:
        toy_registry["toy"]["sources"][0]["url"] = server.url
        monkeypatch.setenv("CDTL_DOWNLOAD_TIMEOUT", "1")
        monkeypatch.setattr(fetch_mod, "_pip_download", lambda *a: (_ for _ in ()).throw(OSError("no mirror")))
        started = time.monotonic()
        with pytest.raises(fetch_mod.FetchError, match=r"did not finish within 1 s \(CDTL_DOWNLOAD_TIMEOUT\)"):
            fetch_mod.fetch("toy")
        assert time.monotonic() - started < 8
    finally:
        server.close()
    root = fetch_mod.cache_dir()
    assert _leftovers(root) == [] and not list(root.glob("toy/*"))


def test_download_timeout_must_be_a_positive_number(toy_registry, monkeypatch):
    monkeypatch.setenv("CDTL_DOWNLOAD_TIMEOUT", "soon")
    with pytest.raises(EnvError, match="CDTL_DOWNLOAD_TIMEOUT='soon' is not a number of seconds"):
        fetch_mod.download_timeout()


@pytest.mark.slow
def test_pip_download_has_the_same_deadline(toy_registry, monkeypatch, tmp_path):
    monkeypatch.setenv("CDTL_DOWNLOAD_TIMEOUT", "1")
    monkeypatch.setattr(fetch_mod, "PIP_COMMAND", (sys.executable, "-c", "import time; time.sleep(30)"))
    started = time.monotonic()
    with pytest.raises(TimeoutError, match=r"pip download toypkg==1.0 did not finish within 1 s"):
        fetch_mod._pip_download("toypkg", "1.0", tmp_path)
    assert time.monotonic() - started < 8


def test_download_shows_a_progress_bar(toy_registry, monkeypatch, capsys):
    server = _Server(GOOD_ZIP)
    try:
        toy_registry["toy"]["sources"][0]["url"] = server.url
        monkeypatch.setenv("CDTL_PROGRESS", "1")
        path = fetch_mod.fetch("toy")
    finally:
        server.close()
    assert (path / "a.txt").read_bytes() == b"alpha\n"
    err = capsys.readouterr().err
    assert f"toy.zip:   0%|          | 0.00/{len(GOOD_ZIP)}" in err  # a byte bar sized by Content-Length


def _fail(exc: BaseException):
    def download(url: str, dest: Path) -> None:
        dest.write_bytes(GOOD_ZIP[:10])  # something half-written first
        raise exc
    return download


@pytest.mark.parametrize("fault", ["network", "interrupt", "truncated", "missing-member", "bad-member-hash",
                                   "pip-fails"])
def test_no_temporary_file_or_half_dataset_survives_a_failure(toy_registry, monkeypatch, fault):
    no_mirror = lambda *a: (_ for _ in ()).throw(OSError("no mirror"))  # noqa: E731
    monkeypatch.setattr(fetch_mod, "_pip_download", no_mirror)
    expected: type[BaseException] = fetch_mod.FetchError
    if fault == "network":
        monkeypatch.setattr(fetch_mod, "_download_url", _fail(OSError("connection reset")))
    elif fault == "interrupt":
        monkeypatch.setattr(fetch_mod, "_download_url", _fail(KeyboardInterrupt()))
        expected = KeyboardInterrupt
    elif fault == "truncated":
        monkeypatch.setattr(fetch_mod, "_download_url", lambda url, dest: dest.write_bytes(GOOD_ZIP[:-5]))
    elif fault == "missing-member":
        toy_registry["toy"]["sources"][0]["members"]["c.txt"] = "toy/c.txt"  # a.txt is written, then c.txt fails
        monkeypatch.setattr(fetch_mod, "_download_url", lambda url, dest: dest.write_bytes(GOOD_ZIP))
    elif fault == "bad-member-hash":
        toy_registry["toy"]["sources"] = toy_registry["toy"]["sources"][1:]
        toy_registry["toy"]["sources"][0]["members"]["b.txt"]["sha256"] = "0" * 64
        monkeypatch.setattr(fetch_mod, "_pip_download",
                            lambda pkg, ver, d: (d / "toypkg-1.0-py3-none-any.whl").write_bytes(WHEEL))
    else:
        toy_registry["toy"]["sources"] = toy_registry["toy"]["sources"][1:]
        monkeypatch.setattr(fetch_mod, "PIP_COMMAND", (sys.executable, "-c", "import sys; sys.exit('no index')"))
    with pytest.raises(expected):
        fetch_mod.fetch("toy")
    root = fetch_mod.cache_dir()
    assert _leftovers(root) == []
    assert not list(root.glob("toy/*"))  # no half-extracted dataset


_CHILD = """
import json, sys
from cdtl.data import download, registry
raw = json.loads(sys.argv[1])
registry._raw = lambda: raw
print(download.fetch("toy"))
"""


@pytest.mark.slow
def test_parallel_first_loads_download_once_and_agree(toy_registry, tmp_path):
    server = _Server(GOOD_ZIP, delay=1.0)  # slow enough that every process arrives while the first one works
    try:
        toy_registry["toy"]["sources"][0]["url"] = server.url
        environ = {**os.environ, "CDTL_DATA_DIR": str(tmp_path / "cache"), "CDTL_PROGRESS": "0",
                   "CDTL_OFFLINE": "0", "PYTHONPATH": str(ROOT)}
        children = [subprocess.Popen([sys.executable, "-c", _CHILD, json.dumps(toy_registry)], env=environ,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(4)]
        outputs = [child.communicate(timeout=120) for child in children]
    finally:
        server.close()
    assert [child.returncode for child in children] == [0] * 4, [err for _, err in outputs]
    folders = {out.strip() for out, _ in outputs}
    assert len(folders) == 1
    folder = Path(folders.pop())
    assert (folder / "a.txt").read_bytes() == b"alpha\n" and (folder / "b.txt").read_bytes() == b"beta\n"
    marker = json.loads((folder / fetch_mod.MARKER).read_text())
    assert marker["files"]["a.txt"] == hashlib.sha256(b"alpha\n").hexdigest()
    assert server.requests == 1  # the lock made the others wait for the first, then read its copy
    assert _leftovers(tmp_path / "cache") == []


def test_registry_fixture_is_isolated():
    assert "toy" not in registry.names()
