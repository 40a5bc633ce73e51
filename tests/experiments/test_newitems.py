"""The new-item and few-shot comparisons end to end on toy data: cells, 'cannot serve', and bad input named."""

from __future__ import annotations

import pandas as pd
import pytest
from new_items_toy import FAST, toy

from cdtl.data.tables import DataError
from cdtl.experiments import ConfigError, fewshot, newitems


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
