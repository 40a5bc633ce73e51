"""Expected ranges for the records of chapter 07 (softmax fusion), per profile.

name -> (low, high), inclusive; exact counts are ranges of width zero. Measured on CPU
(seed 0, one thread): smoke on MovieLens 100K (the chapter under nbval), full on
MovieLens 1M (``cdtl run configs/fusion_ml1m.yaml``, the same code path as the chapter).
The ranges leave room for other hardware around trained numbers, while a broken run (a
fusion that ignores a scorer, weights that do not sum to one, MF weight on cold users, a
leak of test items into training or fitting) falls outside them. Full-profile records
that the config run does not produce (the temperature illustration, the mixture
variant) have ranges from what they mean rather than from a measurement: marked below.
"""

from __future__ import annotations

STEM = "07_softmax_fusion"

EXPECTED: dict[str, dict[str, tuple[float, float]]] = {
    "smoke": {  # MovieLens 100K, action -> comedy, 20 % cold, seed 0; measured values in the comments
        "test_warm_users": (739, 739),
        "test_cold_users": (93, 93),
        "weights_sum_max_abs_error": (0.0, 1e-5),
        "masked_weight_max": (0.0, 0.0),
        "user_weight_mf_cold": (0.0, 0.0),
        "user_weight_mf_warm": (0.6, 0.95),  # 0.846
        "entropy_share_t01": (0.01, 0.30),  # 0.084: nearly one-hot
        "entropy_share_t10": (0.98, 1.0),  # 0.9993: nearly uniform
        "mf_ndcg10": (0.15, 0.19),  # 0.1690 (popularity for cold users)
        "mf_ndcg10_warm": (0.11, 0.15),  # 0.1312
        "mf_ndcg10_cold": (0.44, 0.50),  # 0.4698 = popularity
        "lm_bridge_ndcg10": (0.15, 0.20),  # 0.1741
        "lm_bridge_ndcg10_cold": (0.53, 0.65),  # 0.5875
        "popularity_ndcg10": (0.12, 0.15),  # 0.1350
        "popularity_ndcg10_cold": (0.44, 0.50),  # 0.4698
        "uniform_ndcg10": (0.16, 0.21),  # 0.1827
        "fusion_global_ndcg10": (0.16, 0.21),  # 0.1846
        "fusion_user_ndcg10": (0.165, 0.21),  # 0.1844
        "fusion_user_ndcg10_low": (0.145, 0.19),  # 0.1654
        "fusion_user_ndcg10_high": (0.18, 0.23),  # 0.2005
        "fusion_user_ndcg10_warm": (0.115, 0.155),  # 0.1326
        "fusion_user_ndcg10_cold": (0.53, 0.66),  # 0.5958
        "fusion_user_recall10": (0.18, 0.24),  # 0.2073
        "mixture_user_ndcg10": (0.16, 0.21),  # 0.1828
        # paired differences from the LM bridge alone, on the same test users (measured +0.0108, +0.0108, +0.0090, cold +0.0094)
        "fusion_user_minus_lm_bridge_ndcg10": (-0.01, 0.035),
        "fusion_global_minus_lm_bridge_ndcg10": (-0.01, 0.035),
        "uniform_minus_lm_bridge_ndcg10": (-0.01, 0.035),
        "fusion_user_minus_lm_bridge_ndcg10_cold": (-0.02, 0.04),
        "mixture_minus_geometric_ndcg10": (-0.03, 0.02),  # -0.0017, within noise
    },
    "full": {  # MovieLens 1M; measured by `cdtl run configs/fusion_ml1m.yaml` (seed 0), the same code path
        "test_warm_users": (4731, 4731),
        "test_cold_users": (600, 600),
        "weights_sum_max_abs_error": (0.0, 1e-5),
        "masked_weight_max": (0.0, 0.0),
        "user_weight_mf_cold": (0.0, 0.0),
        "user_weight_mf_warm": (0.3, 0.8),  # mean MF weight of warm test users 0.505
        "entropy_share_t01": (0.0, 0.4),  # not measured: nearly one-hot at T = 0.1
        "entropy_share_t10": (0.97, 1.0),  # not measured: nearly uniform at T = 10
        "mf_ndcg10": (0.12, 0.145),  # 0.1320
        "mf_ndcg10_warm": (0.085, 0.105),  # 0.0953
        "mf_ndcg10_cold": (0.40, 0.445),  # 0.4213 = popularity
        "lm_bridge_ndcg10": (0.135, 0.165),  # 0.1494
        "lm_bridge_ndcg10_cold": (0.47, 0.53),  # 0.5006
        "popularity_ndcg10": (0.10, 0.12),  # 0.1107
        "popularity_ndcg10_cold": (0.40, 0.445),  # 0.4213
        "uniform_ndcg10": (0.14, 0.165),  # 0.1513
        "fusion_global_ndcg10": (0.14, 0.165),  # 0.1511
        "fusion_user_ndcg10": (0.14, 0.17),  # 0.1548
        "fusion_user_ndcg10_low": (0.135, 0.165),  # 0.1484
        "fusion_user_ndcg10_high": (0.145, 0.175),  # 0.1614
        "fusion_user_ndcg10_warm": (0.10, 0.12),  # 0.1107
        "fusion_user_ndcg10_cold": (0.47, 0.53),  # 0.5025
        "fusion_user_recall10": (0.13, 0.16),  # 0.1436
        "mixture_user_ndcg10": (0.10, 0.17),  # not measured with these settings
    },
}

# What the chapter claims: per-user fusion beats every single scorer and the uniform average on all
# target users, and is no worse than the best single scorer (popularity) on cold users.
RELATIONS = [
    ("fusion_user_ndcg10", ">", "mf_ndcg10"),
    ("fusion_user_ndcg10", ">", "lm_bridge_ndcg10"),
    ("fusion_user_ndcg10", ">", "popularity_ndcg10"),
    ("fusion_user_ndcg10", ">", "uniform_ndcg10"),
    ("fusion_user_ndcg10_cold", ">", "popularity_ndcg10_cold"),
    ("fusion_user_ndcg10_cold", ">", "lm_bridge_ndcg10_cold"),  # no worse than the best single scorer on cold users
    ("mf_ndcg10_cold", "==", "popularity_ndcg10_cold"),  # MF alone falls back to popularity for cold users
    ("entropy_share_t01", "<", "entropy_share_t10"),
]
