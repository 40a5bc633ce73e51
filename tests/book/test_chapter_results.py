"""Headline numbers each chapter records, checked against expected ranges for the profile that ran."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
from notebooks import ROOT, chapter_records

import cdtl

PROFILE = cdtl.profile().name
pytestmark = pytest.mark.notebooks  # reads what the chapters recorded when they ran (or runs them)

# name -> (low, high), inclusive; exact counts are ranges of width zero
EXPECTED: dict[str, dict[str, dict[str, tuple[float, float]]]] = {
    "00_preface": {
        "smoke": {},
        "full": {},
    },
    "01_cold_start_data": {
        "smoke": {  # MovieLens 100K, action/comedy genre split, 20 % cold, seed 0
            "users": (943, 943), "items": (1682, 1682), "interactions": (100_000, 100_000),
            "overlap_users": (936, 936), "source_interactions": (29_344, 29_344),
            "target_interactions": (34_414, 34_414), "cold_val_users": (94, 94), "cold_test_users": (93, 93),
            "warm_users": (749, 749), "cold_leak": (0, 0),
        },
        "full": {  # MovieLens 1M
            "users": (6040, 6040), "items": (3883, 3883), "interactions": (1_000_209, 1_000_209),
            "overlap_users": (5998, 5998), "source_interactions": (303_491, 303_491),
            "target_interactions": (369_917, 369_917), "cold_val_users": (600, 600), "cold_test_users": (600, 600),
            "warm_users": (4798, 4798), "cold_leak": (0, 0),
        },
    },
    "02_matrix_factorization": {
        "smoke": {  # MovieLens 100K, at most 10 epochs: not converged, but clearly learning
            "explicit_rmse": (0.85, 0.98), "global_mean_rmse": (1.10, 1.14),
            "bpr_ndcg10": (0.18, 0.36), "softmax_ndcg10": (0.18, 0.36), "sampled_softmax_ndcg10": (0.18, 0.36),
            "popularity_ndcg10": (0.13, 0.16), "popularity_recall10": (0.10, 0.14),
            "coldstart_mf_ndcg10": (0.35, 0.60), "coldstart_popularity_ndcg10": (0.35, 0.60),
            "coldstart_mf_minus_popularity_ndcg10": (-0.03, 0.03),  # +0.0004: the mean warm user ranks like popularity
            "coldstart_unseen_share": (1.0, 1.0), "bpr_by_hand_ndcg10": (0.18, 0.36),
            # paired comparisons (measured: ratio 1.97, correlation 0.87, softmax - BPR -0.0007, cold interval +-0.024)
            "paired_width_ratio": (1.3, 4.0), "bpr_softmax_correlation": (0.6, 0.98),
            "softmax_minus_bpr_ndcg10": (-0.06, 0.06),
            "coldstart_mf_minus_popularity_ndcg10_low": (-0.08, 0.0), "coldstart_mf_minus_popularity_ndcg10_high": (0.0, 0.08),
        },
        "full": {  # MovieLens 1M, converged (goals: BPR NDCG@10 >= 0.25, Recall@10 >= 0.16; RMSE <= 0.86)
            "explicit_rmse": (0.80, 0.88), "global_mean_rmse": (1.10, 1.13),
            "bpr_ndcg10": (0.24, 0.34), "bpr_recall10": (0.15, 0.22),
            "softmax_ndcg10": (0.22, 0.36), "sampled_softmax_ndcg10": (0.20, 0.36),
            "popularity_ndcg10": (0.10, 0.20),
            "coldstart_mf_ndcg10": (0.30, 0.60), "coldstart_popularity_ndcg10": (0.30, 0.60),
            "coldstart_unseen_share": (1.0, 1.0),
        },
    },
}
# per chapter: (a, relation, b) that must hold between two recorded values in every profile
RELATIONS = {
    "02_matrix_factorization": [
        ("explicit_rmse", "<", "global_mean_rmse"),
        ("bpr_ndcg10", ">", "popularity_ndcg10"),
        ("softmax_ndcg10", ">", "popularity_ndcg10"),
        ("sampled_softmax_ndcg10", ">", "popularity_ndcg10"),
        ("bpr_by_hand_ndcg10", "==", "bpr_ndcg10"),  # run(config) is the loop trained by hand, step for step
    ],
}
# Later chapters keep their ranges next to this file, one module each: tests/book/expected_NN.py
# defines STEM (the notebook), EXPECTED ({profile: ranges}) and optionally RELATIONS.
for _path in sorted(Path(__file__).parent.glob("expected_*.py")):
    _spec = importlib.util.spec_from_file_location(_path.stem, _path)
    _module = importlib.util.module_from_spec(_spec)
    _spec.loader.exec_module(_module)
    EXPECTED[_module.STEM] = _module.EXPECTED
    if getattr(_module, "RELATIONS", None):
        RELATIONS[_module.STEM] = _module.RELATIONS


@pytest.mark.parametrize("stem", sorted(EXPECTED))
def test_recorded_results_in_expected_ranges(stem: str):
    records = chapter_records(ROOT / "chapters" / f"{stem}.ipynb")
    assert records, f"{stem} recorded nothing"
    for name, (low, high) in EXPECTED[stem][PROFILE].items():
        assert name in records, f"{stem} did not record {name!r}; it recorded {sorted(records)}"
        assert low <= records[name] <= high, f"{stem}: {name} = {records[name]} outside [{low}, {high}]"


def test_every_chapter_has_expected_results():
    from notebooks import toc_files

    missing = [p.stem for p in toc_files() if p.stem not in EXPECTED]
    assert not missing, f"chapters without expected recorded results: {missing}"


@pytest.mark.parametrize("stem", sorted(RELATIONS))
def test_recorded_results_keep_their_relations(stem: str):
    records = chapter_records(ROOT / "chapters" / f"{stem}.ipynb")
    compare = {"<": lambda a, b: a < b, ">": lambda a, b: a > b, "==": lambda a, b: a == pytest.approx(b)}
    for a, op, b in RELATIONS[stem]:
        assert compare[op](records[a], records[b]), f"{stem}: expected {a} ({records[a]}) {op} {b} ({records[b]})"


def test_preface_records_the_active_profile():
    assert chapter_records(ROOT / "chapters" / "00_preface.ipynb")["profile"] == PROFILE
