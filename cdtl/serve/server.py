"""Run the service under uvicorn (``cdtl serve``), or start it in a background process and wait until it is ready.

``serve`` checks everything it can before it listens: the port (one in use is refused
before the bundle is read), the bundle's manifest and hashes (a tampered bundle stops
here, naming the file) and the token (writable endpoints need one). It binds the socket
itself, so ``port=0`` picks a free port; the port actually bound is printed and, with
``port_file``, written atomically to that file. Its settings may come from the
environment (``cdtl.serve.settings``), and ``create_app_from_env`` is the same app for
``uvicorn --factory cdtl.serve.server:create_app_from_env --workers N``.
``python -m cdtl.serve.server ready`` asks a local service whether it is ready (a
container's health check).

``ServiceProcess`` is the same command in a child process, for notebooks, tests and the
load benchmark: it waits for ``GET /ready`` with a deadline and stops the child on exit.
"""

from __future__ import annotations

import errno
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


def read_token(token_file: str | os.PathLike | None = None, *, source: str = "--token-file") -> str | None:
    """The bearer token: the first line of ``token_file`` when given, else ``$CDTL_SERVE_TOKEN``, else None.

    ``source`` names where the file's path came from in an error (a flag or a variable).
    """
    if token_file is not None:
        path = Path(token_file)
        try:
            lines = path.read_text().strip().splitlines()
        except OSError as err:
            raise ValueError(f"{source} {path}: cannot read the token file ({err.strerror or err})") from err
        except UnicodeDecodeError:
            raise ValueError(f"{source} {path}: not a text file; it should hold the token on its first line") from None
        token = lines[0].strip() if lines else ""
        if len(token) < 16:
            raise ValueError(f"{source} {path}: the token must be at least 16 characters")
        return token
    token = os.environ.get(TOKEN_VAR, "").strip()
    if token and len(token) < 16:
        raise ValueError(f"${TOKEN_VAR} must be at least 16 characters")
    return token or None


def _write_port(path: Path, port: int) -> None:
    atomic_write(path, f"{port}\n")


def _bind(host: str, port: int) -> socket.socket:
    """A listening socket on ``host:port``; a port in use (or an address not of this machine) refused in one line."""
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as err:
        sock.close()
        hint = "; stop what listens there or choose another --port (0: any free port)" if err.errno == errno.EADDRINUSE else ""
        raise RuntimeError(f"cannot listen on {host}:{port}: {err.strerror or err}{hint}") from err
    except OverflowError as err:
        sock.close()
        raise RuntimeError(f"cannot listen on {host}:{port}: {err}") from err
    sock.listen(2048)
    return sock


def _one_core_per_request() -> None:
    """A serving process's threads: one request, one core (concurrency comes from the requests); no progress bars."""
    import torch
    from threadpoolctl import threadpool_limits

    os.environ["CDTL_PROGRESS"] = "0"  # no progress bar per request (a new item's text is encoded in one batch)
    torch.set_num_threads(1)
    threadpool_limits(limits=1)  # numpy's BLAS and FAISS's OpenMP alike


def _app(bundle: Path, *, token: str | None, read_only: bool, index: dict[str, Any] | None, max_body: int | None,
         on_fatal: Any, items_store: str | os.PathLike | None = None, store_refresh: float | None = None) -> Any:
    """The checked bundle's app: a tampered bundle, or writes without a token, refused before anything loads."""
    from cdtl.serve.bundle import verify_bundle
    from cdtl.serve.index import IndexSettings

    verify_bundle(bundle)  # fail before listening: a missing, tampered or incomplete bundle names its file here
    if not read_only and not token:
        raise ValueError(f"the writable endpoints (POST /items, POST /reload) need a token: set ${TOKEN_VAR} or pass "
                         "--token-file, or start the service --read-only")
    settings = IndexSettings.from_dict(index)
    from cdtl.serve.app import MAX_BODY, create_app
    from cdtl.serve.loading import load_recommender
    from cdtl.serve.state import STORE_REFRESH

    _one_core_per_request()
    return create_app(bundle, token=token, read_only=read_only, max_body=max_body or MAX_BODY,
                      load=lambda path: load_recommender(path, index=settings), on_fatal=on_fatal,
                      items_store=items_store, store_refresh=STORE_REFRESH if store_refresh is None else store_refresh)


