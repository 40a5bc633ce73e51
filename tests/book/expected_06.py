"""Expected ranges for the records of the transferable sequential chapter, per profile.

name -> (low, high), inclusive; exact counts are ranges of width zero. Measured on CPU (seed 0)
in the smoke profile: MovieLens 100K, action -> comedy, no user or item shared, the chapter under
nbval (the same code path as ``cdtl run configs/sequential_ml100k.yaml``); measured values in the
comments. The ranges leave room for other hardware around trained numbers, while a broken run (a
causal mask that leaks, a shared user, history items left in the ranking, a sampled view that
does not sample) falls outside them. The full profile has not been run yet: no ranges.
"""

from __future__ import annotations

STEM = "06_transferable_sequential"

EXPECTED: dict[str, dict[str, tuple[float, float]]] = {
    "smoke": {
        "target_users": (448, 448),
        "source_users": (495, 495),
        "target_items": (604, 604),
        "shared_users": (0, 0),
        "tied_share": (0.40, 0.55),  # 0.474
        "negatives": (99, 99),
        "causal_earlier_change": (0.0, 1e-5),  # 0.0
        "causal_last_change": (0.1, 10.0),  # 2.31
        "no_mask_earlier_change": (0.01, 10.0),  # 0.578
        "popularity_1_ndcg10": (0.02, 0.06),  # 0.0372
        "popularity_5_ndcg10": (0.035, 0.075),  # 0.0549
        "popularity_20_ndcg10": (0.045, 0.085),  # 0.0634
        "popularity_100_ndcg10": (0.055, 0.09),  # 0.0715
        "item_knn_1_ndcg10": (0.025, 0.07),  # 0.0461
        "item_knn_5_ndcg10": (0.035, 0.08),  # 0.0583
        "item_knn_20_ndcg10": (0.045, 0.095),  # 0.0680
        "item_knn_100_ndcg10": (0.09, 0.14),  # 0.1142
        "gru4rec_1_ndcg10": (0.0, 0.05),  # 0.0202
        "gru4rec_5_ndcg10": (0.0, 0.05),  # 0.0244
        "gru4rec_20_ndcg10": (0.0, 0.06),  # 0.0254
        "gru4rec_100_ndcg10": (0.045, 0.11),  # 0.0763
        "sasrec_1_ndcg10": (0.0, 0.04),  # 0.0120
        "sasrec_5_ndcg10": (0.0, 0.04),  # 0.0120
        "sasrec_20_ndcg10": (0.03, 0.09),  # 0.0608
        "sasrec_100_ndcg10": (0.08, 0.14),  # 0.1088
        "sasrec_shuffled_ndcg10": (0.045, 0.10),  # 0.0732
        "text_zero_shot_ndcg10": (0.005, 0.05),  # 0.0240
        "text_adaptor_1_ndcg10": (0.005, 0.05),  # 0.0229
        "text_adaptor_5_ndcg10": (0.005, 0.05),  # 0.0204
        "text_adaptor_20_ndcg10": (0.015, 0.07),  # 0.0429
        "text_adaptor_100_ndcg10": (0.045, 0.11),  # 0.0758
        "text_full_1_ndcg10": (0.005, 0.05),  # 0.0199
        "text_full_5_ndcg10": (0.005, 0.05),  # 0.0174
        "text_full_20_ndcg10": (0.01, 0.065),  # 0.0347
        "text_full_100_ndcg10": (0.055, 0.115),  # 0.0860
        "zero_vs_pop_diff": (-0.08, -0.015),  # -0.0475
        "full_vs_sasrec_1_diff": (-0.02, 0.035),  # +0.0078
        "full_vs_sasrec_5_diff": (-0.02, 0.035),  # +0.0054
        "full_vs_sasrec_100_diff": (-0.05, 0.005),  # -0.0228
        "adaptor_vs_sasrec_1_diff": (-0.015, 0.035),  # +0.0109
        "order_diff": (0.0, 0.07),  # +0.0356
        "pairs_compared": (28, 28),
        "pairs_swapped": (0, 6),  # 1
        "popularity_sampled_ndcg10": (0.17, 0.26),  # 0.2109
        "sampled_minus_full_min": (0.05, 0.2),  # 0.0991
        "popularity_sampled10_ndcg10": (0.55, 0.72),  # 0.6400
        "sasrec_last_1_ndcg10": (0.07, 0.14),  # 0.1081
        "sasrec_last_3_ndcg10": (0.07, 0.14),  # 0.1049
        "sasrec_last_all_ndcg10": (0.08, 0.14),  # 0.1088
    },
    "full": {},
}

# What the chapter states: the causal mask hides the future and its absence does not; reading the whole window is
# the learning curve's number; sampled metrics sit above full ranking; with every target history SASRec and the
# last-item k-NN beat popularity.
RELATIONS = [
    ("causal_earlier_change", "<", "no_mask_earlier_change"),
    ("sasrec_last_all_ndcg10", "==", "sasrec_100_ndcg10"),
    ("popularity_sampled_ndcg10", ">", "popularity_100_ndcg10"),
    ("popularity_sampled10_ndcg10", ">", "popularity_sampled_ndcg10"),
    ("sasrec_100_ndcg10", ">", "popularity_100_ndcg10"),
    ("item_knn_100_ndcg10", ">", "popularity_100_ndcg10"),
]
