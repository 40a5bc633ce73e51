"""Compose one text per item from its fields, most informative first, so a language model can read it."""

from __future__ import annotations

import html
import re
from collections.abc import Iterable, Sequence

_SPACE = re.compile(r"\s+")


def clean_text(value: object) -> str:
    """Unescape HTML entities (``&amp;``), drop tags and squeeze whitespace; None/NaN become ''."""
    if value is None:
        return ""
    if isinstance(value, float) and value != value:  # NaN
        return ""
    if isinstance(value, (list, tuple)):
        value = ", ".join(clean_text(v) for v in value if clean_text(v))
    text = html.unescape(str(value))
    text = re.sub(r"<[^>]+>", " ", text)
    return _SPACE.sub(" ", text).strip()


def compose_item_text(fields: Sequence[tuple[str, object]], max_chars: int | None = None) -> str:
    """Join labelled fields in the order given ("Title: X. Genres: Y.") and cut at ``max_chars``.

    The first field is written bare (it is the title); later fields carry their label.
    Fields are kept whole in order until the budget runs out, so the most informative
    fields (put first by the caller) survive truncation; the last kept field may be cut
    at a word boundary.
    """
    parts: list[str] = []
    for i, (label, value) in enumerate(fields):
        text = clean_text(value)
        if not text:
            continue
        parts.append(text if i == 0 or not label else f"{label}: {text}")
    joined = ". ".join(p.rstrip(".") for p in parts)
    if max_chars is not None and len(joined) > max_chars:
        cut = joined[:max_chars]
        joined = cut.rsplit(" ", 1)[0] if " " in cut else cut
    return joined


def join_genres(genres: Iterable[str]) -> str:
    """Genres as a readable list ("Action, Comedy")."""
    return ", ".join(g for g in genres if g)
