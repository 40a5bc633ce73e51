"""The HTTP service (FastAPI): health and readiness, recommendations, similar items, new items, reload and metrics.

``create_app(bundle_path, token=...)`` returns the ASGI app; ``cdtl serve`` runs it under
uvicorn. The bundle loads in a background thread when the app starts: ``GET /health``
answers at once, ``GET /ready`` only once the bundle is loaded and verified.

Every request reads the current ``Recommender`` once and answers from it, so
``POST /reload`` (which builds a new one, then swaps it in with one assignment) never
disturbs a request in flight. The two endpoints that change state, ``POST /items`` and
``POST /reload``, need ``Authorization: Bearer <token>``; an app with writes enabled
cannot be created without a token. Bad input gets a 4xx whose ``detail`` starts with the
field at fault; a body over ``max_body`` bytes is refused with 413 before it is read.
"""

from __future__ import annotations

import hmac
import threading
import time
from pathlib import Path
from typing import Any, Callable

from fastapi import FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response

from cdtl.serve import schemas as S
from cdtl.serve.bundle import BundleError
from cdtl.serve.metrics import MetricsMiddleware, ServiceMetrics
from cdtl.serve.recommender import Recommender, RequestError

MAX_BODY = 4 * 1024 * 1024  # bytes
DRAIN_LIMIT = 64 * 1024 * 1024  # an over-size body up to this size is read and dropped before the 413
UNION_TAGS = {"str", "int", "float", "bool", "constrained-str"}  # pydantic's names for the members of a union
ERRORS = {400: {"model": S.ErrorBody}, 401: {"model": S.ErrorBody}, 404: {"model": S.ErrorBody},
          413: {"model": S.ErrorBody}, 422: {"model": S.ErrorBody}}


class ServiceState:
    """The recommender being served and how it got there; a reload replaces ``recommender`` in one assignment."""

    def __init__(self, bundle_path: Path, load: Callable[[Path], Recommender]) -> None:
        self.bundle_path, self.load = bundle_path, load
        self.recommender: Recommender | None = None
        self.failure: str | None = None
        self.write_lock = threading.Lock()  # POST /items and the swap of a reload, one at a time


def _error(status: int, field: str, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"detail": f"{field}: {message}", "errors": [{"field": field, "message": message}]},
                        status_code=status, headers=headers)


def _json(content: dict[str, Any]) -> JSONResponse:
    """The answer as it is built (its shape is the endpoint's response model, which documents it in OpenAPI)."""
    return JSONResponse(content)


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


class BodyLimit:
    """Pure ASGI middleware: refuse a request body over ``limit`` bytes with 413 (by header, or while reading)."""

    def __init__(self, app: Any, limit: int) -> None:
        self.app, self.limit = app, limit

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        declared = headers.get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.limit):
            if declared.isdigit() and int(declared) <= DRAIN_LIMIT:  # read and drop it, so the client can read the answer
                while (await receive()).get("more_body", False):
                    pass
            await _error(413, "body", f"{declared.decode(errors='replace')} bytes is over the limit of {self.limit} bytes")(
                scope, receive, send)
            return
        seen = {"bytes": 0}

        async def counted() -> dict:
            message = await receive()
            seen["bytes"] += len(message.get("body", b""))
            if seen["bytes"] > self.limit:
                raise _TooLarge()
            return message

        try:
            await self.app(scope, counted, send)
        except _TooLarge:
            await _error(413, "body", f"over the limit of {self.limit} bytes")(scope, receive, send)


class _TooLarge(Exception):
    pass


