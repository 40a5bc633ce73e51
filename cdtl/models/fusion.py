"""Softmax fusion: each scorer's item scores become a distribution, and the distributions are mixed with learned weights.

No single recommender is best for every user. Matrix factorisation knows the users it
was trained on, a language-model bridge knows users who are new to the target domain,
popularity knows nobody but can always answer. Fusion lets each of them speak for the
users it knows. For user u and the K scorers of a ``SoftmaxFusion``:

1. scorer k gives a score s_k(u, j) to every candidate item j (one shared candidate
   list, aligned by item id: ``align_items``);
2. each score row becomes a probability distribution over the candidates with a
   softmax and a temperature T_k (``score_scales`` gives starting values on each
   scorer's own scale: counts, cosines and dot products differ by orders of magnitude):

       p_k(j | u) = exp(z_k(u, j) / T_k) / sum_i exp(z_k(u, i) / T_k)

   A small T_k makes p_k nearly one-hot on the scorer's top item, a large one flattens
   it towards uniform. Items the user has already seen are left out of the softmax.
   (``standardize=True`` first rescales each row to mean 0, deviation 1; that also
   erases how spread out a user's scores are, i.e. how sure the scorer is about them);
3. the distributions are averaged with weights that are themselves a softmax,
   ``w(u) = softmax(a(u))``, so they are positive and sum to one. Two averages
   (``pooling=``):

       "mixture":    p(j | u) = sum_k w_k(u) p_k(j | u)
       "geometric":  p(j | u) = prod_k p_k(j | u) ** w_k(u) / (sum over items of the same)

   The mixture ranks an item high when *any* heavily weighted scorer likes it; the
   geometric mean (a "product of experts") only when the scorers *agree*, because its
   log is the weighted sum of the tempered scores, sum_k w_k z_k / T_k, up to a
   constant per user. For top-k ranking agreement is usually what one wants;

   ``mode="uniform"``: a = 0, the plain average ("average pooling"); ``"global"``: one
   learned logit vector a shared by every user; ``"user"``: a = gate(f_u), a small
   network (Linear, ReLU, Linear) on what is known about the user, ``gate_features``
   (history lengths in each domain, which scorers can serve them).

A scorer that cannot serve a user (MF for a user with no target history) gets logit
-inf for that user, so its weight is exactly 0 and the others renormalise.

Training maximises log p(held-out item | u) (a cross-entropy) on validation-side data
with ``cdtl.train.fit``: the base scorers are fixed, only the logits (or the gate) and
the temperatures learn. Batches come from ``fusion_batches``. For ranking use
``ranker(exclude_csr)``; ``weights(users)`` gives the mixing weights for inspection.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import Tensor, nn

MODES = ("uniform", "global", "user")
POOLINGS = ("mixture", "geometric")
EXCLUDED = -1e30  # the score of an item left out of the softmax: probability 0, without -inf's NaN gradients

ScoreAll = Callable[[Tensor], Tensor]


@dataclass
class Scorer:
    """One recommender as fusion sees it.

    ``score_all(users)`` returns (len(users), len(items)) scores; column c scores item
    ``items[c]`` (ids, e.g. ``CrossDomainData.target_items.ids``). ``can_serve`` (n_users,)
    is True for the users this scorer has something to say about.
    """

    name: str
    score_all: ScoreAll
    items: Sequence[str] | np.ndarray
    can_serve: Tensor | np.ndarray


def align_items(scorer: Scorer, items: Sequence[str] | np.ndarray) -> Tensor | None:
    """The columns of ``scorer``'s scores in the order of ``items``: None when they already match.

    A scorer over the same items in another order is reordered explicitly, by id. A scorer
    whose item set differs from ``items`` raises a ValueError that names the scorer and the
    missing and extra items: silently mixing distributions over different candidates
    would compare item j of one scorer with some other item of the next.
    """
    mine = pd.Index(np.asarray(scorer.items, dtype=object))
    wanted = pd.Index(np.asarray(items, dtype=object))
    if not mine.is_unique:
        dupes = mine[mine.duplicated()].unique()[:3].tolist()
        raise ValueError(f"scorer {scorer.name!r} lists some items twice, e.g. {dupes}: item ids must be unique")
    if mine.equals(wanted):
        return None
    missing, extra = wanted.difference(mine, sort=False), mine.difference(wanted, sort=False)
    if len(missing) or len(extra):
        raise ValueError(
            f"scorer {scorer.name!r} ranks {len(mine)} items, the candidate list has {len(wanted)}: "
            f"{len(missing)} candidate item(s) missing from the scorer (e.g. {missing[:3].tolist()}), "
            f"{len(extra)} scorer item(s) not among the candidates (e.g. {extra[:3].tolist()}); "
            "score the same candidate list with every scorer"
        )
    return torch.as_tensor(mine.get_indexer(wanted), dtype=torch.long)


@torch.no_grad()
def score_scales(scorers: Sequence[Scorer], users: Any, batch_size: int = 1024) -> list[float]:
    """The standard deviation of each scorer's scores over ``users`` it can serve: a starting temperature per scorer.

    Raw scores live on very different scales (counts, cosines, dot products); starting
    each T_k at its scorer's typical spread makes every p_k neither one-hot nor flat at
    the start, while each user's own spread (how sure the scorer is about them) is kept.
    """
    users = torch.as_tensor(np.asarray(users), dtype=torch.long)
    out = []
    for scorer in scorers:
        serve = torch.as_tensor(np.asarray(scorer.can_serve), dtype=torch.bool)[users]
        who = users[serve]
        if len(who) == 0:
            out.append(1.0)
            continue
        total, total_sq, n = 0.0, 0.0, 0
        for start in range(0, len(who), batch_size):
            s = scorer.score_all(who[start : start + batch_size]).double()
            total, total_sq, n = total + float(s.sum()), total_sq + float((s**2).sum()), n + s.numel()
        var = total_sq / n - (total / n) ** 2
        out.append(float(max(var, 0.0) ** 0.5) or 1.0)
    return out


def gate_features(source_len: Any, target_len: Any, can_serve: Tensor) -> Tensor:
    """(n_users, 2 + K) gate inputs: log(1 + history length) in the source and the target domain, then the K can-serve flags."""
    source = torch.as_tensor(np.asarray(source_len), dtype=torch.float32)
    target = torch.as_tensor(np.asarray(target_len), dtype=torch.float32)
    if not (source.dim() == target.dim() == 1 and len(source) == len(target) == len(can_serve)):
        raise ValueError(f"source_len, target_len and can_serve need one row per user, got lengths "
                         f"{len(source)}, {len(target)}, {len(can_serve)}")
    return torch.cat([torch.log1p(source)[:, None], torch.log1p(target)[:, None], can_serve.float()], dim=1)


def _can_serve(scorers: Sequence[Scorer]) -> Tensor:
    """(n_users, K) bool: which scorer can serve which user; every user must have at least one."""
    serve = [torch.as_tensor(np.asarray(s.can_serve), dtype=torch.bool) for s in scorers]
    if any(m.dim() != 1 or len(m) != len(serve[0]) for m in serve):
        raise ValueError(f"every can_serve must be a (n_users,) mask, got shapes {[tuple(m.shape) for m in serve]}")
    can_serve = torch.stack(serve, dim=1)
    if not can_serve.any(1).all():
        nobody = torch.nonzero(~can_serve.any(1)).flatten()[:3].tolist()
        raise ValueError(f"{int((~can_serve.any(1)).sum())} user(s), e.g. {nobody}, can be served by no scorer; "
                         "add one that serves everyone (popularity)")
    return can_serve


def _temperatures(temperature: float | Sequence[float], k: int) -> Tensor:
    """(K,) positive starting temperatures: one number for every scorer, or one each."""
    temps = torch.full((k,), float(temperature)) if np.isscalar(temperature) else torch.tensor(
        [float(t) for t in temperature])  # type: ignore[union-attr]
    if temps.shape != (k,) or not (temps > 0).all():
        raise ValueError(f"temperature must be positive, one number or one per scorer ({k}), got {temperature}")
    return temps


class SoftmaxFusion(nn.Module):
    """p(j | u) = sum_k w_k(u) softmax_j(z_k(u, j) / T_k) over K ``Scorer``s (see the module docstring).

    ``items``: the candidate item ids every scorer is aligned to. ``mode``: "uniform",
    "global" or "user". ``features`` (n_users, F): the gate's inputs for ``mode="user"``
    (``gate_features``; standardised inside with their mean and deviation over users).
    ``hidden``: the gate's hidden width. ``temperature``: the initial T_k (one number, or
    one per scorer); ``learn_temperature``: whether T_k is trained. ``standardize``: each
    score row to mean 0, deviation 1 before the temperature. ``pooling``: "mixture" or
    "geometric" (see the module docstring).
    """

    def __init__(
        self,
        scorers: Sequence[Scorer],
        items: Sequence[str] | np.ndarray,
        *,
        mode: str = "user",
        features: Tensor | None = None,
        hidden: int = 16,
        temperature: float | Sequence[float] = 1.0,
        learn_temperature: bool = True,
        standardize: bool = False,
        pooling: str = "mixture",
    ) -> None:
        super().__init__()
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
        if pooling not in POOLINGS:
            raise ValueError(f"pooling must be one of {POOLINGS}, got {pooling!r}")
        self.pooling = pooling
        if len(scorers) < 1:
            raise ValueError("scorers is empty: fusion needs at least one scorer")
        names = [s.name for s in scorers]
        if len(set(names)) != len(names):
            raise ValueError(f"scorer names must be unique, got {names}")
        self.mode = mode
        self.names = names
        self.items = np.asarray(items, dtype=object)
        self.standardize = bool(standardize)
        self._scorers = list(scorers)  # plain list: the base scorers are not trained here
        self._columns = [align_items(s, self.items) for s in scorers]

        can_serve = _can_serve(scorers)  # (n_users, K)
        self.register_buffer("can_serve", can_serve)

        k = len(scorers)
        temps = _temperatures(temperature, k)
        if learn_temperature:
            self.log_temperature = nn.Parameter(temps.log())
        else:
            self.register_buffer("log_temperature", temps.log())

        if mode == "global":
            self.logits = nn.Parameter(torch.zeros(k))
        elif mode == "user":
            if features is None or features.dim() != 2 or len(features) != len(can_serve):
                raise ValueError(f"mode='user' needs features (n_users={len(can_serve)}, F), e.g. from gate_features; "
                                 f"got {None if features is None else tuple(features.shape)}")
            features = features.float()
            self.register_buffer("feature_mean", features.mean(0))
            self.register_buffer("feature_std", features.std(0).clamp_min(1e-6))
            self.register_buffer("features", features)
            self.gate = nn.Sequential(nn.Linear(features.shape[1], hidden), nn.ReLU(), nn.Linear(hidden, k))
            nn.init.zeros_(self.gate[2].weight)  # the gate starts at the uniform average
            nn.init.zeros_(self.gate[2].bias)
        if mode != "user" and features is not None:
            raise ValueError(f"features are the gate's inputs, used by mode='user' only (mode is {mode!r})")

    # ------------------------------------------------------------------ pieces

    @property
    def n_scorers(self) -> int:
        return len(self._scorers)

    @property
    def temperatures(self) -> Tensor:
        """(K,) the current T_k."""
        return self.log_temperature.detach().exp()

    @torch.no_grad()
    def scores(self, users: Tensor) -> Tensor:
        """(B, K, n_items) every scorer's raw scores, aligned to ``items``; 0 where a scorer cannot serve the user."""
        users_cpu = users.detach().long().cpu()
        rows = []
        for scorer, cols in zip(self._scorers, self._columns):
            s = scorer.score_all(users_cpu).float().cpu()
            if s.shape[0] != len(users_cpu) or s.dim() != 2:
                raise ValueError(f"scorer {scorer.name!r} returned shape {tuple(s.shape)} for {len(users_cpu)} users")
            if cols is not None:
                s = s[:, cols]
            elif s.shape[1] != len(self.items):
                raise ValueError(f"scorer {scorer.name!r} returned {s.shape[1]} columns for {len(self.items)} items")
            rows.append(s)
        out = torch.stack(rows, dim=1).to(self.can_serve.device)
        serve = self.can_serve[users.to(self.can_serve.device)]  # (B, K)
        out = torch.where(serve[:, :, None], out, torch.zeros_like(out))
        if not torch.isfinite(out).all():
            bad = [self.names[k] for k in range(out.shape[1]) if not torch.isfinite(out[:, k]).all()]
            raise ValueError(f"scorer(s) {bad} returned NaN or inf scores for users they can serve")
        return out

    def log_distributions(self, users: Tensor, exclude: Tensor | None = None, scores: Tensor | None = None) -> Tensor:
        """(B, K, n_items) log p_k(j | u): each scorer's tempered softmax; excluded items (B, n_items) get about -1e30."""
        z = self.scores(users) if scores is None else scores
        if self.standardize:
            z = (z - z.mean(-1, keepdim=True)) / z.std(-1, keepdim=True).clamp_min(1e-6)
        z = z / self.log_temperature.exp()[None, :, None]
        if exclude is not None:  # a huge finite number, not -inf: an item every scorer excludes must not give NaN gradients
            z = z.masked_fill(exclude[:, None, :], EXCLUDED)
        return torch.log_softmax(z, dim=-1)

    def weight_logits(self, users: Tensor) -> Tensor:
        """(B, K) the logits a(u) before the softmax, -inf for scorers that cannot serve u."""
        users = users.to(self.can_serve.device)
        serve = self.can_serve[users]
        if self.mode == "uniform":
            logits = torch.zeros(serve.shape, device=serve.device)
        elif self.mode == "global":
            logits = self.logits.expand(len(users), -1)
        else:
            logits = self.gate((self.features[users] - self.feature_mean) / self.feature_std)
        return logits.masked_fill(~serve, float("-inf"))

    def weights(self, users: Tensor) -> Tensor:
        """(B, K) the mixing weights w(u): non-negative, summing to one, 0 for scorers that cannot serve u."""
        return torch.softmax(self.weight_logits(users), dim=-1)

    def log_probs(self, users: Tensor, exclude: Tensor | None = None) -> Tensor:
        """(B, n_items) log p(i | u) of the fused distribution.

        ``pooling="mixture"``: log sum_k w_uk p_k(i | u) (a log-sum-exp of log w_uk + log p_k);
        ``"geometric"``: log of prod_k p_k(i | u) ** w_uk, renormalised over the items.
        """
        log_p = self.log_distributions(users, exclude)
        if self.pooling == "geometric":
            w = self.weights(users)
            return torch.log_softmax((w[:, :, None] * log_p).sum(1), dim=-1)
        log_w = torch.log_softmax(self.weight_logits(users), dim=-1)  # -inf for masked scorers
        return torch.logsumexp(log_w[:, :, None] + log_p, dim=1)

    # ------------------------------------------------------------------ training and ranking

    def loss(self, batch: dict[str, Tensor]) -> Tensor:
        """Mean over the batch's users of the mean -log p(held-out item | u) over each user's held-out items.

        Keys: ``user`` (B,); ``pos`` (B, L) held-out item columns, padded with -1;
        optionally ``exclude`` (B, n_items) bool, the items each user has already seen.
        """
        missing = [k for k in ("user", "pos") if k not in batch]
        if missing:
            raise KeyError(f"SoftmaxFusion.loss needs batch keys ['user', 'pos'], missing {missing}; got {sorted(batch)}")
        log_p = self.log_probs(batch["user"], batch.get("exclude"))
        pos = batch["pos"]
        valid = pos >= 0
        picked = log_p.gather(1, pos.clamp_min(0))
        per_user = -(picked * valid).sum(1) / valid.sum(1).clamp_min(1)
        return per_user.mean()

    def ranker(self, exclude_csr: Any = None) -> ScoreAll:
        """``score_all(users) -> (B, n_items)`` fused log-probabilities for ``cdtl.evaluate.evaluate_ranking``.

        ``exclude_csr`` (n_users, n_items), the items each user has seen, is left out of the
        softmax here too, so ranking uses the same distribution that was trained.
        """

        @torch.no_grad()
        def score_all(users: Tensor) -> Tensor:
            was_training = self.training
            self.eval()
            exclude = None if exclude_csr is None else _dense_rows(exclude_csr, users.cpu().numpy()).to(
                self.can_serve.device)
            out = self.log_probs(users.long(), exclude).cpu()
            self.train(was_training)
            return out  # excluded items get about -1e30: ranked last

        return score_all


