"""Expected ranges for the records of chapter 05 (new items and new domains), per profile.

name -> (low, high), inclusive; exact counts are ranges of width zero. Smoke: MovieLens 100K,
the newest 20 % of comedies by year, 20 % cold users, seed 0, measured on CPU under nbval
(values in the comments). Models that train nothing (random, popularity, genre popularity,
content k-NN and the two-tower with the pretrained encoder) are deterministic and get tight
ranges; trained ones get room for other hardware. The smoke profile runs the tuned encoder
with content k-NN, the two-tower and the LM bridge only. A leak of new items or cold users into
training, an id model given scores for new items, or a text model that ignores the text
falls outside them. The full profile checks the invariants and counts only: its metrics
come from `cdtl run configs/newitems_ml1m.yaml` and are reported with the chapter's
measurements, not pinned here.
"""

from __future__ import annotations

STEM = "05_new_items_and_domains"

_INVARIANTS = {
    "new_item_leak": (0, 0),
    "cold_leak": (0, 0),
    "mf_serves_new": (0, 0),  # id-only MF is reported as "cannot serve" on new items
    "mf_warm_new": (-1.0, -1.0),  # -1 is what the chapter records for "cannot serve"
    "popularity_cold_new": (-1.0, -1.0),
    "amazon_available": (0, 1),
    "decoder_available": (0, 1),
}

EXPECTED: dict[str, dict[str, tuple[float, float]]] = {
    "smoke": {
        **_INVARIANTS,
        "new_items": (121, 121),
        # deterministic: nothing trained
        "random_warm_new": (0.06, 0.08),  # 0.0685
        "random_mixed_new": (0.009, 0.014),  # 0.0113
        "popularity_warm_old": (0.22, 0.25),  # 0.2370
        "popularity_cold_old": (0.48, 0.52),  # 0.5006
        "genre_popularity_warm_new": (0.045, 0.06),  # 0.0529
        "genre_popularity_cold_new": (0.05, 0.07),  # 0.0593
        "content_knn_frozen_warm_new": (0.05, 0.07),  # 0.0590
        "content_knn_frozen_cold_new": (0.065, 0.085),  # 0.0730
        "two_tower_frozen_warm_new": (0.055, 0.075),  # 0.0649
        "two_tower_frozen_mixed_new": (0.03, 0.04),  # 0.0344
        # trained
        "mf_warm_old": (0.28, 0.42),  # 0.3559
        "dropoutnet_frozen_warm_old": (0.22, 0.40),  # 0.2994
        "dropoutnet_frozen_warm_new": (0.06, 0.13),  # 0.1006
        "lm_bridge_frozen_cold_old": (0.56, 0.70),  # 0.6427
        "lm_bridge_frozen_warm_new": (0.06, 0.12),  # 0.0876
        "ptupcdr_lm_frozen_warm_old": (0.32, 0.44),  # 0.3831
        "lm_bridge_tuned_cold_old": (0.56, 0.70),  # 0.6442
        "best_text_mixed_new_low": (0.018, 0.04),  # 0.0270
        "best_no_text_mixed_new_high": (0.012, 0.02),  # 0.0156
        # Amazon, a 2,000-user sample: no shared user in training (deterministic models only)
        "fewshot_popularity_0": (0.018, 0.026),  # 0.0221
        "fewshot_content_knn_frozen_0": (0.003, 0.008),  # 0.0051
        "fewshot_content_knn_frozen_5": (0.03, 0.045),  # 0.0379
        "fewshot_blend_frozen_0": (0.012, 0.026),  # 0.0189: popularity's log counts plus the chosen weight of text
    },
    "full": {
        **_INVARIANTS,
        "new_items": (266, 266),  # MovieLens 1M: the newest 20 % of the comedies with ratings
    },
}
RELATIONS = [
    ("two_tower_frozen_mixed_new", ">", "random_mixed_new"),  # among all items, text surfaces new items, random barely
    ("best_text_mixed_new_low", ">", "best_no_text_mixed_new_high"),  # ... with intervals apart
    ("lm_bridge_frozen_cold_old", ">", "popularity_cold_old"),  # cold users on old items: text bridges beat popularity
    ("dropoutnet_frozen_cold_old", ">", "popularity_cold_old"),
    ("ptupcdr_lm_frozen_warm_old", ">", "mf_warm_old"),  # ids and text together beat ids alone on old items
    ("fewshot_popularity_0", ">", "fewshot_content_knn_frozen_0"),  # no shared users: text alone loses at 0 shots
]
