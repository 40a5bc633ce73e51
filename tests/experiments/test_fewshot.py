"""The few-shot kind end to end on toy data: every model at every shot, the blend's beta chosen on validation users."""

from __future__ import annotations

import pytest
from new_items_toy import FAST, toy

from cdtl.experiments import fewshot


def test_few_shot_scores_every_model_at_every_shot():
    cfg = {"kind": "fewshot", "protocol": {"source": "src", "target": "tgt", "shots": [0, 1, 3], "eval_ratio": 0.3},
           "models": ["popularity", "target_knn", "content_knn", "two_tower"], "encoders": ["frozen"], **FAST}
    cfg.pop("lm_bridge"), cfg.pop("ptupcdr")
    data = toy()
    data.interactions = data.interactions[~((data.interactions["domain"] == "src") & (data.interactions["user"] < "u30"))]
    res = fewshot.run(cfg, data=data)
    table = fewshot.table(res, "ndcg@3")
    assert len(table) == 4 * 3
    assert table.set_index(["model", "shots"]).loc[("target_knn", 0), "mean"] == pytest.approx(
        table.set_index(["model", "shots"]).loc[("popularity", 0), "mean"])  # no known item: the popularity fallback


def test_blend_ranks_as_its_base_at_beta_zero_and_as_the_text_when_beta_is_large():
    import torch

    class Fixed:
        def __init__(self, scores):
            self.scores = torch.tensor(scores)

        def score_all(self, users):
            return self.scores[users]

    base, text = Fixed([[3.0, 2.0, 1.0, 0.0]]), Fixed([[0.0, 0.1, 0.2, 0.9]])
    users = torch.tensor([0])
    assert fewshot.Blend(base, text, 0.0).score_all(users).argsort(descending=True).tolist() == [[0, 1, 2, 3]]
    assert fewshot.Blend(base, text, 100.0).score_all(users).argsort(descending=True).tolist() == [[3, 2, 1, 0]]


def test_few_shot_blend_keeps_the_beta_of_the_best_validation_score():
    cfg = {"kind": "fewshot", "protocol": {"source": "src", "target": "tgt", "shots": [0, 1], "eval_ratio": 0.3},
           "models": ["target_knn", "blend"], "encoders": ["frozen"], "blend": {"betas": [0.0, 1.0, 5.0]}, **FAST}
    cfg.pop("lm_bridge"), cfg.pop("ptupcdr")
    data = toy()
    data.interactions = data.interactions[~((data.interactions["domain"] == "src") & (data.interactions["user"] < "u30"))]
    res = fewshot.run(cfg, data=data)
    blend = [r for r in res["rows"] if r["model"] == "blend"]
    assert {r["beta"] for r in blend} <= {0.0, 1.0, 5.0} and all("ndcg@3" in r["validation"] for r in blend)
    bench_rows = {(r["model"], r["shots"]): r["validation"]["ndcg@3"] for r in res["rows"]}
    for shots in (0, 1):  # beta 0 is the target-only model itself, so the chosen blend is never worse on validation
        assert bench_rows[("blend", shots)] >= bench_rows[("target_knn", shots)] - 1e-12
