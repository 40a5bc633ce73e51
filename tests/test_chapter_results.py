"""Headline numbers each chapter records, checked against expected ranges for the profile that ran."""

from __future__ import annotations

import pytest

import cdtl
from notebooks import ROOT, chapter_records

PROFILE = cdtl.profile().name

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
}


@pytest.mark.parametrize("stem", sorted(EXPECTED))
def test_recorded_results_in_expected_ranges(stem: str):
    records = chapter_records(ROOT / "chapters" / f"{stem}.ipynb")
    assert records, f"{stem} recorded nothing"
    for name, (low, high) in EXPECTED[stem][PROFILE].items():
        assert name in records, f"{stem} did not record {name!r}; it recorded {sorted(records)}"
        assert low <= records[name] <= high, f"{stem}: {name} = {records[name]} outside [{low}, {high}]"


def test_preface_records_the_active_profile():
    assert chapter_records(ROOT / "chapters" / "00_preface.ipynb")["profile"] == PROFILE
