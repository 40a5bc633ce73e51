"""Every scorer the models expose keeps one contract, as implicit's shared recommender tests do.

``score_all(users)`` gives a (len(users), n_items) float tensor for the catalogue the
model ranks: finite, the same on a second call, the same for a model rebuilt from the
same seed, the model's training flag unchanged, nothing recorded for autograd, and a
user's row does not depend on which other users share the batch. Seen-item exclusion is
one function for every scorer (``cdtl.metrics.topk_from_scores``): no excluded item is
ever recommended.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
import torch

from cdtl.data.histories import pad_histories
from cdtl.metrics import topk_from_scores
from cdtl.models.content_knn import ContentKNN
from cdtl.models.dropoutnet import DropoutNet
from cdtl.models.mf import MF
from cdtl.models.multitask.model import MultiTask
from cdtl.models.text_only import TextOnly
from cdtl.models.transfer.cmf import CMF
from cdtl.models.transfer.emcdr import EMCDR
from cdtl.models.transfer.lm_bridge import LMBridge, PTUPCDRText
from cdtl.models.transfer.ptupcdr import PTUPCDR
from cdtl.models.transfer.target_only import MeanUser

N_USERS, N_SOURCE, N_TARGET, TEXT_DIM = 12, 9, 15, 16


def _text(n: int, generator: torch.Generator) -> torch.Tensor:
    return torch.randn(n, TEXT_DIM, generator=generator)


def _histories() -> list[np.ndarray]:
    return [np.array([u % N_SOURCE, (u + 3) % N_SOURCE]) for u in range(N_USERS)]


def _mfs() -> tuple[MF, MF]:
    return MF(N_USERS, N_SOURCE, 8), MF(N_USERS, N_TARGET, 8)


def _ptupcdr() -> PTUPCDR:
    items, mask = pad_histories(_histories(), n_items=N_SOURCE)
    return PTUPCDR(*_mfs(), items, mask, hidden=8, loss="softmax")


def _lm_bridge(g: torch.Generator) -> LMBridge:
    return LMBridge(_text(N_TARGET, g), _text(N_USERS, g), dim=8, hidden=16, loss="softmax")


def _multitask() -> Callable[[torch.Tensor], torch.Tensor]:
    model = MultiTask(N_USERS, [N_SOURCE, N_TARGET], arch="mmoe", dim=8, hidden=(16, 8), tower=(8,))
    scorer = lambda users: model.score_all("target_click", users)  # noqa: E731
    scorer.module = model  # the contract checks the module's training flag
    return scorer


def _dropoutnet(g: torch.Generator) -> DropoutNet:
    known_items = torch.arange(N_TARGET) % 3 != 0  # a third of the catalogue is new
    known_users = torch.arange(N_USERS) % 4 != 0
    return DropoutNet(_text(N_TARGET, g), known_items, _text(N_USERS, g), known_users, dim=8, hidden=16)


# name -> (build(generator) -> scorer, catalogue size it ranks)
SCORERS: dict[str, tuple[Callable[[torch.Generator], object], int]] = {
    "MF": (lambda g: MF(N_USERS, N_TARGET, 8), N_TARGET),
    "TextOnly": (lambda g: TextOnly(_text(N_TARGET, g), _text(N_USERS, g)), N_TARGET),
    "ContentKNN": (lambda g: ContentKNN(_text(N_SOURCE, g), _histories(), k=2), N_SOURCE),
    "DropoutNet": (_dropoutnet, N_TARGET),
    "MeanUser": (lambda g: MeanUser(_mfs()[1], np.arange(1, N_USERS)), N_TARGET),
    "EMCDR": (lambda g: EMCDR(*_mfs(), hidden=8), N_TARGET),
    "PTUPCDR": (lambda g: _ptupcdr(), N_TARGET),
    "CMF": (lambda g: CMF(N_USERS, N_SOURCE, N_TARGET, 8), N_TARGET),
    "LMBridge": (_lm_bridge, N_TARGET),
    "PTUPCDRText": (lambda g: PTUPCDRText(_ptupcdr(), _lm_bridge(g)), N_TARGET),
    "MultiTask": (lambda g: _multitask(), N_TARGET),
}


def build(name: str, seed: int = 0) -> object:
    torch.manual_seed(seed)
    return SCORERS[name][0](torch.Generator().manual_seed(seed))


def scores_of(scorer: object, users: torch.Tensor) -> torch.Tensor:
    return scorer(users) if callable(scorer) and not hasattr(scorer, "score_all") else scorer.score_all(users)


USERS = torch.tensor([0, 3, 7, 11])


@pytest.mark.parametrize("name", sorted(SCORERS))
def test_scores_have_one_row_per_user_and_one_column_per_item(name: str):
    scores = scores_of(build(name), USERS)
    assert isinstance(scores, torch.Tensor)
    assert scores.shape == (len(USERS), SCORERS[name][1])
    assert scores.dtype.is_floating_point
    assert torch.isfinite(scores).all()
    assert not scores.requires_grad


@pytest.mark.parametrize("name", sorted(SCORERS))
def test_scores_are_the_same_on_a_second_call_and_for_the_same_seed(name: str):
    scorer = build(name)
    first = scores_of(scorer, USERS)
    assert torch.equal(first, scores_of(scorer, USERS))
    assert torch.equal(first, scores_of(build(name), USERS))
    assert not torch.equal(first, scores_of(build(name, seed=1), USERS)), "the seed should change an untrained model"


@pytest.mark.parametrize("name", sorted(SCORERS))
def test_a_users_row_does_not_depend_on_the_rest_of_the_batch(name: str):
    scorer = build(name)
    together = scores_of(scorer, USERS)
    alone = torch.cat([scores_of(scorer, USERS[i:i + 1]) for i in range(len(USERS))])
    torch.testing.assert_close(together, alone, rtol=1e-5, atol=1e-6)


MODULES = sorted(set(SCORERS) - {"ContentKNN", "TextOnly"})  # the two without trainable parts


def test_every_scorer_with_trainable_parts_is_checked_for_its_training_flag():
    assert all(isinstance(getattr(build(name), "module", build(name)), torch.nn.Module) for name in MODULES)
    assert not any(isinstance(build(name), torch.nn.Module) for name in set(SCORERS) - set(MODULES))


@pytest.mark.parametrize("name", MODULES)
@pytest.mark.parametrize("training", [True, False])
def test_scoring_leaves_the_training_flag_as_it_was(name: str, training: bool):
    scorer = build(name)
    module = getattr(scorer, "module", scorer)
    module.train(training)
    scores_of(scorer, USERS)
    assert module.training is training


@pytest.mark.parametrize("name", sorted(SCORERS))
def test_excluded_items_are_never_recommended(name: str):
    scores = scores_of(build(name), USERS)
    n_items = scores.shape[1]
    seen = [set(range(u % 3, n_items, 3)) for u in USERS.tolist()]
    top = topk_from_scores(scores, k=n_items - max(len(s) for s in seen), exclude=[sorted(s) for s in seen])
    for row, excluded in zip(top.tolist(), seen, strict=True):
        assert not excluded & set(row)
