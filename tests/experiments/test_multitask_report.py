"""The multitask report: every multitask model compared with the single-task one, task by task."""

from __future__ import annotations

import pytest

from cdtl.experiments import multitask as comparison


def test_versus_single_compares_every_multitask_model_with_single_task():
    def row(src, tgt, ndcg):
        return {"arch": "x", "test": {"source_rating": {"rmse": {"mean": src}}, "target_rating": {"rmse": {"mean": tgt}},
                                      "target_click": {"ndcg@10": {"mean": ndcg}}}}

    tasks = ["source_rating", "target_rating", "target_click"]
    scores = {"single": {**row(1.0, 1.0, 0.3), "arch": "single"}, "good": row(1.005, 0.9, 0.31),
              "source_lost": row(1.02, 0.9, 0.31), "click_worse": row(0.99, 0.95, 0.29)}
    out = comparison.versus_single(scores, tasks, [10])
    assert out["good"]["met"] and out["good"]["met_all_target_metrics"]
    assert not out["source_lost"]["met"] and not out["source_lost"]["source_within_1pct"]
    assert out["click_worse"]["met"] and not out["click_worse"]["met_all_target_metrics"]
    assert out["good"]["target_rating_rmse_change"] == pytest.approx(-0.1)
