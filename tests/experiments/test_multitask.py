"""The multitask kind: a model scores the same whatever ran before it."""

from __future__ import annotations

import pytest
from own_data import CONFIGS
from toy_data import two_domains

from cdtl.experiments import run


@pytest.mark.slow
def test_a_multitask_model_scores_the_same_whatever_ran_before_it():
    data = two_domains(ratings=True)
    both = run(CONFIGS["multitask"], data=data)
    alone = run({**CONFIGS["multitask"], "models": [{"name": "mmoe", "arch": "mmoe"}]}, data=data)
    assert alone["models"]["mmoe"]["test"] == both["models"]["mmoe"]["test"]
