"""The service's request and response bodies: strict types, limits, and the examples the OpenAPI document shows.

Requests are strict: an unknown field, a string where a number belongs, or a number
outside its range is refused with a 4xx naming the field (``cdtl.serve.app`` turns
pydantic's errors into one message per field), never coerced or dropped.
"""

from __future__ import annotations

import unicodedata
from typing import Annotated, Literal, Union

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictFloat, StrictInt, StrictStr, field_validator

MAX_K = 1000  # items per answer
MAX_HISTORY = 10_000  # items in a new user's history
MAX_TEXT = 2_000  # characters of a free text
MAX_ID = 200  # characters of an id
ID_REFUSED = {"Cc", "Cf", "Cs", "Zl", "Zp"}  # control, invisible format (zero-width, bidi), lone surrogate, line breaks
TEXT_ALLOWED = {"\t", "\n", "\r"}  # a text may hold tabs and line breaks, no other control character


def _first(value: str, refused: set[str], allowed: set[str] = frozenset()) -> tuple[int, str] | None:
    """(position, character) of the first character of a ``refused`` Unicode category, or None."""
    for c in allowed:
        value = value.replace(c, " ")
    if value.isprintable():  # the fast path: every refused category is unprintable
        return None
    return next(((n, c) for n, c in enumerate(value) if c not in allowed and unicodedata.category(c) in refused), None)


def check_id(value: object) -> str:
    """``value`` if it is a usable id or title: a string, not blank, without surrounding spaces or control characters."""
    if not isinstance(value, str):
        raise ValueError("must be a string")
    if not value.strip():
        raise ValueError("is empty or only whitespace")
    if value != value.strip():
        raise ValueError("starts or ends with whitespace")
    bad = _first(value, ID_REFUSED)
    if bad is not None:
        raise ValueError(f"holds a control or invisible character (U+{ord(bad[1]):04X} at position {bad[0]})")
    return value


def title_from_text(text: str) -> str:
    """A title made from an item's text: one line, no control or invisible characters, at most ``MAX_ID`` characters."""
    cleaned = "".join(" " if unicodedata.category(c) in ID_REFUSED else c for c in text)
    return " ".join(cleaned.split())[:MAX_ID].strip()


def check_text(value: object) -> str:
    """``value`` if it is a usable item text: not blank; tabs and line breaks allowed, other control characters not."""
    if not isinstance(value, str) or not value.strip():
        raise ValueError("is empty or only whitespace")
    bad = _first(value, {"Cc", "Cs"}, TEXT_ALLOWED)
    if bad is not None:
        raise ValueError(f"holds a control character (U+{ord(bad[1]):04X} at position {bad[0]})")
    return value

Id = Annotated[Union[Annotated[StrictStr, Field(min_length=1, max_length=MAX_ID)], StrictInt],
               Field(description="an id as in the bundle (a number is read as its decimal text)")]
K = Annotated[StrictInt, Field(ge=1, le=MAX_K, description=f"how many items to return (1 to {MAX_K})")]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class RecommendRequest(_Strict):
    """A known user by id, or a new (cold) user by the source-domain items they interacted with.

    The examples' ids are those of a MovieLens 100K bundle (``configs/fusion_ml100k.yaml``), as in the README.
    """

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"user": "42", "k": 10},
        {"history": ["273", "2", "144"], "ratings": [5, 4, 4], "k": 5},
    ]})

    user: Id | None = Field(None, description="a known user id (warm, or known from the source domain)")
    history: list[Id] | None = Field(None, min_length=1, max_length=MAX_HISTORY,
                                     description=f"a new user's source-domain item ids (1 to {MAX_HISTORY}); ids that "
                                                 "are not source-domain items are reported in unknown_items. A bundle "
                                                 "with a sequential model reads it in order, oldest first, items of "
                                                 "either domain, the most recent max_len of them (truncated from the "
                                                 "left); ids of neither domain are reported in unknown_items")
    ratings: list[Union[StrictFloat, StrictInt]] | None = Field(
        None, description="optional, one per history item, on the dataset's rating scale; checked, and not used by the "
                          "bundled text bridge, which pools the history's texts unweighted as it was trained")
    k: K = 10
    exclude_seen: StrictBool = Field(True, description="leave out the target items a known user has already seen")


