"""Turn one catalogue into two domains (MovieLens by genre), keeping the users who bridge them."""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

from cdtl.data.tables import DataError, RecData

#: the course's default genre split of MovieLens: thrills versus laughs and family
SOURCE_GENRES = ("Action", "Adventure", "Thriller")
TARGET_GENRES = ("Comedy", "Romance", "Children's")


def split_by_genre(
    data: RecData,
    source_genres: Sequence[str] = SOURCE_GENRES,
    target_genres: Sequence[str] = TARGET_GENRES,
    names: tuple[str, str] = ("action", "comedy"),
) -> RecData:
    """Assign each item to the source or target domain by its genres.

    An item whose genres meet exactly one of the two groups goes to that domain. Items
    meeting both groups (e.g. an action comedy) or neither (a drama) belong to no domain:
    they and their interactions are left out, and the counts are reported in
    ``notes["excluded"]`` so nothing disappears silently.
    """
    if "genres" not in data.items.columns:
        raise DataError(f"{data.name}: items have no 'genres' column; a genre split needs one")
    src, tgt = set(source_genres), set(target_genres)
    if not src or not tgt:
        raise ValueError("source_genres and target_genres must both be non-empty")
    if src & tgt:
        raise ValueError(f"a genre cannot be in both domains: {sorted(src & tgt)}")
    if names[0] == names[1]:
        raise ValueError(f"the two domain names must differ, got {names}")
    known = {g for gs in data.items["genres"] for g in gs}
    unknown = sorted((src | tgt) - known)
    if unknown:
        raise ValueError(f"genre(s) {unknown} do not occur in {data.name}; known genres: {sorted(known)}")

    in_src = data.items["genres"].map(lambda gs: bool(src.intersection(gs)))
    in_tgt = data.items["genres"].map(lambda gs: bool(tgt.intersection(gs)))
    items = data.items.copy()
    items["domain"] = None
    items.loc[in_src & ~in_tgt, "domain"] = names[0]
    items.loc[in_tgt & ~in_src, "domain"] = names[1]
    kept_items = pd.concat([items[items["domain"] == dom] for dom in names], ignore_index=True)
    domain_of = kept_items.set_index("item")["domain"]
    inter = data.interactions
    keep = inter["item"].isin(domain_of.index)
    interactions = inter[keep].copy()
    interactions["domain"] = domain_of.reindex(interactions["item"]).to_numpy()
    for dom in names:
        if not (interactions["domain"] == dom).any():
            raise DataError(f"{data.name}: genre split leaves domain {dom!r} with no interactions")
    excluded = {
        "items_in_both_groups": int((in_src & in_tgt).sum()),
        "items_in_neither_group": int((~in_src & ~in_tgt).sum()),
        "interactions": int((~keep).sum()),
    }
    notes = dict(data.notes)
    notes.update({
        "split": {"by": "genre", names[0]: sorted(src), names[1]: sorted(tgt)},
        "excluded": excluded,
    })
    return RecData(
        name=f"{data.name}:{names[0]}-{names[1]}",
        interactions=interactions.reset_index(drop=True),
        items=kept_items,
        users=data.users,
        rating_scale=data.rating_scale,
        notes=notes,
    )


def overlap_users(data: RecData, source: str, target: str) -> pd.Index:
    """Users with at least one interaction in both ``source`` and ``target`` (sorted)."""
    for dom in (source, target):
        if dom not in data.domains:
            raise ValueError(f"unknown domain {dom!r}; {data.name} has domains {data.domains}")
    inter = data.interactions
    src_users = pd.Index(inter.loc[inter["domain"] == source, "user"].unique())
    tgt_users = pd.Index(inter.loc[inter["domain"] == target, "user"].unique())
    return src_users.intersection(tgt_users).sort_values()
