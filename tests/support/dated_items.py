"""The hand-made two-domain set whose target items are released and first watched in a known order."""

from __future__ import annotations

import numpy as np
import pandas as pd

from cdtl.data.tables import RecData

N_USERS = 40


def toy(seed: int = 0) -> RecData:
    """20 target items t00..t19 released in years 1980 + j and first watched at time 100 + j (t19 newest on both
    counts); 6 source items. Every user watches 8 target items and 3 source items; user u07 watches target items only."""
    rng = np.random.default_rng(seed)
    rows = []
    for u in range(N_USERS):
        for j in rng.choice(20, 8, replace=False):
            rows.append((f"u{u:02d}", f"t{j:02d}", 100 + j + 1000 * u, "tgt"))
        if u != 7:
            for j in rng.choice(6, 3, replace=False):
                rows.append((f"u{u:02d}", f"s{j}", j, "src"))
    inter = pd.DataFrame(rows, columns=["user", "item", "timestamp", "domain"])
    items = pd.DataFrame({"item": [f"t{j:02d}" for j in range(20)] + [f"s{j}" for j in range(6)],
                          "year": [1980 + j for j in range(20)] + [1990] * 6,
                          "domain": ["tgt"] * 20 + ["src"] * 6})
    items["title"] = items["text"] = "item " + items["item"]
    return RecData("toy", inter, items)