class ScoredItem(BaseModel):
    item: str = Field(description="item id")
    title: str
    score: float = Field(description="higher is better (recommend: the fused standardised score; similar-items: cosine)")


class RecommendResponse(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "user": "42", "scorer": "mf", "weights": {"mf": 0.81, "lm_bridge": 0.12, "popularity": 0.07},
        "items": [{"item": "1", "title": "Toy Story", "score": 3.1}],
        "unknown_items": [], "history_used": 0, "bundle": "3f2a9c1e7b40"}]})

    user: str | None
    scorer: Literal["mf", "bridge", "sequential", "fallback"] = Field(
        description="the user's path: mf (warm user), bridge (source history only), sequential (an ordered history, "
                    "read by the bundle's next-item model), fallback (popularity)")
    weights: dict[str, float] = Field(description="the fusion weight of each scorer that served this user")
    items: list[ScoredItem]
    unknown_items: list[str] = Field(description="history ids the scorer does not know (not used): not source-domain "
                                                 "items, or, for a sequential model, items of neither domain")
    history_used: int = Field(description="history items the bridge or the sequential model read")
    bundle: str = Field(description="id of the bundle that answered")


class SimilarRequest(_Strict):
    """Items whose text is closest to a given item's (by id) or to a free text."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"item": "1", "k": 5}, {"text": "a romantic comedy in Paris", "k": 5}]})

    item: Id | None = None
    text: StrictStr | None = Field(None, min_length=1, max_length=MAX_TEXT)
    k: K = 10


class SimilarResponse(BaseModel):
    items: list[ScoredItem]
    bundle: str


class NewItemRequest(_Strict):
    """A new target-domain item, known only by its text."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"item": "The Grand Budapest Hotel (2014)",
         "text": "The Grand Budapest Hotel (2014). Genres: Comedy, Drama", "title": "The Grand Budapest Hotel"}]})

    item: StrictStr = Field(min_length=1, max_length=MAX_ID,
                            description="a new id: not blank, no surrounding spaces, no control or invisible characters")
    text: StrictStr = Field(min_length=1, max_length=MAX_TEXT, description="what the encoder reads, e.g. title and genres "
                                                                           "(tabs and line breaks allowed)")
    title: StrictStr | None = Field(None, min_length=1, max_length=MAX_ID,
                                    description="shown in answers (default: the text); the same rules as the id")

    @field_validator("item")
    @classmethod
    def _item(cls, value: str) -> str:
        return check_id(value)

    @field_validator("title")
    @classmethod
    def _title(cls, value: str | None) -> str | None:
        return None if value is None else check_id(value)

    @field_validator("text")
    @classmethod
    def _text(cls, value: str) -> str:
        return check_text(value)


class NewItemResponse(BaseModel):
    item: str
    n_items: int = Field(description="target items the service now recommends")
    bundle: str


class ReloadRequest(_Strict):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"bundle": "bundles/ml100k"}, {}]})

    bundle: StrictStr | None = Field(None, min_length=1, max_length=4096,
                                     description="path of the bundle to serve (default: the one being served, re-read)")


class ReloadResponse(BaseModel):
    bundle: dict
    previous: str
    carried_items: int = Field(description="items added through POST /items, carried over to the new bundle")
    seconds: float


class Health(BaseModel):
    status: str


class Ready(BaseModel):
    status: Literal["ready", "loading", "failed"]
    bundle: dict | None = Field(None, description="the bundle being served; its path only with the bearer token")
    n_items: int | None = None
    index: str | None = None
    encoder: dict | None = None
    store: dict | None = Field(None, description="the added-item store: status (ok, damaged, none), writable, items, "
                                                 "refresh_seconds, file (its full path only with the bearer token), detail")
    detail: str | None = None


class ErrorBody(BaseModel):
    detail: str = Field(description="one line per problem, each starting with the field at fault")
    errors: list[dict] = Field(default_factory=list, description="[{field, message}] for each problem")


__all__ = [
    "MAX_HISTORY", "check_id", "check_text", "title_from_text", "MAX_ID", "MAX_K", "MAX_TEXT", "ErrorBody", "Health",
    "NewItemRequest", "NewItemResponse", "Ready", "RecommendRequest", "RecommendResponse", "ReloadRequest",
    "ReloadResponse", "ScoredItem", "SimilarRequest", "SimilarResponse"
]
