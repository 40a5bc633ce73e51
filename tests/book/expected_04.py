"""Expected ranges for the records of chapter 04 (cross-domain transfer), per profile.

name -> (low, high), inclusive. Measured on CPU (seed 0): smoke on MovieLens 100K, full on
MovieLens 1M, first cold ratio (20 %). The ranges leave room for other hardware, while a
broken bridge (no transfer: a cold user placed at the mean user, or scored at random)
falls below them: the relations require every bridge to beat the target-only floor.
"""

from __future__ import annotations

STEM = "04_cross_domain_transfer"

EXPECTED: dict[str, dict[str, tuple[float, float]]] = {
    "smoke": {  # MovieLens 100K, action -> comedy, 20 % cold, seed 0; measured values in the comments
        "test_users": (93, 93),
        "popularity_ndcg10": (0.46, 0.48),  # 0.4702, deterministic (counts)
        "target_mf_ndcg10": (0.40, 0.52),  # 0.4699: the mean user ranks like popularity
        "emcdr_linear_ndcg10": (0.50, 0.66),  # 0.5697
        "emcdr_mlp_ndcg10": (0.50, 0.66),  # 0.5713
        "ptupcdr_ndcg10": (0.50, 0.68),  # 0.5968
        "cmf_ndcg10": (0.50, 0.66),  # 0.5793
        "lm_bridge_ndcg10": (0.50, 0.68),  # 0.5939
        "ptupcdr_lm_ndcg10": (0.50, 0.68),  # 0.5954
        "target_mf_rmse": (0.97, 1.06),  # 1.0129
        "emcdr_linear_rmse": (0.90, 1.00),  # 0.9603
        "ptupcdr_rmse": (0.90, 1.00),  # 0.9612
        "cmf_rmse": (0.90, 1.00),  # 0.9473
        "lm_bridge_rmse": (0.97, 1.07),  # 1.0175
        "share_hurt": (0.05, 0.35),  # 0.1828
        "amazon_available": (0, 1),
        # the loss-swapped rows and their paired differences (measured 0.5469, 0.5928, -0.0568, +0.0307)
        "lm_bridge_bpr_ndcg10": (0.45, 0.65),
        "emcdr_linear_softmax_ndcg10": (0.50, 0.67),
        "lm_bridge_bpr_minus_softmax_ndcg10": (-0.13, 0.02),
        "emcdr_softmax_minus_bpr_ndcg10": (-0.03, 0.09),
        "bridges_compared": (8, 8),
        # what the models recommend: popularity's ten comedies for everyone (10 / 604), the bridges more
        "popularity_coverage10": (0.0165, 0.0166),  # 0.01656, deterministic
        "best_transfer_coverage10": (0.04, 0.35),  # 0.1540
        "lm_bridge_novelty10": (6.6, 8.0),  # 7.02 bits
        "popularity_popular10": (1.0, 1.0),
    },
    "full": {  # MovieLens 1M; measured by `cdtl run configs/transfer_ml1m.yaml` (seed 0, 20 % cold), the same code
        "test_users": (600, 600),
        "popularity_ndcg10": (0.41, 0.43),  # 0.4226, deterministic (counts)
        "target_mf_ndcg10": (0.38, 0.46),  # 0.4219
        "emcdr_linear_ndcg10": (0.47, 0.56),  # 0.5144
        "emcdr_mlp_ndcg10": (0.47, 0.56),  # 0.5198
        "ptupcdr_ndcg10": (0.46, 0.55),  # 0.4993
        "cmf_ndcg10": (0.46, 0.55),  # 0.5080
        "lm_bridge_ndcg10": (0.46, 0.55),  # 0.5010
        "ptupcdr_lm_ndcg10": (0.46, 0.55),  # 0.5013
        "target_mf_rmse": (0.97, 1.03),  # 0.9984
        "emcdr_linear_rmse": (0.90, 0.96),  # 0.9282
        "ptupcdr_rmse": (0.90, 0.96),  # 0.9258
        "cmf_rmse": (0.89, 0.95),  # 0.9162
        "lm_bridge_rmse": (0.95, 1.03),  # 0.9870
        "share_hurt": (0.0, 0.5),  # not measured in the full profile: a bridge that hurts most users fails
        "amazon_available": (0, 1),
    },
}
RELATIONS = [
    ("emcdr_linear_ndcg10", ">", "popularity_ndcg10"),
    ("ptupcdr_ndcg10", ">", "popularity_ndcg10"),
    ("cmf_ndcg10", ">", "popularity_ndcg10"),
    ("ptupcdr_lm_ndcg10", ">", "popularity_ndcg10"),
    ("best_transfer_ndcg10_low", ">", "popularity_ndcg10_high"),
    ("emcdr_linear_rmse", "<", "target_mf_rmse"),
    ("ptupcdr_rmse", "<", "target_mf_rmse"),
    ("hurt_popularity_share", ">", "others_popularity_share"),  # the users transfer hurts are the mainstream ones
    # a bridge personalises: more of the catalogue is shown
    ("best_transfer_coverage10", ">", "popularity_coverage10"),
]
