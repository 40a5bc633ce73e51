"""Every scorer in cdtl keeps one contract, as implicit's shared recommender tests do.

``score_all(users)`` gives a (len(users), n_items) float tensor for the catalogue the
model ranks: finite, the same on a second call, the same for a model rebuilt from the
same seed, the model's training flag unchanged, nothing recorded for autograd, and a
user's row does not depend on which other users share the batch. Seen-item exclusion is
one function for every scorer (``cdtl.metrics.topk_from_scores``): no excluded item is
ever recommended.

Every ``score_all`` of cdtl is here: the models', the experiments' wrappers and baselines,
the fusion's ranker and its one-scorer view, and the service's recommender. Those made
inside a function (``rank_next``, the sequential export) score ``score_histories`` of a
next-item model over padded histories, which the next-item entries check the same way.
"""

from __future__ import annotations

import atexit
import functools
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch
from servekit import toy_bundle

from cdtl.data.histories import pad_histories
from cdtl.data.sequential import left_pad
from cdtl.experiments.common import Popularity
from cdtl.experiments.fewshot import Blend, _ByText
from cdtl.experiments.fusion_training import alone
from cdtl.experiments.newitems_models import GenrePopularity, RandomScores
from cdtl.experiments.transfer_models import FallbackScorer
from cdtl.metrics import topk_from_scores
from cdtl.models.content_knn import ContentKNN
from cdtl.models.dropoutnet import DropoutNet
from cdtl.models.fusion import Scorer, SoftmaxFusion, gate_features
from cdtl.models.mf import MF
from cdtl.models.multitask.model import MultiTask
from cdtl.models.sequential import GRU4Rec, SASRec, TextSASRec
from cdtl.models.text_only import TextOnly
from cdtl.models.transfer.cmf import CMF
from cdtl.models.transfer.emcdr import EMCDR
from cdtl.models.transfer.lm_bridge import LMBridge, PTUPCDRText
from cdtl.models.transfer.ptupcdr import PTUPCDR
from cdtl.models.transfer.target_only import MeanUser
from cdtl.models.two_tower import TwoTower
from cdtl.serve.bundle import read_bundle
from cdtl.serve.recommender import Recommender

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


def _with_module(scorer: Callable[[torch.Tensor], torch.Tensor], module: torch.nn.Module) -> Callable:
    scorer.module = module  # the contract checks the module's training flag
    return scorer


def _target_items() -> np.ndarray:
    return np.array([f"t{j}" for j in range(N_TARGET)], dtype=object)


def _popularity(g: torch.Generator) -> Popularity:
    return Popularity(torch.randint(N_TARGET, (40,), generator=g).numpy(), N_TARGET)


def _fallback(g: torch.Generator) -> FallbackScorer:
    has_source = np.arange(N_USERS) % 4 != 0  # a quarter of the users cannot be bridged: popularity for them
    bridge = EMCDR(*_mfs(), hidden=8)
    return _with_module(FallbackScorer(bridge, has_source, _popularity(g)), bridge)


def _blend(g: torch.Generator) -> Blend:
    return Blend(_popularity(g), TextOnly(_text(N_TARGET, g), _text(N_USERS, g)), beta=0.5)


def _by_text(g: torch.Generator) -> _ByText:
    model = _dropoutnet(g)
    return _with_module(_ByText(model, _text(N_USERS, g)), model)


def _genre_popularity(g: torch.Generator) -> GenrePopularity:
    genres = [[["comedy", "drama", "horror", "western"][j % 4]] + (["drama"] if j % 5 == 0 else []) for j in range(N_TARGET)]
    return GenrePopularity(genres, torch.randint(N_TARGET, (40,), generator=g).numpy())


def _fusion(g: torch.Generator) -> Callable:
    items, mf = _target_items(), MF(N_USERS, N_TARGET, 8)
    scorers = [Scorer("mf", mf.score_all, items, np.arange(N_USERS) % 3 != 0),
               Scorer("text", TextOnly(_text(N_TARGET, g), _text(N_USERS, g)).score_all, items, np.ones(N_USERS, bool))]
    serve = torch.stack([torch.as_tensor(s.can_serve) for s in scorers], 1)
    lengths = np.arange(N_USERS)
    fusion = SoftmaxFusion(scorers, items, mode="user", features=gate_features(lengths, lengths[::-1].copy(), serve), hidden=4)
    return _with_module(fusion.ranker(), fusion)


def _alone(g: torch.Generator) -> Callable:
    items, mf = _target_items(), MF(N_USERS, N_TARGET, 8)
    pop = _popularity(g)
    own = Scorer("mf", mf.score_all, items, np.arange(N_USERS) % 3 != 0)  # the others get popularity
    return _with_module(alone(own, Scorer("popularity", pop.score_all, items, np.ones(N_USERS, bool))), mf)


def _next_item(model: torch.nn.Module) -> Callable:
    """A next-item model as ``rank_next`` and the sequential export score it: the last position of each padded history."""
    histories = [np.array([u % N_TARGET, (u + 5) % N_TARGET, (u * 7) % N_TARGET]) for u in range(N_USERS)]
    padded = torch.from_numpy(left_pad(histories, 4)[0])
    return _with_module(torch.no_grad()(lambda users: model.score_histories(padded[users])), model)


NEXT_ITEM = {
    "SASRec": lambda g: SASRec(N_TARGET, 8, max_len=4, dropout=0.0),
    "GRU4Rec": lambda g: GRU4Rec(N_TARGET, 8, dropout=0.0),
    "TextSASRec": lambda g: TextSASRec(_text(N_TARGET, g), 8, max_len=4, dropout=0.0, adaptor_dropout=0.0),
}


