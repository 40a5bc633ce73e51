"""Batch makers for the shared training loop: each is called as ``batches(epoch, generator)`` and yields dicts of tensors."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import Any

import numpy as np
import torch
from torch import Tensor


def _index_tensor(values: Any, name: str, n: int | None = None) -> Tensor:
    t = torch.tensor(np.asarray(values))  # a copy: pandas 3 hands out read-only arrays
    if t.dim() != 1:
        raise ValueError(f"{name} must be 1-D, got shape {tuple(t.shape)}")
    if t.numel() and (t.dtype.is_floating_point or t.dtype == torch.bool):
        raise TypeError(f"{name} must hold integer indices, got dtype {t.dtype}")
    t = t.to(torch.int64)
    if n is not None and t.numel() and (int(t.min()) < 0 or int(t.max()) >= n):
        raise ValueError(f"{name} must lie in [0, {n}), got values in [{int(t.min())}, {int(t.max())}]")
    return t


def _check_pairs(users: Tensor, items: Tensor, batch_size: int) -> None:
    if users.shape != items.shape:
        raise ValueError(f"users and items must have the same length, got {len(users)} and {len(items)}")
    if len(users) == 0:
        raise ValueError("no training pairs: users and items are empty")
    if int(batch_size) < 1:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size}")


class _Batches:
    """Shuffled mini-batches over n training rows.

    Every maker shuffles the training pairs with the ``torch.Generator`` it is given (so a
    seeded generator gives the same batches), draws any negatives from it too, and has
    ``len()`` = the number of batches per epoch. ``epoch`` is part of the contract for makers
    that change with the epoch (curricula, schedules); these ones ignore it.

    ``sharded(rank, world)`` is the same maker for one of ``world`` DDP processes: every rank
    draws the same shuffle, each batch of ``batch_size`` rows is cut into ``world`` equal
    parts and the rank keeps its part, so the ranks together see the batches one process
    would (the loop averages their gradients). The last ``n % world`` rows of each epoch's
    shuffle are left out, so every rank has the same number of rows; each rank draws its
    negatives from its own seeded generator.
    """

    n: int
    batch_size: int
    users: Tensor
    by_user: bool = False  # batches of whole users (see ``group_by_user``)
    rank: int = 0
    world: int = 1

    def __len__(self) -> int:
        return -(-(self.n - self.n % self.world) // self.batch_size)

    def sharded(self, rank: int, world: int) -> _Batches:
        """A copy that yields rank ``rank``'s share of every batch of a ``world``-process job."""
        if not 0 <= rank < world:
            raise ValueError(f"rank must be in [0, {world}), got {rank}")
        if self.batch_size % world:
            raise ValueError(f"batch_size {self.batch_size} does not divide over {world} processes: "
                             f"make it a multiple of the world size (e.g. {self.batch_size - self.batch_size % world})")
        if self.n < world:
            raise ValueError(f"{self.n} training rows cannot be shared by {world} processes: use fewer processes")
        shard = copy.copy(self)
        shard.rank, shard.world = int(rank), int(world)
        return shard

    def _slices(self, generator: torch.Generator) -> Iterator[Tensor]:
        perm = torch.randperm(self.n, generator=generator)
        if self.by_user:  # users in a random order, each user's rows together (in random order)
            rank = torch.randperm(int(self.users.max()) + 1, generator=generator)
            perm = perm[torch.argsort(rank[self.users[perm]], stable=True)]
        if self.world > 1:
            perm = perm[: self.n - self.n % self.world]
        for start in range(0, len(perm), self.batch_size):
            block = perm[start : start + self.batch_size]
            if self.world > 1:
                share = len(block) // self.world
                block = block[self.rank * share : (self.rank + 1) * share]
            yield block

    def _rank_generator(self, generator: torch.Generator) -> torch.Generator:
        """A generator of this rank's own (seeded) draws: the epoch's seed and the rank, mixed."""
        seed = np.random.SeedSequence([generator.initial_seed(), self.rank]).generate_state(1)[0]
        return torch.Generator().manual_seed(int(seed))


def group_by_user(batches: _Batches) -> _Batches:
    """Make ``batches`` yield each user's rows together (users shuffled every epoch); returns it.

    For models whose user representation is costly (a meta network, a text tower): a batch of
    ``batch_size`` rows then holds a few dozen users, and the model computes each user once.
    """
    batches.by_user = True
    return batches