def serve(bundle: str | os.PathLike, *, host: str = "127.0.0.1", port: int = 8000, token: str | None = None,
          read_only: bool = False, index: dict[str, Any] | None = None, max_body: int | None = None,
          port_file: str | os.PathLike | None = None, log_level: str = "warning", access_log: bool = False,
          exit_with_parent: bool = False, items_store: str | os.PathLike | None = None,
          store_refresh: float | None = None) -> int:
    """Serve the bundle until interrupted; returns the exit status (2 when the bundle failed to load).

    ``items_store`` / ``store_refresh``: where items added through ``POST /items`` are kept
    and how often (seconds) to re-read it for other replicas' items (``cdtl.serve.store``).
    ``log_level`` and ``access_log`` are uvicorn's (the access log: one line per request).

    ``exit_with_parent``: stop when the process that started this one ends (a notebook
    kernel or a test that dies without stopping its service leaves no server behind).
    """
    import uvicorn

    bundle = Path(bundle)
    sock = _bind(host, port)  # a port in use is refused before the bundle is read
    failure: dict[str, str] = {}
    server: uvicorn.Server | None = None

    def fatal(message: str) -> None:
        failure["message"] = message
        if server is not None:
            server.should_exit = True

    try:
        app = _app(bundle, token=token, read_only=read_only, index=index, max_body=max_body, on_fatal=fatal,
                   items_store=items_store, store_refresh=store_refresh)
    except BaseException:
        sock.close()
        raise
    bound = sock.getsockname()[1]
    loop = "uvloop" if _has("uvloop") else "asyncio"
    http = "httptools" if _has("httptools") else "h11"
    config = uvicorn.Config(app, log_level=log_level, access_log=access_log, loop=loop, http=http, lifespan="on",
                            timeout_keep_alive=30)
    server = uvicorn.Server(config)
    print(f"cdtl serve: {bundle} on http://{host}:{bound} (writes {'off' if read_only else 'need the bearer token'})",
          flush=True)
    print(f"cdtl serve: {_store_line(app)}", flush=True)
    if port_file is not None:
        _write_port(Path(port_file), bound)
    if exit_with_parent:
        _watch_parent(server)
    server.run(sockets=[sock])
    if failure:
        print(f"cdtl serve: error: the bundle failed to load: {failure['message']}", file=sys.stderr, flush=True)
        return 2
    return 0


def _store_line(app: Any) -> str:
    from cdtl.serve.app import fastapi_app

    state = fastapi_app(app).state.service
    if state.store is None:
        return "no store for added items (the bundle's folder is not writable): POST /items needs --items-store PATH"
    mode = "read and written" if state.store.writable else "read only"
    return f"added items in {state.store.path} ({mode}; re-read when it changes, every {state.store_refresh:g} s)"


def create_app_from_env() -> Any:
    """The service's app with every setting from the environment (``cdtl.serve.settings``), for uvicorn's factory mode.

    ``CDTL_BUNDLE=bundles/ml1m CDTL_SERVE_TOKEN=... uvicorn --factory cdtl.serve.server:create_app_from_env
    --workers 2 --port 8000``: each worker process builds its own app (its own copy of the
    bundle and its own counters: ``/metrics`` reports the worker that answered). A bundle
    that fails to load in the background stops the worker with the reason in the log.
    """
    from cdtl.serve.settings import ServeSettings

    settings = ServeSettings.resolve()
    token = read_token(settings.token_file, source="$CDTL_SERVE_TOKEN_FILE")

    def fatal(message: str) -> None:
        import signal

        print(f"cdtl serve: error: the bundle failed to load: {message}", file=sys.stderr, flush=True)
        os.kill(os.getpid(), signal.SIGTERM)

    return _app(Path(settings.bundle), token=token, read_only=settings.read_only, index=settings.index, max_body=None,
                on_fatal=fatal, items_store=settings.items_store)


def ready(url: str | None = None, timeout: float = 3.0) -> bool:
    """Whether the service at ``url`` (default: this machine, port ``$CDTL_PORT`` or 8000) answers ``GET /ready`` with 200."""
    url = url or f"http://127.0.0.1:{os.environ.get('CDTL_PORT', '').strip() or 8000}"
    try:
        with urllib.request.urlopen(url.rstrip("/") + "/ready", timeout=timeout) as response:
            return response.status == 200
    except (OSError, ValueError):
        return False


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


__all__ = ["TOKEN_VAR", "ServiceProcess", "create_app_from_env", "read_token", "ready", "serve"]


if __name__ == "__main__":  # python -m cdtl.serve.server ready [URL]: exit 0 when the service is ready
    if sys.argv[1:2] != ["ready"] or len(sys.argv) > 3:
        sys.exit("usage: python -m cdtl.serve.server ready [URL]")
    sys.exit(0 if ready(sys.argv[2] if len(sys.argv) > 2 else None) else 1)
