"""Run the service under uvicorn (``cdtl serve``), or start it in a background process and wait until it is ready.

``serve`` checks everything it can before it listens: the bundle's manifest and hashes
(a tampered bundle stops here, naming the file) and the token (writable endpoints need
one). It binds the socket itself, so ``port=0`` picks a free port; the port actually
bound is printed and, with ``port_file``, written atomically to that file.

``ServiceProcess`` is the same command in a child process, for notebooks, tests and the
load benchmark: it waits for ``GET /ready`` with a deadline and stops the child on exit.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from cdtl.io import atomic_write

TOKEN_VAR = "CDTL_SERVE_TOKEN"


def read_token(token_file: str | os.PathLike | None = None) -> str | None:
    """The bearer token: the first line of ``token_file`` when given, else ``$CDTL_SERVE_TOKEN``, else None."""
    if token_file is not None:
        path = Path(token_file)
        try:
            lines = path.read_text().strip().splitlines()
        except OSError as err:
            raise ValueError(f"--token-file {path}: cannot read it ({err.strerror})") from err
        token = lines[0].strip() if lines else ""
        if len(token) < 16:
            raise ValueError(f"--token-file {path}: the token must be at least 16 characters")
        return token
    token = os.environ.get(TOKEN_VAR, "").strip()
    if token and len(token) < 16:
        raise ValueError(f"${TOKEN_VAR} must be at least 16 characters")
    return token or None


def _write_port(path: Path, port: int) -> None:
    atomic_write(path, f"{port}\n")


def serve(bundle: str | os.PathLike, *, host: str = "127.0.0.1", port: int = 8000, token: str | None = None,
          read_only: bool = False, index: dict[str, Any] | None = None, max_body: int | None = None,
          port_file: str | os.PathLike | None = None, log_level: str = "warning", exit_with_parent: bool = False) -> int:
    """Serve the bundle until interrupted; returns the exit status (2 when the bundle failed to load).

    ``exit_with_parent``: stop when the process that started this one ends (a notebook
    kernel or a test that dies without stopping its service leaves no server behind).
    """
    from cdtl.serve.bundle import verify_bundle
    from cdtl.serve.index import IndexSettings

    bundle = Path(bundle)
    verify_bundle(bundle)  # fail before listening: a tampered or incomplete bundle names its file here
    if not read_only and not token:
        raise ValueError(f"the writable endpoints (POST /items, POST /reload) need a token: set ${TOKEN_VAR} or pass "
                         "--token-file, or start the service --read-only")
    settings = IndexSettings.from_dict(index)

    import torch
    import uvicorn

    from cdtl.serve.app import MAX_BODY, create_app
    from cdtl.serve.loading import load_recommender

    from threadpoolctl import threadpool_limits

    os.environ["CDTL_PROGRESS"] = "0"  # no progress bar per request (a new item's text is encoded in one batch)
    torch.set_num_threads(1)  # one request, one core: concurrency comes from the requests
    threadpool_limits(limits=1)  # numpy's BLAS and FAISS's OpenMP alike
    failure: dict[str, str] = {}
    server: uvicorn.Server | None = None

    def fatal(message: str) -> None:
        failure["message"] = message
        if server is not None:
            server.should_exit = True

    app = create_app(bundle, token=token, read_only=read_only, max_body=max_body or MAX_BODY,
                     load=lambda path: load_recommender(path, index=settings), on_fatal=fatal)
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as err:
        sock.close()
        raise RuntimeError(f"cannot listen on {host}:{port}: {err.strerror}") from err
    sock.listen(2048)
    bound = sock.getsockname()[1]
    loop = "uvloop" if _has("uvloop") else "asyncio"
    http = "httptools" if _has("httptools") else "h11"
    config = uvicorn.Config(app, log_level=log_level, access_log=False, loop=loop, http=http, lifespan="on",
                            timeout_keep_alive=30)
    server = uvicorn.Server(config)
    print(f"cdtl serve: {bundle} on http://{host}:{bound} (writes {'off' if read_only else 'need the bearer token'})",
          flush=True)
    if port_file is not None:
        _write_port(Path(port_file), bound)
    if exit_with_parent:
        _watch_parent(server)
    server.run(sockets=[sock])
    if failure:
        print(f"cdtl serve: error: the bundle failed to load: {failure['message']}", file=sys.stderr, flush=True)
        return 2
    return 0


def _watch_parent(server: Any) -> None:
    """Ask ``server`` to exit once this process's parent is gone (it is then re-parented)."""
    import threading

    parent = os.getppid()

    def watch() -> None:
        while not server.should_exit:
            if os.getppid() != parent:
                server.should_exit = True
                return
            time.sleep(1.0)

    threading.Thread(target=watch, name="cdtl-parent-watch", daemon=True).start()


