"""Expected ranges for the records of chapter 03 (language-model encoders), per profile.

name -> (low, high), inclusive; exact counts are ranges of width zero. Measured on CPU
(seed 0): smoke on MovieLens 100K, full on MovieLens 1M. Counts and the frozen-encoder
numbers are deterministic up to floating point; the ranges around trained numbers (MF,
fine-tuning) leave room for other hardware, while a broken run (random vectors instead
of the language model's, no whitening where it is claimed, a fine-tuning that does not
train, a leak of held-out items) falls outside them. ``finetune_users`` follows the
proposed profile field of the same name (smoke 256, full 0 = every user).
"""

from __future__ import annotations

STEM = "03_language_model_encoders"

EXPECTED: dict[str, dict[str, tuple[float, float]]] = {
    "smoke": {  # MovieLens 100K, action -> comedy, 20 % cold, seed 0; measured values in the comments
        "catalogue_items": (949, 949),
        "embedding_dim": (384, 384),
        "cold_test_users": (93, 93),
        "finetune_users": (256, 256),
        "anisotropy_mean_pooling": (0.42, 0.50),  # 0.4645
        "anisotropy_cls_pooling": (0.62, 0.72),  # 0.6705
        "whiten_dim": (8, 128),  # 16, chosen on validation users
        "popularity_cold_ndcg10": (0.44, 0.50),  # 0.4702
        "popularity_cold_ndcg10_low": (0.40, 0.46),  # 0.4258
        "popularity_cold_ndcg10_high": (0.49, 0.55),  # 0.5170
        "mf_cold_ndcg10": (0.44, 0.50),  # = popularity: MF's fallback for users it never saw
        "random_cold_ndcg10": (0.02, 0.07),  # 0.0421
        "text_cold_ndcg10": (0.07, 0.11),  # 0.0895
        "text_cold_ndcg10_low": (0.05, 0.09),  # 0.0681
        "text_cold_ndcg10_high": (0.09, 0.13),  # 0.1117
        "text_whitened_cold_ndcg10": (0.17, 0.28),  # 0.2310
        "text_whitened_cold_ndcg10_low": (0.13, 0.24),  # 0.1878
        "text_whitened_cold_ndcg10_high": (0.21, 0.32),  # 0.2716
        "text_best_cold_ndcg10": (0.15, 0.28),  # 0.2310
        "text_best_cold_ndcg10_low": (0.11, 0.24),  # 0.1878
        "text_best_cold_ndcg10_high": (0.19, 0.32),  # 0.2716
        "frozen_cold_ndcg10": (0.07, 0.11),  # 0.0895
        "finetuned_cold_ndcg10": (0.07, 0.14),  # 0.0973: a few steps barely move the tower
        "finetuned_whitened_cold_ndcg10": (0.17, 0.29),  # 0.2355
        "text_warm_ndcg10": (0.01, 0.03),  # 0.0187
        "text_whitened_warm_ndcg10": (0.035, 0.07),  # 0.0529
        "mf_warm_ndcg10": (0.22, 0.31),  # 0.2671 (mf_bpr_ml100k: lr 0.004 with a cosine schedule)
        # paired differences on the same cold test users, and where recommendations sit in the catalogue
        "text_minus_popularity_ndcg10": (-0.48, -0.25),  # -0.3807
        "text_best_minus_popularity_ndcg10": (-0.40, -0.10),  # -0.2393
        "heldout_head_share": (0.30, 0.55),  # 0.4064 of held-out comedies among the 10 % most watched
        "text_top10_head_share": (0.02, 0.25),  # 0.0978
        "finetuned_minus_frozen_ndcg10": (-0.02, 0.05),  # +0.0078
        "whitening_after_finetuning_ndcg10": (0.04, 0.25),  # +0.1382
        "popularity_warm_ndcg10": (0.15, 0.18),  # 0.1665
    },
    "full": {  # MovieLens 1M
        "catalogue_items": (2136, 2136),
        "embedding_dim": (384, 384),
        "cold_test_users": (600, 600),
        "finetune_users": (6040, 6040),
        "anisotropy_mean_pooling": (0.41, 0.49),  # 0.4479
        "anisotropy_cls_pooling": (0.62, 0.70),  # 0.6610
        "whiten_dim": (8, 128),  # 32
        "popularity_cold_ndcg10": (0.40, 0.445),  # 0.4226
        "popularity_cold_ndcg10_low": (0.38, 0.42),  # 0.3995
        "popularity_cold_ndcg10_high": (0.425, 0.465),  # 0.4456
        "mf_cold_ndcg10": (0.40, 0.445),  # = popularity
        "random_cold_ndcg10": (0.02, 0.05),  # 0.0344
        "text_cold_ndcg10": (0.075, 0.097),  # 0.0860
        "text_cold_ndcg10_low": (0.065, 0.085),  # 0.0751
        "text_cold_ndcg10_high": (0.086, 0.107),  # 0.0961
        "text_whitened_cold_ndcg10": (0.14, 0.19),  # 0.1629
        "text_whitened_cold_ndcg10_low": (0.125, 0.17),  # 0.1480
        "text_whitened_cold_ndcg10_high": (0.155, 0.20),  # 0.1763
        "text_best_cold_ndcg10": (0.14, 0.19),  # 0.1675 (title, year, mean user)
        "text_best_cold_ndcg10_low": (0.125, 0.17),  # 0.1530
        "text_best_cold_ndcg10_high": (0.155, 0.20),  # 0.1804
        "frozen_cold_ndcg10": (0.075, 0.097),  # 0.0860
        "finetuned_cold_ndcg10": (0.18, 0.32),  # 0.2547: one epoch over every user roughly triples the frozen score
        "finetuned_whitened_cold_ndcg10": (0.14, 0.25),  # 0.1946
        "text_warm_ndcg10": (0.018, 0.028),  # 0.0229
        "text_whitened_warm_ndcg10": (0.038, 0.056),  # 0.0469
        "mf_warm_ndcg10": (0.22, 0.27),  # 0.2462
        "popularity_warm_ndcg10": (0.12, 0.14),  # 0.1289
    },
}