def create_app(bundle_path: str | Path, *, token: str | None, read_only: bool = False, max_body: int = MAX_BODY,
               load: Callable[[Path], Recommender] | None = None, on_fatal: Callable[[str], None] | None = None) -> Any:
    """The service for the bundle at ``bundle_path`` (see the module docstring).

    ``token``: the bearer token of the writable endpoints; without one the app must be
    ``read_only`` (then POST /items and POST /reload answer 403). ``load(path)`` builds a
    ``Recommender`` (default ``cdtl.serve.loading.load_recommender``). ``on_fatal(message)``
    is called when the bundle fails to load at start-up (``cdtl serve`` stops the server).
    """
    if not read_only and not token:
        raise ValueError("the writable endpoints (POST /items, POST /reload) need a token: set CDTL_SERVE_TOKEN or pass "
                         "--token-file, or start the service --read-only")
    if load is None:
        from cdtl.serve.loading import load_recommender as load
    state = ServiceState(Path(bundle_path), load)
    paths = {"/health", "/ready", "/recommend", "/similar-items", "/items", "/reload", "/metrics", "/docs", "/openapi.json"}
    metrics = ServiceMetrics(paths)

    def load_at_start() -> None:
        try:
            state.recommender = state.load(state.bundle_path)
            metrics.serving(state.recommender.bundle.id, state.recommender.n_items)
        except Exception as err:  # the service cannot serve anything: say why, then stop
            state.failure = f"{type(err).__name__}: {err}"
            if on_fatal is not None:
                on_fatal(state.failure)

    async def lifespan(_: FastAPI):
        threading.Thread(target=load_at_start, name="cdtl-load-bundle", daemon=True).start()
        yield

    app = FastAPI(title="cdtl recommendation service", version="1", lifespan=lifespan,
                  description="Recommendations for warm users (matrix factorisation), cold users from their source-domain "
                              "history (the language-model bridge) and new items known only by their text, fused per user.")
    app.state.service, app.state.metrics = state, metrics
    app.add_exception_handler(RequestValidationError, lambda _, exc: validation_errors(exc))
    app.add_exception_handler(RequestError, lambda _, exc: _error(exc.status, exc.field, exc.message))

    def current() -> Recommender:
        rec = state.recommender
        if rec is None:
            raise RequestError("service", "the bundle is still loading; retry when GET /ready answers 200", 503)
        return rec

    def authorize(request: Request, what: str) -> JSONResponse | None:
        if read_only:
            return _error(403, "service", f"this service was started read-only: {what} is disabled")
        given = request.headers.get("authorization", "")
        scheme, _, credentials = given.partition(" ")
        if scheme.lower() != "bearer" or not credentials:
            return _error(401, "authorization", f"{what} needs 'Authorization: Bearer <token>'", {"WWW-Authenticate": "Bearer"})
        if not hmac.compare_digest(credentials.strip().encode(), token.encode()):
            return _error(401, "authorization", "the token is not valid", {"WWW-Authenticate": "Bearer"})
        return None

    @app.get("/health", response_model=S.Health, summary="The process is up")
    async def health() -> dict:
        return {"status": "ok"}

    @app.get("/ready", response_model=S.Ready, responses={503: {"model": S.Ready}},
             summary="The bundle is loaded and verified")
    async def ready() -> Any:
        rec = state.recommender
        if rec is None:
            status = "failed" if state.failure else "loading"
            return JSONResponse({"status": status, "detail": state.failure}, status_code=503)
        return {"status": "ready", "bundle": rec.bundle.summary(), "n_items": rec.n_items, "index": rec.index.kind,
                "encoder": rec.encoder_check}

    @app.post("/recommend", response_model=S.RecommendResponse, responses=ERRORS, summary="Top-k items for a user")
    async def recommend(body: S.RecommendRequest) -> Any:
        rec = current()
        if body.ratings is not None and rec.bundle.serving.get("rating_scale"):
            low, high = rec.bundle.serving["rating_scale"]
            bad = next((n for n, r in enumerate(body.ratings) if not low <= r <= high), None)
            if bad is not None:
                raise RequestError(f"ratings[{bad}]", f"{body.ratings[bad]} is outside the rating scale [{low}, {high}]")
        if body.ratings is not None and (body.history is None or len(body.ratings) != len(body.history)):
            raise RequestError("ratings", f"needs one number per history item ({len(body.history or [])})")
        history = None if body.history is None else [str(h) for h in body.history]
        user = None if body.user is None else str(body.user)
        out = rec.recommend(user, history, k=body.k, exclude_seen=body.exclude_seen)
        metrics.child(metrics.served, out.scorer).inc()
        if out.scorer == "fallback":
            metrics.fallbacks.inc()
        metrics.unknown_history.inc(len(out.unknown_items))
        return _json({"user": out.user, "scorer": out.scorer, "weights": out.weights,
                      "items": [{"item": i, "title": t, "score": s} for i, t, s in zip(out.items, out.titles, out.scores)],
                      "unknown_items": out.unknown_items, "history_used": out.history_used, "bundle": rec.bundle.id})

    @app.post("/similar-items", response_model=S.SimilarResponse, responses=ERRORS,
              summary="Items whose text is closest to an item's or to a free text")
    async def similar_items(body: S.SimilarRequest) -> Any:
        rec = current()
        item = None if body.item is None else str(body.item)
        if body.text is not None and item is None:  # the language model runs off the event loop
            found = await run_in_threadpool(rec.similar_items, None, body.text, k=body.k)
        else:
            found = rec.similar_items(item, body.text, k=body.k)
        return _json({"items": [{"item": i, "title": t, "score": s} for i, t, s in found], "bundle": rec.bundle.id})

    @app.post("/items", response_model=S.NewItemResponse, status_code=201, responses=ERRORS,
              summary="Add a new item from its text (needs the bearer token)")
    def add_item(body: S.NewItemRequest, request: Request) -> Any:
        refused = authorize(request, "POST /items")
        if refused is not None:
            return refused
        with state.write_lock:
            rec = current()
            rec.add_item(body.item, body.text, body.title)
        metrics.items_added.inc()
        metrics.catalogue.set(rec.n_items)
        return {"item": body.item, "n_items": rec.n_items, "bundle": rec.bundle.id}

    @app.post("/reload", response_model=S.ReloadResponse, responses=ERRORS,
              summary="Swap in a bundle; requests in flight finish on the old one (needs the bearer token)")
    def reload(request: Request, body: S.ReloadRequest | None = None) -> Any:
        refused = authorize(request, "POST /reload")
        if refused is not None:
            return refused
        started = time.perf_counter()
        path = Path(body.bundle) if body is not None and body.bundle else state.bundle_path
        try:
            new = state.load(path)
        except (BundleError, OSError, ValueError) as err:
            metrics.reloads.labels("refused").inc()
            raise RequestError("bundle", f"{err}", 422) from err
        with state.write_lock:  # items added until the swap are carried over: none is lost
            old = current()
            carried = 0
            same_encoder = _encoder_key(old) == _encoder_key(new)
            for added in old.added_items:
                try:
                    new.add_item(added["item"], added["text"], added["title"],
                                 vector=added["vector"] if same_encoder else None)
                    carried += 1
                except RequestError:  # the new bundle has this item already
                    pass
            state.recommender, state.bundle_path = new, path
        metrics.reloads.labels("ok").inc()
        metrics.serving(new.bundle.id, new.n_items)
        return {"bundle": new.bundle.summary(), "previous": old.bundle.id, "carried_items": carried,
                "seconds": time.perf_counter() - started}

    @app.get("/metrics", summary="Prometheus metrics", response_class=Response)
    async def prometheus() -> Response:
        data, content_type = metrics.exposition()
        return Response(data, media_type=content_type)

    return BodyLimit(MetricsMiddleware(app, metrics), max_body)


def _encoder_key(rec: Recommender) -> tuple:
    identity = rec.bundle.serving["encoder"]
    return tuple(identity.get(k) for k in ("model", "files_sha256", "pooling", "max_length", "normalize"))


def openapi(app: Any) -> dict[str, Any]:
    """The OpenAPI document of an app made by ``create_app``."""
    inner = app.app.app
    return inner.openapi()


__all__ = ["MAX_BODY", "ServiceState", "create_app", "openapi", "validation_errors"]
