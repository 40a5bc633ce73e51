"""Expected ranges for the records of chapter 09 (deployment and A/B testing), per profile.

name -> (low, high), inclusive; exact values are ranges of width zero. Smoke: MovieLens
100K (the chapter under nbval); full: MovieLens 1M. Timings are never checked here (the
benchmarks report them); what is checked could only fail if the service, the bundle or
the statistics broke: the served NDCG equals the experiment's, a tampered bundle is
refused, a new item is found by its own text, no load-test request fails, an A/A test
with one look keeps its false-positive rate within 0.01 of alpha, peeking inflates it,
and interleaving needs fewer users than the A/B test.
"""

from __future__ import annotations

STEM = "09_deployment"

_ALWAYS = {
    "bundle_files": (9, 9),
    "tampered_bundle_refused": (1, 1),
    "warm_scorer_is_mf": (1, 1),
    "cold_scorer_is_bridge": (1, 1),
    "new_item_found_rank": (1, 1),
    "new_item_recommendable": (1, 1),
    "bad_request_status": (422, 422),
    "load_errors": (0, 0),
    "load_requests": (50, 10**7),
    "batch_users": (100, 10**7),  # every warm user of the bundle, scored by cdtl recommend
    "batch_matches_online": (1.0, 1.0),  # the batch lists are the ones /recommend answers
    "faiss_recall10": (0.95, 1.0),  # the chapter's HNSW (M=32, efSearch=128) against exact search
    "srm_p_value": (0.001, 1.0),  # a hash split of this size shows no sample-ratio mismatch
    "ab_p_value": (0.0, 1.0),
    "fpr_one_look": (0.04, 0.06),  # alpha = 0.05, 2,000 A/A experiments
    "fpr_peeking": (0.10, 0.40),
    "fpr_msprt": (0.0, 0.06),
    "interleaving_p_value": (0.0, 0.01),
    "sequential_reload_status": (200, 200),  # the bundle with a next-item model swapped in
    "sequential_scorer": (1, 1),  # an ordered history is read by it
    "sequential_history_used": (6, 6),  # three action films and three comedies; the unknown id is reported, not read
    "sequential_order_changes_ranking": (1, 1),  # the same films reversed get another top 5
}

EXPECTED: dict[str, dict[str, tuple[float, float]]] = {
    "smoke": {  # MovieLens 100K, action -> comedy, 20 % cold, seed 0; measured values in the comments
        **_ALWAYS,
        "experiment_ndcg10": (0.165, 0.21),  # 0.1844, chapter 07's per-user fusion
        "served_ndcg10": (0.165, 0.21),  # 0.1844, identical
        "control_hit10": (0.40, 0.50),  # 0.452: MF and popularity, the control arm's users
        "treatment_hit10": (0.39, 0.50),  # 0.444: the fusion, the treatment arm's users
        "paired_hit10_difference": (-0.02, 0.03),  # +0.006 over the same 832 users
        "users_needed_per_arm": (10_000, 10**7),  # 107,782: a lift this small needs a very large experiment
        "users_80_ab": (50_000, 409_600),  # 180,907 (simulated)
        "users_80_interleaving": (250, 2_000),  # 671
        "interleaving_share_treatment": (0.54, 0.64),  # 0.589
        # the replay's cold users, CUPED and the sequential test's power (measured 0.978, +0.1272, 739, 0.022, 0.17, 0.036)
        "cold_hit10_control": (0.9, 1.0),
        "cold_ndcg10_paired_difference": (0.05, 0.2),
        "cuped_users_with_pre_period": (739, 739),
        "cuped_variance_reduction": (-0.01, 0.2),
        "power_fixed_horizon": (0.05, 0.4),
        "power_msprt": (0.0, 0.15),
        # the bundled text SASRec (5 epochs) on the same test users: 0.0786, 0.1061 below the fusion [-0.125, -0.086]
        "sequential_ndcg10": (0.05, 0.12),
        "sequential_vs_fusion_difference": (-0.16, -0.05),
    },
    "full": {  # MovieLens 1M; measured on the bundle of `cdtl export fusion_ml1m` (seed 0), the same code path
        **_ALWAYS,
        "experiment_ndcg10": (0.14, 0.17),  # 0.1551
        "served_ndcg10": (0.14, 0.17),  # 0.1551
        "control_hit10": (0.36, 0.46),  # 0.411
        "treatment_hit10": (0.38, 0.49),  # 0.436
        "paired_hit10_difference": (0.015, 0.06),  # +0.037 over the same 5,331 users
        "users_needed_per_arm": (1_000, 10_000),  # 2,787 (power analysis)
        "users_80_ab": (2_000, 20_000),  # 5,527 (simulated: twice the power analysis's 2,787 per arm)
        "users_80_interleaving": (150, 2_500),  # 600
        "interleaving_share_treatment": (0.55, 0.65),  # 0.598
    },
}

RELATIONS = [
    ("served_ndcg10", "==", "experiment_ndcg10"),  # the service ranks exactly as the experiment measured
    ("fpr_peeking", ">", "fpr_one_look"),
    ("fpr_msprt", "<", "fpr_peeking"),
    ("users_80_interleaving", "<", "users_80_ab"),
]