class RatingBatches(_Batches):
    """Batches of (user, item, rating) for ``MF(loss="mse")``; build with ``rating_batches``."""

    def __init__(self, users: Tensor, items: Tensor, ratings: Tensor, batch_size: int) -> None:
        self.users, self.items, self.ratings = users, items, ratings
        self.n, self.batch_size = len(users), int(batch_size)

    def __call__(self, epoch: int, generator: torch.Generator) -> Iterator[dict[str, Tensor]]:
        for idx in self._slices(generator):
            yield {"user": self.users[idx], "item": self.items[idx], "rating": self.ratings[idx]}


def rating_batches(users: np.ndarray, items: np.ndarray, ratings: np.ndarray, batch_size: int) -> RatingBatches:
    """Shuffled batches of explicit ratings: keys ``user``, ``item``, ``rating`` (float32)."""
    u, i = _index_tensor(users, "users"), _index_tensor(items, "items")
    _check_pairs(u, i, batch_size)
    r = torch.tensor(np.asarray(ratings, dtype=np.float32))
    if r.shape != u.shape:
        raise ValueError(f"ratings must have one value per pair ({len(u)}), got shape {tuple(r.shape)}")
    if not torch.isfinite(r).all():
        raise ValueError("ratings hold NaN or infinite values")
    return RatingBatches(u, i, r, batch_size)


class BPRBatches(_Batches):
    """Batches of (user, pos, neg) for ``MF(loss="bpr")``; build with ``bpr_batches``."""

    def __init__(
        self, users: Tensor, items: Tensor, n_items: int, batch_size: int, positive_codes: Tensor, n_negatives: int = 1
    ) -> None:
        self.users, self.items, self.n_items = users, items, int(n_items)
        self.n, self.batch_size, self.n_negatives = len(users), int(batch_size), int(n_negatives)
        self.positive_codes = positive_codes  # sorted user * n_items + item of every training positive

    def is_positive(self, users: Tensor, items: Tensor) -> Tensor:
        """Whether each (user, item) pair is a training positive (binary search in the sorted codes)."""
        codes = users * self.n_items + items
        at = torch.searchsorted(self.positive_codes, codes).clamp_max(len(self.positive_codes) - 1)
        return self.positive_codes[at] == codes

    def sample_negatives(self, users: Tensor, generator: torch.Generator) -> Tensor:
        """One uniform item per user that is not one of the user's training positives."""
        neg = torch.randint(self.n_items, users.shape, generator=generator)
        bad = self.is_positive(users, neg)
        while bad.any():  # each round redraws only the hits; a user with k positives hits with chance k / n_items
            where = bad.nonzero(as_tuple=True)[0]
            neg[where] = torch.randint(self.n_items, (len(where),), generator=generator)
            bad[where] = self.is_positive(users[where], neg[where])
        return neg

    def _negatives(self, users: Tensor, generator: torch.Generator) -> Tensor:
        """(len(users),) negatives for one per pair, else (len(users), n_negatives)."""
        if self.n_negatives == 1:
            return self.sample_negatives(users, generator)
        return self.sample_negatives(users.repeat_interleave(self.n_negatives), generator).view(len(users), -1)

    def __call__(self, epoch: int, generator: torch.Generator) -> Iterator[dict[str, Tensor]]:
        if self.world > 1:  # each rank samples negatives for its own rows only, from its own generator
            mine = self._rank_generator(generator)
            for idx in self._slices(generator):
                users = self.users[idx]
                yield {"user": users, "pos": self.items[idx], "neg": self._negatives(users, mine)}
            return
        neg = self._negatives(self.users, generator)  # the whole epoch's negatives at once
        for idx in self._slices(generator):
            yield {"user": self.users[idx], "pos": self.items[idx], "neg": neg[idx]}


