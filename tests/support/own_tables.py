"""A small pair of own tables written as CSV or Parquet, with a change per column, for the table-loading tests."""

from __future__ import annotations

from pathlib import Path

import pandas as pd


def _tables(tmp_path: Path, suffix: str = ".csv", **changes) -> tuple[Path, Path]:
    inter = pd.DataFrame({
        "user_id": ["u1", "u1", "u2", "u2", "u3"],
        "item_id": ["m1", "b1", "m2", "b1", "b2"],
        "domain": ["movies", "books", "movies", "books", "books"],
        "rating": [5, 4, 3, 2, 1],
    })
    items = pd.DataFrame({"item_id": ["m1", "m2", "b1", "b2"], "domain": ["movies", "movies", "books", "books"],
                          "title": ["Alien &amp; co", "Heat", "Dune", "Emma"]})
    for key, value in changes.items():
        table, column = key.split("__")
        target = inter if table == "inter" else items
        if value is None:
            del target[column]
        else:
            target[column] = value
    paths = tmp_path / f"inter{suffix}", tmp_path / f"items{suffix}"
    for df, path in zip((inter, items), paths):
        df.to_parquet(path) if suffix == ".parquet" else df.to_csv(path, index=False)
    return paths


COLUMNS = {"user": "user_id", "item": "item_id"}
