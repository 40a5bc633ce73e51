"""The HTTP service (FastAPI): health and readiness, recommendations, similar items, new items, reload and metrics.

``create_app(bundle_path, token=...)`` returns the ASGI app; ``cdtl serve`` runs it under
uvicorn. The bundle loads in a background thread when the app starts: ``GET /health``
answers at once, ``GET /ready`` only once the bundle is loaded and verified.

The endpoints live in ``cdtl.serve.routes``, the state they share in
``cdtl.serve.state``. Every request reads the current ``Recommender`` once and answers
from it, so ``POST /reload`` (which builds a new one, then swaps it in with one
assignment) never disturbs a request in flight. The two endpoints that change state,
``POST /items`` and ``POST /reload``, need ``Authorization: Bearer <token>``; an app with
writes enabled cannot be created without a token. Items added through ``POST /items``
are written through to a store file (``cdtl.serve.store``) that a restart and every
replica read. Bad input gets a 4xx whose ``detail`` starts with the field at fault
(``cdtl.serve.bodies`` checks size, UTF-8 and JSON first); every answer is counted in
``GET /metrics``.
"""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from cdtl.serve.bodies import RequestBody, error_response
from cdtl.serve.monitoring import MetricsMiddleware, ServiceMetrics
from cdtl.serve.recommender import Recommender, RequestError
from cdtl.serve.routes import probes, reads, writes
from cdtl.serve.state import STORE_REFRESH, ServiceState, log
from cdtl.serve.store import open_store

MAX_BODY = 4 * 1024 * 1024  # bytes
UNION_TAGS = {"str", "int", "float", "bool", "constrained-str"}  # pydantic's names for the members of a union
PATHS = {"/health", "/ready", "/recommend", "/similar-items", "/items", "/reload", "/metrics", "/docs", "/openapi.json"}
DESCRIPTION = """Recommendations for warm users (matrix factorisation), cold users from their source-domain history \
(the language-model bridge) and new items known only by their text, fused per user.

Every endpoint takes a JSON body, whatever the content type says (`curl -d '{...}'` works as written). \
Items added through `POST /items` (bearer token) are written through to one store file: by default \
`<bundle folder>.items.jsonl` beside the bundle folder when the folder holding it is writable, or the file \
named by `cdtl serve --items-store PATH`. The store is read at start and on `POST /reload`, so a restart keeps the items; \
replicas that share the store file (a volume every replica mounts) each re-read it when it changes, checked every \
`--store-refresh` seconds (default 2), so an item added through one replica is served by all of them within that \
time. Two replicas adding the same id at once: one wins, the other answers 409. A damaged store is refused \
(`GET /ready` names it) and `POST /items` answers 503 until it is repaired; the bundle alone keeps serving."""


def _field(loc: tuple) -> str:
    parts = [str(p) for p in loc[1:]] if loc and loc[0] == "body" else [str(p) for p in loc]
    text = ""
    for part in parts:
        text += f"[{part}]" if part.isdigit() else (f".{part}" if text else part)
    return text or "body"


def validation_errors(exc: RequestValidationError) -> JSONResponse:
    """pydantic's errors as one line per field; malformed JSON is a 400, the rest 422."""
    errors, status = [], 422
    for err in exc.errors():
        kind, loc = err.get("type", ""), tuple(err.get("loc", ()))
        if kind == "json_invalid":
            status = 400
            errors.append({"field": "body", "message": f"malformed JSON ({err.get('ctx', {}).get('error', 'cannot parse')} "
                                                       f"at position {loc[-1] if len(loc) > 1 else '?'})"})
        elif kind == "extra_forbidden":
            errors.append({"field": _field(loc), "message": "unknown field"})
        elif kind == "model_attributes_type":
            errors.append({"field": "body", "message": "must be a JSON object"})
        else:
            message = str(err.get("msg", "invalid")).removeprefix("Value error, ")
            errors.append({"field": _field(tuple(p for p in loc if p not in UNION_TAGS)), "message": message})
    merged: dict[str, list[str]] = {}
    for e in errors:  # one entry per field: a union's members each report the same field
        if e["message"] not in merged.setdefault(e["field"], []):
            merged[e["field"]].append(e["message"])
    errors = [{"field": f, "message": " or ".join(m)} for f, m in merged.items()]
    return JSONResponse({"detail": "; ".join(f"{e['field']}: {e['message']}" for e in errors), "errors": errors},
                        status_code=status)