def _has(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is not None


class ServiceProcess:
    """``cdtl serve`` in a child process on loopback: ``with ServiceProcess(bundle, token=...) as svc: svc.post(...)``.

    ``start`` waits at most ``ready_timeout`` seconds for ``GET /ready``; ``stop`` ends the
    child (terminate, then kill after a grace period). ``env`` adds environment variables.
    """

    def __init__(self, bundle: str | os.PathLike, *, token: str | None = None, read_only: bool = False,
                 index: dict[str, Any] | None = None, host: str = "127.0.0.1", ready_timeout: float = 120.0,
                 extra_args: list[str] | None = None, env: dict[str, str] | None = None) -> None:
        self.bundle, self.token, self.host = Path(bundle), token, host
        self.ready_timeout = ready_timeout
        self._dir = tempfile.TemporaryDirectory(prefix="cdtl-serve-")
        self.port_file = Path(self._dir.name) / "port"
        self.log_path = Path(self._dir.name) / "server.log"
        args = [sys.executable, "-m", "cdtl.cli", "serve", str(self.bundle), "--host", host, "--port", "0",
                "--port-file", str(self.port_file), "--exit-with-parent"]
        if read_only:
            args.append("--read-only")
        if index:
            args += ["--index", json.dumps(index) if isinstance(index, dict) else str(index)]
        self.args = args + list(extra_args or [])
        self.env = {**os.environ, "OMP_NUM_THREADS": "1", "CDTL_PROGRESS": "0", **(env or {})}
        if token is not None:
            self.env["CDTL_SERVE_TOKEN"] = token
        self.process: subprocess.Popen | None = None
        self.port: int | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> ServiceProcess:
        self._log = open(self.log_path, "wb")
        self.process = subprocess.Popen(self.args, stdout=self._log, stderr=subprocess.STDOUT, env=self.env)
        deadline = time.monotonic() + self.ready_timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"the service exited with status {self.process.returncode}:\n{self.log()}")
            if self.port is None and self.port_file.exists():
                self.port = int(self.port_file.read_text())
            if self.port is not None:
                try:
                    status, _ = self.request("GET", "/ready", timeout=2.0)
                    if status == 200:
                        return self
                except OSError:
                    pass
            time.sleep(0.1)
        self.stop()
        raise TimeoutError(f"the service was not ready within {self.ready_timeout:.0f} s:\n{self.log()}")

    def request(self, method: str, path: str, body: Any = None, *, token: str | None = None, raw: bytes | None = None,
                timeout: float = 30.0, headers: dict[str, str] | None = None) -> tuple[int, Any]:
        """(status, parsed JSON or text) of one request; ``raw`` sends bytes as they are."""
        data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
        request = urllib.request.Request(self.url + path, data=data, method=method,
                                         headers={"Content-Type": "application/json", **(headers or {})})
        if token is not None:
            request.add_header("Authorization", f"Bearer {token}")
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                status, payload = response.status, response.read()
        except urllib.error.HTTPError as err:
            status, payload = err.code, err.read()
        try:
            return status, json.loads(payload)
        except ValueError:
            return status, payload.decode(errors="replace")

    def post(self, path: str, body: Any = None, **options: Any) -> tuple[int, Any]:
        return self.request("POST", path, body, **options)

    def get(self, path: str, **options: Any) -> tuple[int, Any]:
        return self.request("GET", path, **options)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def stop(self, grace: float = 10.0) -> int | None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(grace)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(grace)
        if getattr(self, "_log", None) is not None:
            self._log.close()
        return None if self.process is None else self.process.returncode

    def __enter__(self) -> ServiceProcess:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()
        self._dir.cleanup()


__all__ = ["TOKEN_VAR", "ServiceProcess", "read_token", "serve"]
