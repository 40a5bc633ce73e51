"""Every kind of experiment on your own two-domain data; runs never overwritten or lost; results that do not
depend on what else ran."""

from __future__ import annotations

import json

import pandas as pd
import pytest
import yaml
from own_data import CONFIGS, PROTOCOL, SLOW_KINDS, own_data
from toy_data import two_domains

from cdtl.cli import main
from cdtl.experiments import KINDS, Result, run
from cdtl.experiments import single as single_kind
from cdtl.experiments.common import OutputError, prepare_output, write_results


def test_every_kind_has_a_config_here():
    assert set(CONFIGS) == set(KINDS)


@pytest.mark.parametrize("kind", [pytest.param(k, marks=pytest.mark.slow) if k in SLOW_KINDS else k for k in CONFIGS])
def test_every_kind_runs_on_your_own_two_domain_data(kind, tmp_path):
    data = own_data(kind)
    result = run(CONFIGS[kind], tmp_path / "out", data=data)
    assert isinstance(result, Result) and result.models, f"{kind} returned no trained model"
    saved = json.loads((tmp_path / "out" / "metrics.json").read_text())
    assert saved["config"] == json.loads(json.dumps(result["config"]))  # result[key] reads what metrics.json holds
    users = set(data.interactions["user"])
    if result.per_user is not None:  # the per-user table names the user's own ids, and is on disk too
        assert set(result.per_user["user"]) <= users
        assert len(pd.read_csv(tmp_path / "out" / "per_user.csv")) == len(result.per_user)


# --------------------------------------------------------------------------- a run is never overwritten or lost


def _no_training(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("training started")

    monkeypatch.setattr(single_kind, "fit", refuse)


def test_a_folder_that_holds_an_earlier_run_is_refused_before_any_training(tmp_path, monkeypatch):
    (tmp_path / "metrics.json").write_text('{"earlier": true}')
    _no_training(monkeypatch)
    with pytest.raises(OutputError, match="holds an earlier run .*metrics.json.*--overwrite"):
        run(CONFIGS["single"], tmp_path, data=two_domains())
    assert json.loads((tmp_path / "metrics.json").read_text()) == {"earlier": True}


def test_an_out_that_is_a_file_is_refused_before_any_training(tmp_path, monkeypatch):
    target = tmp_path / "results.txt"
    target.write_text("mine")
    _no_training(monkeypatch)
    with pytest.raises(OutputError, match="is a file, not a folder"):
        run(CONFIGS["single"], target, data=two_domains())
    assert target.read_text() == "mine"


def test_overwrite_replaces_the_earlier_run_and_leaves_nothing_of_it(tmp_path):
    (tmp_path / "metrics.json").write_text('{"earlier": true}')
    (tmp_path / "per_user.csv").write_text("earlier\n")
    result = run(CONFIGS["single"], tmp_path, data=two_domains(), overwrite=True)
    assert json.loads((tmp_path / "metrics.json").read_text())["metrics"] == json.loads(json.dumps(result["metrics"]))
    saved = pd.read_csv(tmp_path / "per_user.csv")  # this run's per-user table replaced the earlier one
    assert len(saved) == len(result.per_user) and list(saved.columns) == list(result.per_user.columns)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["metrics.json", "per_user.csv"]  # no temporary file left behind
    write_results(tmp_path, {"run": 2})  # a run without a per-user table leaves none of the earlier one
    assert sorted(p.name for p in tmp_path.iterdir()) == ["metrics.json"]


def test_a_failed_write_keeps_the_earlier_results_whole(tmp_path):
    write_results(tmp_path, {"run": 1}, pd.DataFrame({"user": ["a"], "ndcg@10": [0.5]}))
    with pytest.raises(TypeError):
        write_results(tmp_path, {"run": 2, "bad": object()})
    assert json.loads((tmp_path / "metrics.json").read_text()) == {"run": 1}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["metrics.json", "per_user.csv"]  # and no temporary file


def test_an_out_under_a_file_is_refused(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(OutputError, match="cannot create the output folder"):
        prepare_output(tmp_path / "file" / "run")


@pytest.mark.slow
def test_cli_refuses_an_earlier_run_unless_overwrite(tmp_path, capsys):
    config = tmp_path / "c.yaml"
    config.write_text(yaml.safe_dump({"name": "tiny", "dataset": {"name": "movielens-100k"}, "model": {"dim": 4},
                                      "train": {"epochs": 1, "progress": False},
                                      "evaluate": {"metrics": ["ndcg@10"], "bootstrap": 10}}))
    out = tmp_path / "o"
    assert main(["run", str(config), "--out", str(out)]) == 0
    first = (out / "metrics.json").read_text()
    assert main(["run", str(config), "--out", str(out)]) == 2
    assert "holds an earlier run" in capsys.readouterr().err and (out / "metrics.json").read_text() == first
    assert main(["run", str(config), "--out", str(out), "--overwrite"]) == 0
    assert main(["run", str(config), "--out", str(config)]) == 2
    assert "is a file, not a folder" in capsys.readouterr().err


# --------------------------------------------------------------------------- a result does not depend on what else ran


def _rows(result: Result, model: str) -> dict:
    return {(r["seed"], r["cold_ratio"], r["task"]): r["metrics"] for r in result["rows"] if r["model"] == model}


def test_running_a_subset_of_models_reproduces_their_rows_exactly():
    data = two_domains(ratings=True)
    base = {**CONFIGS["transfer"], "mapping": {"epochs": 3, "hidden": 8, "patience": 3}}
    alone = run({**base, "models": ["popularity", "emcdr_mlp"]}, data=data)
    after_others = run({**base, "models": ["emcdr_linear", "target_mf", "emcdr_mlp"]}, data=data)
    assert _rows(alone, "emcdr_mlp") == _rows(after_others, "emcdr_mlp")
    assert set(_rows(alone, "emcdr_mlp")) == {(0, 0.5, "ranking"), (0, 0.5, "rating")}


@pytest.mark.slow
def test_each_seed_and_cold_ratio_cell_reproduces_on_its_own():
    data = two_domains(ratings=True)
    config = {**CONFIGS["transfer"], "models": ["emcdr_mlp"], "tasks": ["ranking"]}
    full = run({**config, "seeds": [0, 1], "protocol": {**PROTOCOL, "cold_ratios": [0.3, 0.5]}}, data=data)
    one = run({**config, "seeds": [1], "protocol": {**PROTOCOL, "cold_ratios": [0.5]}}, data=data)
    assert _rows(one, "emcdr_mlp")[(1, 0.5, "ranking")] == _rows(full, "emcdr_mlp")[(1, 0.5, "ranking")]


@pytest.mark.slow
def test_a_multitask_model_scores_the_same_whatever_ran_before_it():
    data = two_domains(ratings=True)
    both = run(CONFIGS["multitask"], data=data)
    alone = run({**CONFIGS["multitask"], "models": [{"name": "mmoe", "arch": "mmoe"}]}, data=data)
    assert alone["models"]["mmoe"]["test"] == both["models"]["mmoe"]["test"]
