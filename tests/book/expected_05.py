"""Expected ranges for the records of chapter 05 (new items and new domains), per profile.

name -> (low, high), inclusive; exact counts are ranges of width zero. Smoke: MovieLens 100K,
the newest 20 % of comedies by year, 20 % cold users, seed 0, measured on CPU under nbval
(values in the comments). Models that train nothing (random, popularity, genre popularity,
content k-NN and the two-tower with the pretrained encoder) are deterministic and get tight
ranges; trained ones get room for other hardware. The smoke profile runs the tuned encoder
with content k-NN, the two-tower and the LM bridge only. A leak of new items or cold users into
training, an id model given scores for new items, or a text model that ignores the text
falls outside them. The full profile checks the invariants and counts only. The MovieLens 1M and full Amazon values
the chapter quotes are read from the runs committed under results/ (``make results``), the
same in both profiles: their ranges are in _RESULTS, checked in both.
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

# read from results/ (make results), the same in every profile
# (committed files read the same way every time: a range of 0.001 around the value, counts exact)
_RESULTS: dict[str, tuple[float, float]] = {
    "ml1m_new_items": (266, 266),
    "ml1m_test_users": (2976, 2976),
    "ml1m_warm_new_text_mean": (0.1072, 0.1082),  # 0.1077
    "ml1m_warm_new_no_text_mean": (0.0544, 0.0554),  # 0.0549
    "ml1m_warm_new_low": (0.0463, 0.0473),  # 0.0468
    "ml1m_warm_new_high": (0.0587, 0.0597),  # 0.0592
    "ml1m_cold_new_text_mean": (0.0766, 0.0776),  # 0.0771
    "ml1m_cold_new_no_text_mean": (0.0456, 0.0466),  # 0.0461
    "ml1m_cold_new_low": (0.0178, 0.0188),  # 0.0183
    "ml1m_cold_new_high": (0.0425, 0.0435),  # 0.0430
    "ml1m_mixed_new_text_mean": (0.0268, 0.0278),  # 0.0273
    "ml1m_mixed_new_no_text_mean": (0.0090, 0.0100),  # 0.0095
    "ml1m_mixed_new_low": (0.0142, 0.0152),  # 0.0147
    "ml1m_mixed_new_high": (0.0208, 0.0218),  # 0.0213
    "amazon_full_test_users": (1928, 1928),
    "amazon_full_popularity_0": (0.0109, 0.0119),  # 0.0114
    "amazon_full_content_knn_frozen_0": (0.0027, 0.0037),  # 0.0032
    "amazon_full_pop_vs_knn_0_low": (0.0044, 0.0054),  # 0.0049
    "amazon_full_pop_vs_knn_0_high": (0.0109, 0.0119),  # 0.0114
    "amazon_full_target_vs_knn_1_low": (0.0125, 0.0135),  # 0.0130
    "amazon_full_target_vs_knn_1_high": (0.0199, 0.0209),  # 0.0204
    "amazon_full_target_vs_knn_3_low": (0.0140, 0.0150),  # 0.0145
    "amazon_full_target_vs_knn_5_low": (0.0192, 0.0202),  # 0.0197
    "amazon_full_target_vs_knn_5_high": (0.0301, 0.0311),  # 0.0306
    "amazon_full_blend_frozen_5": (0.0440, 0.0450),  # 0.0445
    "amazon_full_target_knn_5": (0.0399, 0.0409),  # 0.0404
}

EXPECTED: dict[str, dict[str, tuple[float, float]]] = {
    "smoke": {
        **_INVARIANTS,
        **_RESULTS,
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
        "dropoutnet_frozen_warm_old": (0.22, 0.40),  # 0.2984
        "dropoutnet_frozen_warm_new": (0.06, 0.13),  # 0.1024
        "lm_bridge_frozen_cold_old": (0.56, 0.70),  # 0.6427
        "lm_bridge_frozen_warm_new": (0.06, 0.12),  # 0.0876
        "ptupcdr_lm_frozen_warm_old": (0.32, 0.44),  # 0.3803
        "lm_bridge_tuned_cold_old": (0.56, 0.70),  # 0.6442
        "best_text_mixed_new_low": (0.018, 0.04),  # 0.0249
        "best_no_text_mixed_new_high": (0.012, 0.02),  # 0.0156
        # Amazon, a 2,000-user sample: no shared user in training (deterministic models only)
        "fewshot_popularity_0": (0.018, 0.026),  # 0.0221
        "fewshot_content_knn_frozen_0": (0.003, 0.008),  # 0.0051
        "fewshot_content_knn_frozen_5": (0.03, 0.045),  # 0.0379
        "fewshot_blend_frozen_0": (0.012, 0.026),  # 0.0189: popularity's log counts plus the chosen weight of text
        # paired comparisons the prose states (difference of the means, 95 % paired interval)
        "ptupcdr_vs_mf_warm_old_diff": (-0.03, 0.08),  # +0.0244 [+0.0011, +0.0466]: better
        "lm_bridge_vs_popularity_cold_old_diff": (0.06, 0.22),  # +0.1422 [+0.1000, +0.1825]: better
        "lm_bridge_vs_popularity_cold_old_low": (0.0, 0.2),  # the interval excludes 0: "better", as chapter 04
        "verdict_warm_new_text_mean": (0.05, 0.13),  # lm_bridge [frozen] 0.0876, chosen on validation users
        "verdict_warm_new_no_text_mean": (0.04, 0.08),  # random 0.0685
        "verdict_cold_new_text_mean": (0.04, 0.12),  # content_knn [tuned] 0.0767
        "verdict_cold_new_no_text_mean": (0.04, 0.08),  # random 0.0655
        "verdict_mixed_new_text_mean": (0.02, 0.045),  # content_knn [frozen] 0.0329
        "verdict_mixed_new_no_text_mean": (0.009, 0.014),  # random 0.0113
        "verdict_mixed_new_diff": (0.008, 0.035),  # +0.0217 [+0.0132, +0.0321]
        "verdict_mixed_new_low": (0.0, 0.03),  # among all items text is better than random, paired
        "genre_vs_random_warm_new_diff": (-0.03, 0.0),  # -0.0157 [-0.0297, -0.0010]: nothing trained
        "tuning_users": (256, 256),
        "tuning_compared": (9, 9),  # 3 tuned models x 3 new-item cells
        "tuning_significant": (0, 9),  # 2 of 9 in this run, the largest |difference| 0.0065
        "tuning_largest_abs_diff": (0.0, 0.03),
        # beyond accuracy: the test users' top ten of the whole catalogue (deterministic models tight)
        "ba_random_coverage": (0.95, 1.0),  # 1.0
        "ba_popularity_coverage": (0.062, 0.064), "ba_popularity_popular_share": (1.0, 1.0),
        "ba_popularity_new_share": (0.0, 0.0), "ba_mf_new_share": (0.0, 0.0),  # cannot serve: old items only
        "ba_content_knn_frozen_coverage": (0.30, 0.38),  # 0.338
        "ba_content_knn_frozen_new_share": (0.24, 0.34),  # 0.292
        "ba_two_tower_frozen_coverage": (0.45, 0.55),  # 0.495
        "ba_dropoutnet_frozen_popular_share": (0.7, 1.0),  # 0.998: its new items score below the old ones
        # few-shot on the 2,000-user sample, paired
        "fewshot_test_users": (78, 78),
        "few_pop_vs_knn_0_diff": (0.005, 0.03),  # +0.0170 [+0.0015, +0.0352]: nothing trained
        "few_blend_vs_base_0_diff": (-0.02, 0.01),  # -0.0032
        # exercises
        "mf_forced_warm_new": (0.06, 0.13),  # 0.0940: ties in index order, not a model result
        "mf_forced_mixed_new": (0.0, 0.005),  # 0.0
        "index_correlation": (0.3, 0.45),  # 0.378
        "knn_k1_warm_new": (0.05, 0.07), "knn_k10_warm_new": (0.05, 0.065), "knn_knone_warm_new": (0.065, 0.08),
        "knn_k1_cold_new": (0.06, 0.08), "knn_k10_cold_new": (0.075, 0.09), "knn_knone_cold_new": (0.08, 0.095),
        "per_new_item_year": (40.5, 40.6),  # 40.51 held-out interactions per new item
        "per_new_item_first_interaction": (11.0, 11.2),  # 11.09
        "per_new_item_random": (59.7, 59.9),  # 59.78
    },
    "full": {
        **_INVARIANTS,
        **_RESULTS,
        "new_items": (266, 266),  # MovieLens 1M: the newest 20 % of the comedies with ratings
    },
}
RELATIONS = [
    ("two_tower_frozen_mixed_new", ">", "random_mixed_new"),  # among all items, text surfaces new items, random barely
    ("best_text_mixed_new_low", ">", "best_no_text_mixed_new_high"),  # ... with intervals apart
    ("verdict_mixed_new_text_mean", ">", "verdict_mixed_new_no_text_mean"),  # the validation users' choices, on test users
    ("lm_bridge_frozen_cold_old", ">", "popularity_cold_old"),  # cold users on old items: text bridges beat popularity
    ("dropoutnet_frozen_cold_old", ">", "popularity_cold_old"),
    ("ptupcdr_lm_frozen_warm_old", ">", "mf_warm_old"),  # ids and text together beat ids alone on old items
    ("fewshot_popularity_0", ">", "fewshot_content_knn_frozen_0"),  # no shared users: text alone loses at 0 shots
]
