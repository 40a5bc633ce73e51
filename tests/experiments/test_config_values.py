"""Every kind refuses a config value of the wrong shape with a ConfigError naming the key, never a raw TypeError, and
never shows a whole value: a metric that is not a name, a number too large for a float, a long list."""

from __future__ import annotations

import importlib
import re
from pathlib import Path

import pytest
from probes import deadline

from cdtl.experiments.common import ConfigError
from cdtl.experiments.registry import KINDS

METRIC_KINDS = [kind for kind, module in KINDS.items() if "metrics" in importlib.import_module(module).DEFAULTS["evaluate"]]
EXPERIMENTS = Path(__file__).resolve().parents[2] / "cdtl" / "experiments"


def test_every_kind_but_multitask_has_evaluate_metrics():
    assert set(KINDS) - set(METRIC_KINDS) == {"multitask"}  # it names cut-offs, evaluate.ks


@pytest.mark.parametrize("kind", METRIC_KINDS)
@pytest.mark.parametrize(("metrics", "index", "shown"), [([5], 0, "5 (int)"), ([None], 0, "None (NoneType)"),
                                                         (["ndcg@10", 2.5], 1, "2.5 (float)")])
def test_a_metric_that_is_not_a_name_is_refused_naming_its_place(kind, metrics, index, shown):
    module = importlib.import_module(KINDS[kind])
    with pytest.raises(ConfigError, match=re.escape(f"unknown metric {shown} in evaluate.metrics[{index}]; valid "
                                                    "choices: recall@K")):
        module.resolve({"kind": kind, "evaluate": {"metrics": metrics}})


def test_multitask_cutoffs_that_are_not_numbers_are_refused():
    from cdtl.experiments import multitask

    with pytest.raises(ConfigError, match=r"evaluate\.ks"):
        multitask.resolve({"kind": "multitask", "evaluate": {"ks": ["ten"]}})


@pytest.mark.parametrize(("kind", "section"), [("single", {"train": {"lr": 10**400}}),
                                               ("single", {"train": {"grad_clip": 10**400}}),
                                               ("fusion", {"protocol": {"warm_val": 10**400}}),
                                               ("multitask", {"protocol": {"source_holdout": 10**5000}})])
def test_an_integer_too_large_for_a_float_is_refused_by_key(kind, section):
    module = importlib.import_module(KINDS[kind])
    (name, inner), = section.items()
    with deadline(10), pytest.raises(ConfigError) as caught:
        module.resolve({"kind": kind, **section})
    assert name in str(caught.value) and next(iter(inner)) in str(caught.value) and len(str(caught.value)) < 300


def test_a_models_error_from_torch_is_one_line(monkeypatch):
    from cdtl.experiments import multitask

    def torch_like(*args, **kwargs):
        raise ValueError("Trying to create tensor with negative dimension\nException raised from ... (C++ frames)")

    monkeypatch.setattr(multitask, "MultiTask", torch_like)
    with pytest.raises(ConfigError, match=r"^model: Trying to create tensor with negative dimension$") as caught:
        multitask.resolve({"kind": "multitask"})
    assert "\n" not in str(caught.value) and len(str(caught.value)) <= 210


@pytest.mark.parametrize("model, key", [({"n_specific": 10**9}, "model.n_specific"), ({"dim": 10**30}, "model.dim"),
                                        ({"hidden": [64, 10**8]}, r"model.hidden\[1\]")])
def test_a_hostile_model_size_is_refused_by_key_before_any_model_is_built(model, key):
    from cdtl.experiments import multitask

    with deadline(10), pytest.raises(ConfigError, match=rf"^{key} is .*: at most [\d,]+ is accepted$"):
        multitask.resolve({"kind": "multitask", "model": model})


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_a_long_list_where_a_name_belongs_is_shown_by_a_prefix(kind):
    module = importlib.import_module(KINDS[kind])
    huge = ["x" * 50] * 100_000
    key = "models" if "models" in module.DEFAULTS else "name"
    with deadline(10), pytest.raises(ConfigError) as caught:
        module.resolve({"kind": kind, key: huge})
    assert len(str(caught.value)) < 400 and ("(list of 100000)" in str(caught.value) or "models[0]" in str(caught.value))


def test_no_kind_formats_a_whole_value_into_an_error():
    """Errors show a config value through cdtl.configfile.preview (a prefix and its type), never its full repr."""
    allowed = {("common.py", "{key!r}"), ("registry.py", "{kind!r}")}  # a known key; a kind already checked
    found = [(path.name, hit) for path in sorted(EXPERIMENTS.glob("*.py"))
             for hit in re.findall(r"\{[^{}]*!r\}", path.read_text(encoding="utf-8"))]
    assert [f for f in found if f not in allowed] == []
