"""Expected ranges for the records of chapter 08 (multi-task transfer), per profile.

name -> (low, high), inclusive. Measured on CPU (seed 0): smoke on MovieLens 100K (at most
6 epochs, ``configs/multitask_ml100k.yaml``), full on MovieLens 1M; measured values in the
comments. The trivial predictors (training mean rating, popularity) are deterministic; the
ranges around trained models leave room for other hardware, while a broken run (no transfer
through the shared user row, gates that are not distributions or never move, loss weights
that are not learned, a leak of held-out ratings) falls outside them.
"""

from __future__ import annotations

STEM = "08_multitask_transfer"

EXPECTED: dict[str, dict[str, tuple[float, float]]] = {
    "smoke": {  # MovieLens 100K, action -> comedy, 20 % cold, seed 0
        "trivial_source_rmse": (1.118, 1.128),  # 1.1234
        "trivial_target_rmse": (1.105, 1.115),  # 1.1103
        "trivial_target_ndcg10": (0.469, 0.479),  # 0.4742 (popularity)
        "trivial_warm_target_rmse": (1.151, 1.161),  # 1.1564
        "trivial_warm_target_ndcg10": (0.168, 0.178),  # 0.1727
        "single_source_rmse": (0.87, 0.935),  # 0.9025
        "single_target_rmse": (0.97, 1.05),  # 1.0078
        "single_target_ndcg10": (0.42, 0.49),  # 0.4661
        "single_warm_target_rmse": (0.95, 1.03),  # 0.9899
        "single_warm_target_ndcg10": (0.13, 0.18),  # 0.1623
        "shared_bottom_source_rmse": (0.855, 0.92),  # 0.8853
        "shared_bottom_target_rmse": (0.935, 1.0),  # 0.9697
        "shared_bottom_target_ndcg10": (0.39, 0.49),  # 0.4504
        "shared_bottom_warm_target_rmse": (0.935, 0.995),  # 0.9653
        "shared_bottom_warm_target_ndcg10": (0.12, 0.18),  # 0.1558
        "mmoe_source_rmse": (0.855, 0.92),  # 0.8854
        "mmoe_target_rmse": (0.935, 1.0),  # 0.9654
        "mmoe_target_ndcg10": (0.38, 0.49),  # 0.4380
        "mmoe_warm_target_rmse": (0.935, 0.995),  # 0.9641
        "mmoe_warm_target_ndcg10": (0.12, 0.18),  # 0.1499
        "ple_source_rmse": (0.855, 0.92),  # 0.8868
        "ple_target_rmse": (0.935, 1.0),  # 0.9657
        "ple_target_ndcg10": (0.39, 0.49),  # 0.4579
        "ple_warm_target_rmse": (0.935, 0.995),  # 0.9681
        "ple_warm_target_ndcg10": (0.12, 0.18),  # 0.1640
        "single_target_rmse_low": (0.90, 0.99),  # 0.9458
        "single_target_rmse_high": (1.03, 1.11),  # 1.0727
        "mmoe_target_rmse_low": (0.88, 0.96),  # 0.9166
        "mmoe_target_rmse_high": (0.98, 1.05),  # 1.0145
        "ple_target_rmse_low": (0.88, 0.96),  # 0.9120
        "ple_target_rmse_high": (0.98, 1.05),  # 1.0169
        "best_gated_target_rmse_change": (-0.08, -0.015),  # -0.0421 (MMoE)
        "best_gated_source_rmse_change": (-0.05, 0.01),  # -0.0184: a 1 % loss at most is allowed
        "beats_single_mmoe": (1, 1),
        "beats_single_ple": (1, 1),
        "mmoe_gain_target_rating_cold": (0.015, 0.08),  # 0.0421
        "mmoe_gain_target_ranking_cold": (-0.15, 0.02),  # -0.0604: negative transfer on the ranking task
        "mmoe_gain_target_rating_warm": (0.0, 0.06),  # 0.0260
        "ple_gain_target_rating_cold": (0.015, 0.08),  # 0.0418
        "ple_gain_target_ranking_cold": (-0.12, 0.04),  # -0.0175
        "ple_gain_target_rating_warm": (0.0, 0.06),  # 0.0220
        "gate_rows_sum_max_abs_error": (0.0, 1e-5),  # 2.4e-07
        "mmoe_gate_task_distance": (0.05, 0.6),  # 0.2634: the tasks' gates differ
        "ple_gate_task_distance": (0.2, 0.8),  # 0.4715
        "uncertainty_weight_source_rating": (1.1, 1.6),  # 1.3192: learned, moved away from 1
        "uncertainty_weight_target_rating": (1.02, 1.45),  # 1.1898
        "uncertainty_weight_target_click": (1.6, 2.6),  # 2.0839
        "mmoe_click_x3_source_rmse": (0.855, 0.92),  # 0.8857
        "mmoe_click_x3_target_rmse": (0.935, 1.0),  # 0.9659
        "mmoe_click_x3_target_ndcg10": (0.40, 0.50),  # 0.4607
        "mmoe_uncertainty_source_rmse": (0.855, 0.92),  # 0.8832
        "mmoe_uncertainty_target_rmse": (0.935, 1.0),  # 0.9677
        "mmoe_uncertainty_target_ndcg10": (0.39, 0.49),  # 0.4470
        "popularity_minus_best_ndcg10": (-0.03, 0.05),  # 0.0081: popularity ahead of every model
        # paired against the mean-user single-task model on the same cold test users (measured -0.0003, -0.0354, +0.1317)
        "single_minus_single_mean_user_target_rmse": (-0.03, 0.03),
        "mmoe_minus_single_mean_user_target_rmse": (-0.09, 0.03),
        "bridge_ptupcdr_minus_single_mean_user_target_ndcg10": (0.0, 0.25),
    },
    "full": {  # MovieLens 1M, seed 0, the numbers of `cdtl run configs/multitask_ml1m.yaml` (22 min on one CPU thread)
        "trivial_source_rmse": (1.120, 1.130),  # 1.1253
        "trivial_target_rmse": (1.114, 1.124),  # 1.1187
        "trivial_target_ndcg10": (0.418, 0.427),  # 0.4224 (popularity)
        "trivial_warm_target_rmse": (1.107, 1.117),  # 1.1116
        "trivial_warm_target_ndcg10": (0.126, 0.134),  # 0.1301
        "single_source_rmse": (0.855, 0.89),  # 0.8726
        "single_target_rmse": (0.965, 1.01),  # 0.9892
        "single_target_ndcg10": (0.40, 0.44),  # 0.4214
        "single_warm_target_rmse": (0.905, 0.945),  # 0.9267
        "single_warm_target_ndcg10": (0.115, 0.14),  # 0.1277
        "shared_bottom_source_rmse": (0.85, 0.885),  # 0.8680
        "shared_bottom_target_rmse": (0.91, 0.95),  # 0.9291
        "shared_bottom_target_ndcg10": (0.39, 0.44),  # 0.4130
        "shared_bottom_warm_target_rmse": (0.89, 0.92),  # 0.9054
        "shared_bottom_warm_target_ndcg10": (0.12, 0.15),  # 0.1346
        "mmoe_source_rmse": (0.85, 0.885),  # 0.8680
        "mmoe_target_rmse": (0.91, 0.95),  # 0.9327
        "mmoe_target_ndcg10": (0.40, 0.445),  # 0.4246
        "mmoe_warm_target_rmse": (0.89, 0.92),  # 0.9047
        "mmoe_warm_target_ndcg10": (0.12, 0.15),  # 0.1364
        "ple_source_rmse": (0.85, 0.885),  # 0.8700
        "ple_target_rmse": (0.91, 0.95),  # 0.9344
        "ple_target_ndcg10": (0.40, 0.445),  # 0.4217
        "ple_warm_target_rmse": (0.89, 0.92),  # 0.9046
        "ple_warm_target_ndcg10": (0.12, 0.17),  # 0.1382 from cdtl run; 0.1561 in the executed chapter (full profile, CPU)
        "single_target_rmse_low": (0.94, 0.99),  # 0.9648
        "single_target_rmse_high": (0.99, 1.04),  # 1.0140
        "mmoe_target_rmse_low": (0.89, 0.935),  # 0.9146
        "mmoe_target_rmse_high": (0.93, 0.975),  # 0.9528
        "ple_target_rmse_low": (0.89, 0.935),  # 0.9158
        "ple_target_rmse_high": (0.93, 0.975),  # 0.9550
        "best_gated_target_rmse_change": (-0.09, -0.03),  # -0.0571 (MMoE): multi-task learning pays off
        "best_gated_source_rmse_change": (-0.03, 0.01),  # -0.0053: no loss on the source task
        "beats_single_mmoe": (1, 1),
        "beats_single_ple": (1, 1),
        "mmoe_gain_target_rating_cold": (0.03, 0.09),  # 0.0571
        "mmoe_gain_target_ranking_cold": (-0.05, 0.04),  # +0.0076: inside the intervals
        "mmoe_gain_target_rating_warm": (0.005, 0.045),  # 0.0237
        "ple_gain_target_rating_cold": (0.03, 0.09),  # 0.0554
        "ple_gain_target_ranking_cold": (-0.05, 0.04),  # +0.0007
        "ple_gain_target_rating_warm": (0.005, 0.045),  # 0.0238
        "gate_rows_sum_max_abs_error": (0.0, 1e-5),
        "mmoe_gate_task_distance": (0.05, 0.6),  # 0.2494
        "ple_gate_task_distance": (0.3, 0.9),  # 0.6598
        "uncertainty_weight_source_rating": (1.15, 1.6),  # 1.3558
        "uncertainty_weight_target_rating": (1.05, 1.45),  # 1.2326
        "uncertainty_weight_target_click": (1.7, 2.7),  # 2.2083
        "mmoe_click_x3_source_rmse": (0.85, 0.89),  # 0.8712
        "mmoe_click_x3_target_rmse": (0.91, 0.95),  # 0.9320
        "mmoe_click_x3_target_ndcg10": (0.40, 0.445),  # 0.4252
        "mmoe_uncertainty_source_rmse": (0.85, 0.885),  # 0.8675
        "mmoe_uncertainty_target_rmse": (0.91, 0.95),  # 0.9315
        "mmoe_uncertainty_target_ndcg10": (0.40, 0.445),  # 0.4226
        "popularity_minus_best_ndcg10": (-0.03, 0.03),  # -0.0022: MMoE level with popularity
    },
}

# Relations the chapter's prose states, in every profile.
RELATIONS = [
    ("single_target_rmse", "<", "trivial_target_rmse"),
    ("single_source_rmse", "<", "trivial_source_rmse"),
    ("shared_bottom_target_rmse", "<", "single_target_rmse"),  # sharing the user row transfers to cold users
    ("mmoe_target_rmse", "<", "single_target_rmse"),
    ("ple_target_rmse", "<", "single_target_rmse"),
    ("mmoe_uncertainty_target_rmse", "<", "single_target_rmse"),
    ("mmoe_target_rmse_high", "<", "single_target_rmse_high"),
    ("mmoe_gain_target_rating_warm", "<", "mmoe_gain_target_rating_cold"),  # transfer matters most for cold users
    ("ple_gain_target_rating_warm", "<", "ple_gain_target_rating_cold"),
]