def _dense_rows(csr: Any, rows: np.ndarray) -> Tensor:
    """The given rows of a CSR matrix as a dense bool tensor."""
    return torch.from_numpy(csr[rows].toarray() > 0)


class FusionBatches:
    """Batches of users with their held-out items for ``SoftmaxFusion.loss``; build with ``fusion_batches``."""

    def __init__(self, users: np.ndarray, positives: list[np.ndarray], batch_size: int, exclude_csr: Any) -> None:
        self.users, self.positives, self.batch_size, self.exclude_csr = users, positives, int(batch_size), exclude_csr

    def __len__(self) -> int:
        return math.ceil(len(self.users) / self.batch_size)

    def __call__(self, epoch: int, generator: torch.Generator) -> Iterator[dict[str, Tensor]]:
        order = torch.randperm(len(self.users), generator=generator).numpy()
        for start in range(0, len(order), self.batch_size):
            idx = order[start : start + self.batch_size]
            lists = [self.positives[n] for n in idx]
            pos = torch.full((len(idx), max(len(p) for p in lists)), -1, dtype=torch.long)
            for row, p in enumerate(lists):
                pos[row, : len(p)] = torch.as_tensor(p, dtype=torch.long)
            batch = {"user": torch.as_tensor(self.users[idx], dtype=torch.long), "pos": pos}
            if self.exclude_csr is not None:
                batch["exclude"] = _dense_rows(self.exclude_csr, self.users[idx])
            yield batch