def bpr_batches(
    users: np.ndarray, items: np.ndarray, n_items: int, batch_size: int, train_csr: Any, n_negatives: int = 1
) -> BPRBatches:
    """Shuffled BPR triples: each training pair with a uniform negative the user has not seen in training.

    ``train_csr`` is the (n_users, n_items) training matrix (``cdtl.data.ids.interaction_matrix``);
    its nonzeros are the items a negative must avoid. Negatives are redrawn every epoch.
    Keys ``user``, ``pos`` and ``neg``: (B,), or (B, n_negatives) when ``n_negatives > 1``.
    """
    u, i = _index_tensor(users, "users"), _index_tensor(items, "items", n_items)
    _check_pairs(u, i, batch_size)
    if int(n_negatives) < 1:
        raise ValueError(f"n_negatives must be a positive integer, got {n_negatives}")
    if not (hasattr(train_csr, "indptr") and hasattr(train_csr, "indices")):
        raise TypeError(f"train_csr must be a scipy.sparse CSR matrix, got {type(train_csr).__name__}")
    n_users, width = train_csr.shape
    if width != n_items:
        raise ValueError(f"train_csr has {width} columns but n_items is {n_items}")
    if int(u.max()) >= n_users or int(u.min()) < 0:
        raise ValueError(f"users must lie in [0, {n_users}) (the rows of train_csr), got max {int(u.max())}")
    indptr = np.asarray(train_csr.indptr, dtype=np.int64)
    counts = np.diff(indptr)
    if (counts >= n_items).any():
        full = np.flatnonzero(counts >= n_items)[:3].tolist()
        raise ValueError(f"user(s) {full} have every item as a training positive: no negative to sample")
    rows = np.repeat(np.arange(n_users, dtype=np.int64), counts)
    codes = np.unique(rows * n_items + np.asarray(train_csr.indices, dtype=np.int64))
    return BPRBatches(u, i, n_items, batch_size, torch.from_numpy(codes), int(n_negatives))


class SoftmaxBatches(_Batches):
    """Batches of (user, item[, neg, log_q]) for the (sampled) softmax losses; build with ``softmax_batches``."""

    def __init__(
        self, users: Tensor, items: Tensor, batch_size: int, n_negatives: int | None, sampler_probs: Tensor | None
    ) -> None:
        self.users, self.items = users, items
        self.n, self.batch_size = len(users), int(batch_size)
        self.n_negatives = n_negatives
        self.sampler_probs = sampler_probs
        self.log_q = None if sampler_probs is None else torch.log(sampler_probs)

    def __call__(self, epoch: int, generator: torch.Generator) -> Iterator[dict[str, Tensor]]:
        draw = self._rank_generator(generator) if self.world > 1 else generator  # each rank its own negatives
        for idx in self._slices(generator):
            batch = {"user": self.users[idx], "item": self.items[idx]}
            if self.n_negatives is not None:
                batch["neg"] = torch.multinomial(self.sampler_probs, self.n_negatives, replacement=True, generator=draw)
                batch["log_q"] = self.log_q
            yield batch


def softmax_batches(
    users: np.ndarray,
    items: np.ndarray,
    n_items: int,
    batch_size: int,
    n_negatives: int | None = None,
    sampler: str = "uniform",
) -> SoftmaxBatches:
    """Shuffled (user, item) batches for ``"softmax"``, or with shared negatives for ``"sampled_softmax"``.

    With ``n_negatives=None`` batches have keys ``user``, ``item`` (full softmax). Otherwise
    each batch also has ``neg``: ``n_negatives`` items drawn with replacement, shared by the
    batch, from ``sampler`` - ``"uniform"`` over all items or ``"popularity"`` (proportional
    to an item's count in ``items``) - and ``log_q``, that distribution's log-probabilities
    over all items, for the model's log-Q correction.
    """
    u, i = _index_tensor(users, "users"), _index_tensor(items, "items", n_items)
    _check_pairs(u, i, batch_size)
    if n_negatives is None:
        return SoftmaxBatches(u, i, batch_size, None, None)
    if int(n_negatives) < 1:
        raise ValueError(f"n_negatives must be a positive integer or None (full softmax), got {n_negatives}")
    if sampler == "uniform":
        probs = torch.full((n_items,), 1.0 / n_items)
    elif sampler == "popularity":
        counts = torch.bincount(i, minlength=n_items).to(torch.float32)
        probs = counts / counts.sum()
    else:
        raise ValueError(f"sampler must be 'uniform' or 'popularity', got {sampler!r}")
    return SoftmaxBatches(u, i, batch_size, int(n_negatives), probs)
