"""The new-item and few-shot comparisons end to end on toy data: cells, 'cannot serve', and bad input named."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from cdtl.data.tables import DataError, RecData
from cdtl.experiments import ConfigError, fewshot, newitems

FAST = {"mf": {"dim": 8, "epochs": 5, "batch_size": 64}, "dropoutnet": {"dim": 8, "hidden": 16, "epochs": 3, "batch_size": 64},
        "lm_bridge": {"dim": 8, "hidden": 16, "epochs": 3, "batch_size": 64}, "ptupcdr": {"hidden": 16, "epochs": 3, "batch_size": 64},
        "text": {"max_length": 16}, "evaluate": {"metrics": ["ndcg@3"], "monitor": "ndcg@3", "bootstrap": 20}}


def toy(n_users: int = 60) -> RecData:
    """Two taste groups; each user consumes 5 of their group's 10 target items and 3 of its 5 source items."""
    rng = np.random.default_rng(0)
    rows = []
    for u in range(n_users):
        g = u % 2
        for t, j in enumerate(rng.choice(10, 5, replace=False) + 10 * g):
            rows.append((f"u{u:02d}", f"t{j:02d}", t, "tgt"))
        for t, j in enumerate(rng.choice(5, 3, replace=False) + 5 * g):
            rows.append((f"u{u:02d}", f"s{j}", 10 + t, "src"))
    inter = pd.DataFrame(rows, columns=["user", "item", "timestamp", "domain"])
    words = lambda j, n: "space robots" if j < n else "wedding love"  # noqa: E731
    items = pd.DataFrame([(f"t{j:02d}", f"{words(j, 10)} film {j}", "tgt", 1990 + j % 10) for j in range(20)]
                         + [(f"s{j}", f"{words(j, 5)} book {j}", "src", 1990) for j in range(10)],
                         columns=["item", "text", "domain", "year"])
    items["title"] = items["text"]
    return RecData("toy", inter, items)


def config(**over):
    return {"kind": "newitems", "protocol": {"source": "src", "target": "tgt", "by": "random", "ratios": [0.5],
                                             "cold_ratio": 0.3}, "encoders": ["frozen"], **FAST, **over}


def test_id_models_cannot_serve_new_items_and_every_cell_is_scored():
    res = newitems.run(config(models=["random", "popularity", "mf", "content_knn", "dropoutnet", "lm_bridge"]),
                       data=toy())
    rows = pd.DataFrame(res["rows"])
    for model in ("popularity", "mf"):
        part = rows[rows["model"] == model].set_index("cell")
        assert not part.loc[["warm/new", "cold/new", "mixed/new"], "served"].any()
        assert part.loc[["warm/old", "cold/old"], "served"].all()
    served = rows[rows["served"]]
    assert set(served["cell"]) == set(newitems.CELLS)
    assert all("ndcg@3" in m for m in served["metrics"])
    assert "cannot serve" in newitems.format_table(res, "ndcg@3")
    # the text models separate the taste groups on new items better than random does
    table = newitems.table(res, "ndcg@3").set_index(["model", "cell"])["mean"]
    assert table[("content_knn", "warm/new")] > table[("random", "warm/new")]


def test_config_errors_name_the_choices():
    with pytest.raises(ConfigError, match="valid choices: random"):
        newitems.resolve({"models": ["magic"]})
    with pytest.raises(ConfigError, match="protocol.by must be one of"):
        newitems.resolve({"protocol": {"by": "alphabet"}})
    with pytest.raises(ConfigError, match="strictly between 0 and 1"):
        newitems.resolve({"protocol": {"ratios": [1.5]}})
    with pytest.raises(ConfigError, match="unknown key"):
        fewshot.resolve({"protocl": {}})


def test_bad_input_fails_naming_the_cause():
    with pytest.raises(DataError, match="leaves no new item"):
        newitems.run(config(models=["random"], protocol={"source": "src", "target": "tgt", "ratios": [0.01]}), data=toy())
    data = toy()
    data.items.loc[data.items["item"] == "t03", "text"] = ""
    with pytest.raises(DataError, match=r"have no text, e\.g\. \['t03'\]"):
        newitems.run(config(models=["content_knn"]), data=data)
    with pytest.raises(ConfigError, match="has domains"):
        newitems.run(config(models=["random"], protocol={"source": "src", "target": "nowhere"}), data=toy())


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


def test_the_best_model_is_chosen_on_validation_users_not_test_users():
    from cdtl.experiments.common import best_by_validation

    frame = pd.DataFrame({"model": ["a", "b", "c", "d"], "cell": ["x", "x", "x", "y"], "mean": [0.9, 0.1, 0.5, 1.0],
                          "val": [0.2, 0.3, np.nan, 0.9]})
    assert best_by_validation(frame, ["a", "b", "c"], cell="x")["model"] == "b"  # best on validation, not on test
    with pytest.raises(ValueError, match="validation score"):
        best_by_validation(frame, ["c"], cell="x")  # a model that cannot serve is never chosen


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


def test_a_profile_caps_the_tuning_budget_of_a_config():
    import cdtl
    from cdtl.experiments.common import tuning_for

    smoke = tuning_for(cdtl.profile("smoke"), {"max_users": None, "freeze_layers": 2, "max_history": 20, "epochs": 3})
    assert smoke == {"epochs": 1, "batch_size": 32, "max_history": 5, "freeze_layers": 5, "max_users": 256}
    full = tuning_for(cdtl.profile("full"), {"max_users": 8000, "freeze_layers": 3, "max_history": 10})
    assert full["max_users"] == 8000 and full["freeze_layers"] == 3 and full["max_history"] == 10


def test_tuned_models_limits_which_text_models_run_with_the_tuned_encoder():
    cfg = newitems.resolve(config(encoders=["frozen", "tuned"], tuned_models=["content_knn"]))
    assert newitems.encoders_of(cfg, "content_knn") == ["frozen", "tuned"]
    assert newitems.encoders_of(cfg, "dropoutnet") == ["frozen"]
    assert newitems.encoders_of(cfg, "mf") == [None]
    assert newitems.encoders_of(newitems.resolve(config(encoders=["frozen", "tuned"])), "dropoutnet") == ["frozen", "tuned"]
    with pytest.raises(ConfigError, match="tuned_models must be null or a list of text models"):
        newitems.resolve(config(tuned_models=["mf"]))


def test_a_cut_off_beyond_the_new_items_is_refused_before_training():
    from cdtl.configfile import ConfigFileError

    with pytest.raises(ConfigFileError, match=r"ndcg@11 asks for the top 11 of a catalogue of 10 items"):
        newitems.run(config(models=["random"], evaluate={"metrics": ["ndcg@11"], "monitor": "ndcg@11"}), data=toy())
