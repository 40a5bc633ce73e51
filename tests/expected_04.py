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
        "popularity_ndcg10": (0.44, 0.50),  # 0.4702, deterministic (counts)
        "target_mf_ndcg10": (0.40, 0.52),
        "emcdr_linear_ndcg10": (0.52, 0.70),
        "ptupcdr_ndcg10": (0.52, 0.70),
        "cmf_ndcg10": (0.52, 0.70),
        "lm_bridge_ndcg10": (0.44, 0.62),
        "ptupcdr_lm_ndcg10": (0.52, 0.70),
        "target_mf_rmse": (0.95, 1.10),
        "emcdr_linear_rmse": (0.88, 1.02),
        "ptupcdr_rmse": (0.88, 1.04),
        "share_hurt": (0.0, 0.5),
        "amazon_available": (0, 1),
    },
    "full": {  # MovieLens 1M
        "test_users": (600, 600),
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
    ("lm_tail_recall", ">", "ptupcdr_tail_recall"),
]
