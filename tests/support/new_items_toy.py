"""The hand-made two-taste-group set and the fast settings the new-item and few-shot kinds' tests run on."""

from __future__ import annotations

import numpy as np
import pandas as pd

from cdtl.data.tables import RecData

FAST = {"mf": {"dim": 8, "epochs": 5, "batch_size": 64},
        "dropoutnet": {"dim": 8, "hidden": 16, "epochs": 3, "batch_size": 64},
        "lm_bridge": {"dim": 8, "hidden": 16, "epochs": 3, "batch_size": 64},
        "ptupcdr": {"hidden": 16, "epochs": 3, "batch_size": 64},
        "text": {"max_length": 16}, "evaluate": {"metrics": ["ndcg@3"], "monitor": "ndcg@3", "bootstrap": 20}}


def toy(n_users: int = 60) -> RecData:
    """Two taste groups; each user consumes 5 of their group's 10 target items and 3 of its 5 source items."""
    rng = np.random.default_rng(0)
    rows = []
    for u in range(n_users):
        g = u % 2
        for t, j in enumerate(rng.choice(10, 5, replace=False) + 10 * g):
            rows.append((f"u{u:02d}", f"t{j:02d}", t, "tgt"))
        for t, j in enumerate(rng.choice(5, 3, replace=False) + 5 * g):
            rows.append((f"u{u:02d}", f"s{j}", 10 + t, "src"))
    inter = pd.DataFrame(rows, columns=["user", "item", "timestamp", "domain"])
    words = lambda j, n: "space robots" if j < n else "wedding love"  # noqa: E731
    items = pd.DataFrame([(f"t{j:02d}", f"{words(j, 10)} film {j}", "tgt", 1990 + j % 10) for j in range(20)]
                         + [(f"s{j}", f"{words(j, 5)} book {j}", "src", 1990) for j in range(10)],
                         columns=["item", "text", "domain", "year"])
    items["title"] = items["text"]
    return RecData("toy", inter, items)