def _refresh_loop(state: ServiceState, stop: threading.Event, on_fatal: Callable[[str], None] | None) -> None:
    """Load the bundle and the store, then re-read the store whenever its file changes (every ``store_refresh`` s)."""
    state.start(on_fatal)
    while state.store is not None and state.recommender is not None and not stop.wait(state.store_refresh):
        try:
            state.refresh()
        except Exception:  # keep refreshing: the next change of the file is read again
            log.exception("cdtl serve: reading the added-item store %s failed", state.store.path)


def _lifespan(on_fatal: Callable[[str], None] | None) -> Callable[[FastAPI], Any]:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        stop = threading.Event()
        threading.Thread(target=_refresh_loop, args=(app.state.service, stop, on_fatal), name="cdtl-load-bundle",
                         daemon=True).start()
        yield
        stop.set()

    return lifespan


def create_app(bundle_path: str | Path, *, token: str | None, read_only: bool = False, max_body: int = MAX_BODY,
               load: Callable[[Path], Recommender] | None = None, on_fatal: Callable[[str], None] | None = None,
               items_store: str | Path | None = None, store_refresh: float = STORE_REFRESH) -> Any:
    """The service for the bundle at ``bundle_path`` (see the module docstring).

    ``token``: the bearer token of the writable endpoints; without one the app must be
    ``read_only`` (then POST /items and POST /reload answer 403). ``load(path)`` builds a
    ``Recommender`` (default ``cdtl.serve.loading.load_recommender``). ``on_fatal(message)``
    is called when the bundle fails to load at start-up (``cdtl serve`` stops the server).
    ``items_store``: the added-item store file (default: ``cdtl.serve.store.open_store``'s
    rule, beside the bundle); ``store_refresh``: seconds between checks of it for items
    other replicas added.
    """
    if not read_only and not token:
        raise ValueError("the writable endpoints (POST /items, POST /reload) need a token: set CDTL_SERVE_TOKEN or pass "
                         "--token-file, or start the service --read-only")
    if not (isinstance(store_refresh, (int, float)) and 0 < store_refresh < 86400):
        raise ValueError(f"--store-refresh must be a number of seconds above 0 and below a day, got {store_refresh!r}")
    if load is None:
        from cdtl.serve.loading import load_recommender as load
    metrics = ServiceMetrics(PATHS)
    store = open_store(bundle_path, items_store, read_only=read_only)
    state = ServiceState(Path(bundle_path), load, metrics=metrics, store=store, store_refresh=store_refresh,
                         token=token, read_only=read_only)
    app = FastAPI(title="cdtl recommendation service", version="1", lifespan=_lifespan(on_fatal), description=DESCRIPTION)
    app.state.service, app.state.metrics = state, metrics
    app.add_exception_handler(RequestValidationError, lambda _, exc: validation_errors(exc))
    app.add_exception_handler(RequestError, lambda _, exc: error_response(exc.status, exc.field, exc.message,
                                                                          getattr(exc, "headers", None)))
    for router in (probes, reads, writes):
        app.include_router(router)
    return MetricsMiddleware(RequestBody(app, max_body), metrics)


def openapi(app: Any) -> dict[str, Any]:
    """The OpenAPI document of an app made by ``create_app``."""
    return fastapi_app(app).openapi()


def fastapi_app(app: Any) -> FastAPI:
    """The FastAPI app inside the middleware ``create_app`` wraps it in (its ``state`` holds the service)."""
    while not isinstance(app, FastAPI):
        app = app.app
    return app


__all__ = ["MAX_BODY", "create_app", "fastapi_app", "openapi", "validation_errors"]
