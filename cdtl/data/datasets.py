"""Load any registered dataset by name, and describe it as the command line prints it."""

from __future__ import annotations

from typing import Any

from cdtl.data import registry
from cdtl.data.custom import load_tables
from cdtl.data.domains import split_by_genre
from cdtl.data.download import fetch
from cdtl.data.movielens import ALIASES, load_movielens
from cdtl.data.tables import RecData


def load_amazon_food_kitchen() -> RecData:
    """The real Amazon Food-Kitchen pair, run as Kitchen -> Food (implicit; ``timestamp``: position in a history)."""
    directory = fetch("amazon-food-kitchen")
    return load_tables(
        directory / "interactions.csv.gz",
        directory / "items.csv.gz",
        name="amazon-food-kitchen",
        columns={"user": "user_id", "item": "item_id", "timestamp": "position"},
    )


def load(name: str, domains: str | None = None) -> RecData:
    """Load a registered dataset; ``domains="genre"`` splits a MovieLens into two genre domains."""
    name = ALIASES.get(name, name)
    registry.get(name)  # unknown names fail here with the list of valid ones
    if name.startswith("movielens"):
        data = load_movielens(name)
    elif name == "amazon-food-kitchen":
        data = load_amazon_food_kitchen()
    else:  # pragma: no cover - every registry entry has a loader above
        raise NotImplementedError(f"no loader for {name}")
    if domains is None:
        return data
    if domains != "genre":
        raise ValueError(f"unknown domain split {domains!r}; expected 'genre'")
    if data.domains:
        raise ValueError(f"{name} already has domains {data.domains}; a genre split applies to MovieLens only")
    return split_by_genre(data)


def info(name: str, domains: str | None = None) -> dict[str, Any]:
    """The JSON summary printed by ``cdtl data info``: counts per domain and users in both."""
    return load(name, domains).summary()