def fusion_batches(
    users_idx: np.ndarray, items_idx: np.ndarray, n_items: int, batch_size: int = 256, exclude_csr: Any = None
) -> FusionBatches:
    """Shuffled batches of users, each with all their held-out (user, item) pairs, for ``cdtl.train.fit``.

    Every user weighs the same in the loss, however many held-out items they have (as in
    the per-user mean of NDCG). ``exclude_csr`` (n_users, n_items): items left out of
    each user's softmax (their training items); a held-out item must not be among them.
    """
    u, i = np.asarray(users_idx, dtype=np.int64), np.asarray(items_idx, dtype=np.int64)
    if u.shape != i.shape or u.ndim != 1 or len(u) == 0:
        raise ValueError(f"users_idx and items_idx must be non-empty 1-D arrays of one length, got {u.shape}, {i.shape}")
    if i.min() < 0 or i.max() >= n_items:
        raise ValueError(f"items_idx must lie in [0, {n_items}), got [{i.min()}, {i.max()}]")
    if int(batch_size) < 1:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size}")
    if exclude_csr is not None and np.asarray(exclude_csr[u, i]).ravel().any():
        raise ValueError("some held-out (user, item) pairs are in exclude_csr: a held-out item cannot also be excluded")
    order = np.lexsort((i, u))
    users, starts = np.unique(u[order], return_index=True)
    return FusionBatches(users, np.split(i[order], starts[1:]), batch_size, exclude_csr)


__all__ = ["MODES", "POOLINGS", "FusionBatches", "Scorer", "SoftmaxFusion", "align_items", "fusion_batches", "gate_features",
           "score_scales"]
