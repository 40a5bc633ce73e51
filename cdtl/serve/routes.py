"""The service's endpoints as FastAPI routers: probes and metrics, reads, and the writes that need the bearer token.

Each endpoint is a small function of its request body and two dependencies (``async``,
so they run on the event loop, not in the thread pool):
``current_recommender`` (the recommender being served, or a 503 while the bundle loads)
and, for writes, ``require_token`` (401 without a valid ``Authorization: Bearer``
header, 403 on a read-only service). The state they read lives on ``app.state.service``
(``cdtl.serve.state.ServiceState``); ``cdtl.serve.app.create_app`` assembles the routers.
"""

from __future__ import annotations

import hmac
import time
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, Response

from cdtl.serve import schemas as S
from cdtl.serve.bundle import BundleError
from cdtl.serve.monitoring import ServiceMetrics
from cdtl.serve.recommender import Recommendation, Recommender, RequestError
from cdtl.serve.state import ServiceState

ERRORS = {status: {"model": S.ErrorBody} for status in (400, 401, 403, 404, 409, 413, 422, 503)}


class AuthError(RequestError):
    """A write without a valid bearer token (401, with the ``WWW-Authenticate`` header) or on a read-only service (403)."""

    def __init__(self, field: str, message: str, status: int = 401) -> None:
        super().__init__(field, message, status)
        self.headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None


async def service(request: Request) -> ServiceState:
    return request.app.state.service


async def metrics(request: Request) -> ServiceMetrics:
    return request.app.state.metrics


Service = Annotated[ServiceState, Depends(service)]
Counts = Annotated[ServiceMetrics, Depends(metrics)]


async def current_recommender(state: Service) -> Recommender:
    return state.current()


Current = Annotated[Recommender, Depends(current_recommender)]


def has_token(request: Request, state: ServiceState) -> bool:
    """Whether the request carries the service's bearer token."""
    scheme, _, credentials = request.headers.get("authorization", "").partition(" ")
    return (state.token is not None and scheme.lower() == "bearer" and bool(credentials)
            and hmac.compare_digest(credentials.strip().encode(), state.token.encode()))


async def require_token(request: Request, state: Service) -> None:
    what = f"{request.method} {request.url.path}"
    if state.read_only:
        raise AuthError("service", f"this service was started read-only: {what} is disabled", 403)
    if not request.headers.get("authorization", "").lower().startswith("bearer "):
        raise AuthError("authorization", f"{what} needs 'Authorization: Bearer <token>'")
    if not has_token(request, state):
        raise AuthError("authorization", "the token is not valid")


probes = APIRouter()
reads = APIRouter(responses=ERRORS)
writes = APIRouter(responses=ERRORS, dependencies=[Depends(require_token)])


@probes.get("/health", response_model=S.Health, summary="The process is up")
async def health() -> dict:
    return {"status": "ok"}


@probes.get("/ready", response_model=S.Ready, responses={503: {"model": S.Ready}},
            summary="Ready or not; the bundle's and the store's paths only with the bearer token")
async def ready(request: Request, state: Service) -> Any:
    with_paths = has_token(request, state)
    rec = state.recommender
    if rec is None:
        status = "failed" if state.failure else "loading"
        return JSONResponse({"status": status, "detail": state.hide(state.failure, with_paths)}, status_code=503)
    bundle = rec.bundle.summary()
    if not with_paths:
        bundle.pop("path", None)
    return {"status": "ready", "bundle": bundle, "n_items": rec.n_items, "index": rec.index.kind,
            "encoder": rec.encoder_check, "store": state.store_report(with_paths)}


@probes.get("/metrics", summary="Prometheus metrics", response_class=Response)
async def prometheus(counts: Counts) -> Response:
    data, content_type = counts.exposition()
    return Response(data, media_type=content_type)


def _check_ratings(body: S.RecommendRequest, rec: Recommender) -> None:
    if body.ratings is not None and rec.bundle.serving.get("rating_scale"):
        low, high = rec.bundle.serving["rating_scale"]
        bad = next((n for n, r in enumerate(body.ratings) if not low <= r <= high), None)
        if bad is not None:
            raise RequestError(f"ratings[{bad}]", f"{body.ratings[bad]} is outside the rating scale [{low}, {high}]")
    if body.ratings is not None and (body.history is None or len(body.ratings) != len(body.history)):
        raise RequestError("ratings", f"needs one number per history item ({len(body.history or [])})")


def _count(counts: ServiceMetrics, out: Recommendation) -> None:
    counts.child(counts.served, out.scorer).inc()
    if out.scorer == "fallback":
        counts.fallbacks.inc()
    counts.unknown_history.inc(len(out.unknown_items))


@reads.post("/recommend", response_model=S.RecommendResponse, summary="Top-k items for a user")
async def recommend(body: S.RecommendRequest, rec: Current,
                    counts: Counts) -> Any:
    _check_ratings(body, rec)
    history = None if body.history is None else [str(h) for h in body.history]
    user = None if body.user is None else str(body.user)
    out = rec.recommend(user, history, k=body.k, exclude_seen=body.exclude_seen)
    _count(counts, out)
    return JSONResponse({"user": out.user, "scorer": out.scorer, "weights": out.weights,
                         "items": [{"item": i, "title": t, "score": s} for i, t, s in zip(out.items, out.titles, out.scores)],
                         "unknown_items": out.unknown_items, "history_used": out.history_used, "bundle": rec.bundle.id})


@reads.post("/similar-items", response_model=S.SimilarResponse,
            summary="Items whose text is closest to an item's or to a free text")
async def similar_items(body: S.SimilarRequest, rec: Current) -> Any:
    item = None if body.item is None else str(body.item)
    if body.text is not None and item is None:  # the language model runs off the event loop
        found = await run_in_threadpool(rec.similar_items, None, body.text, k=body.k)
    else:
        found = rec.similar_items(item, body.text, k=body.k)
    return JSONResponse({"items": [{"item": i, "title": t, "score": s} for i, t, s in found], "bundle": rec.bundle.id})


@writes.post("/items", response_model=S.NewItemResponse, status_code=201,
             summary="Add a new item from its text, written through to the store every replica reads (bearer token)")
def add_item(body: S.NewItemRequest, state: Service) -> Any:
    rec = state.add_item(body.item, body.text, body.title)
    return {"item": body.item, "n_items": rec.n_items, "bundle": rec.bundle.id}


@writes.post("/reload", response_model=S.ReloadResponse,
             summary="Swap in a bundle; requests in flight finish on the old one (bearer token)")
def reload(state: Service, counts: Counts, body: S.ReloadRequest | None = None) -> Any:
    started = time.perf_counter()
    path = Path(body.bundle) if body is not None and body.bundle else state.bundle_path
    try:
        old, new, carried = state.reload(path)
    except (BundleError, OSError, ValueError) as err:
        if isinstance(err, RequestError):
            raise
        counts.reloads.labels("refused").inc()
        raise RequestError("bundle", f"{err}", 422) from err
    counts.reloads.labels("ok").inc()
    return {"bundle": new.bundle.summary(), "previous": old.bundle.id, "carried_items": carried,
            "seconds": time.perf_counter() - started}


__all__ = ["AuthError", "current_recommender", "has_token", "probes", "reads", "require_token", "service", "writes"]