def _two_tower(g: torch.Generator) -> Callable:
    """The packaged MiniLM, frozen, with a random linear adaptor on top (so the seed changes the scores)."""
    model = TwoTower(freeze_layers=6, max_length=16, max_history=3, adaptor="linear", adaptor_dim=8)
    model.index_items([f"A short film about a {w}" for w in
                       ("dog", "cat", "ship", "storm", "kite", "cake", "robot", "river", "ghost", "train", "castle",
                        "garden", "circus", "volcano", "pirate")][:N_TARGET])
    histories = [np.array([u % N_TARGET, (u + 4) % N_TARGET]) for u in range(N_USERS)]
    return _with_module(lambda users: model.score_all([histories[u] for u in users.tolist()]), model)


_BUNDLES = Path(tempfile.mkdtemp(prefix="cdtl-contract-"))
atexit.register(shutil.rmtree, _BUNDLES, ignore_errors=True)


@functools.cache
def _bundle(seed: int) -> Path:
    """The serving tests' toy bundle: a toy split, random models, the packaged MiniLM's item vectors."""
    return toy_bundle(_BUNDLES / f"toy{seed}", seed=seed)


def _recommender(seed: int) -> Recommender:
    return Recommender(read_bundle(_bundle(seed)))


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
    "Popularity": (_popularity, N_TARGET),
    "FallbackScorer": (_fallback, N_TARGET),
    "Blend": (_blend, N_TARGET),
    "ByText": (_by_text, N_TARGET),
    "RandomScores": (lambda g: RandomScores(N_TARGET, seed=int(torch.randint(1000, (1,), generator=g))), N_TARGET),
    "GenrePopularity": (_genre_popularity, N_TARGET),
    "SoftmaxFusion.ranker": (_fusion, N_TARGET),
    "fusion_training.alone": (_alone, N_TARGET),
    **{name: (lambda g, make=make: _next_item(make(g)), N_TARGET) for name, make in NEXT_ITEM.items()},
    "TwoTower": (_two_tower, N_TARGET),
    "Recommender": (lambda g: _recommender(int(g.initial_seed())), 12),  # the toy bundle's 12 target films
}
SLOW = {"TwoTower", "Recommender"}  # they load the language model


def _names(names) -> list:
    return [pytest.param(n, marks=pytest.mark.slow) if n in SLOW else n for n in sorted(names)]


def build(name: str, seed: int = 0) -> object:
    torch.manual_seed(seed)
    return SCORERS[name][0](torch.Generator().manual_seed(seed))


def scores_of(scorer: object, users: torch.Tensor) -> torch.Tensor:
    return scorer(users) if callable(scorer) and not hasattr(scorer, "score_all") else scorer.score_all(users)


USERS = torch.tensor([0, 3, 7, 11])


@pytest.mark.parametrize("name", _names(SCORERS))
def test_scores_have_one_row_per_user_and_one_column_per_item(name: str):
    scores = scores_of(build(name), USERS)
    assert isinstance(scores, torch.Tensor)
    assert scores.shape == (len(USERS), SCORERS[name][1])
    assert scores.dtype.is_floating_point
    assert torch.isfinite(scores).all()
    assert not scores.requires_grad


@pytest.mark.parametrize("name", _names(SCORERS))
def test_scores_are_the_same_on_a_second_call_and_for_the_same_seed(name: str):
    scorer = build(name)
    first = scores_of(scorer, USERS)
    assert torch.equal(first, scores_of(scorer, USERS))
    assert torch.equal(first, scores_of(build(name), USERS))
    assert not torch.equal(first, scores_of(build(name, seed=1), USERS)), "the seed should change an untrained model"


@pytest.mark.parametrize("name", _names(SCORERS))
def test_a_users_row_does_not_depend_on_the_rest_of_the_batch(name: str):
    scorer = build(name)
    together = scores_of(scorer, USERS)
    alone = torch.cat([scores_of(scorer, USERS[i:i + 1]) for i in range(len(USERS))])
    torch.testing.assert_close(together, alone, rtol=1e-5, atol=1e-6)


PLAIN = {"ContentKNN", "TextOnly", "Popularity", "Blend", "RandomScores", "GenrePopularity", "Recommender"}
MODULES = sorted(set(SCORERS) - PLAIN)  # PLAIN: no trainable parts of their own


def test_every_scorer_with_trainable_parts_is_checked_for_its_training_flag():
    fast = set(SCORERS) - SLOW  # the slow ones' flags are checked by the test below, in the slow tier
    assert all(isinstance(getattr(build(name), "module", build(name)), torch.nn.Module) for name in set(MODULES) & fast)
    assert not any(isinstance(build(name), torch.nn.Module) for name in (set(SCORERS) - set(MODULES)) & fast)


@pytest.mark.parametrize("name", _names(MODULES))
@pytest.mark.parametrize("training", [True, False])
def test_scoring_leaves_the_training_flag_as_it_was(name: str, training: bool):
    scorer = build(name)
    module = getattr(scorer, "module", scorer)
    module.train(training)
    scores_of(scorer, USERS)
    assert module.training is training


@pytest.mark.parametrize("name", _names(SCORERS))
def test_excluded_items_are_never_recommended(name: str):
    scores = scores_of(build(name), USERS)
    n_items = scores.shape[1]
    seen = [set(range(u % 3, n_items, 3)) for u in USERS.tolist()]
    top = topk_from_scores(scores, k=n_items - max(len(s) for s in seen), exclude=[sorted(s) for s in seen])
    for row, excluded in zip(top.tolist(), seen, strict=True):
        assert not excluded & set(row)
