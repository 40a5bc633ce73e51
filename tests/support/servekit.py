"""A small real bundle for the serving tests: two domains of worded items, the packaged encoder, untrained random models.

The serving tests check that the service computes exactly what the models compute, so
the models need not be trained; random weights (and a gate that is far from uniform)
make every check bite. The texts are real words, so the language model's vectors mean
something and a new item's own text finds it.
"""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from cdtl.data import cold_start_split
from cdtl.data.crossdomain import encode_split
from cdtl.data.ids import interaction_matrix
from cdtl.data.tables import RecData
from cdtl.encoders.text_encoder import TextEncoder
from cdtl.encoders.users import mean_pool
from cdtl.evaluate import popularity_scores
from cdtl.models.fusion import Scorer, SoftmaxFusion, gate_features
from cdtl.models.mf import MF
from cdtl.models.transfer import LMBridge
from cdtl.serve.pack import Trained, pack_bundle

TOKEN = "test-token-0123456789abcdef"
SOURCE_WORDS = ["dragon", "spaceship", "detective", "castle", "robot", "pirate", "wizard", "volcano", "submarine", "jungle"]
TARGET_WORDS = ["wedding", "puppy", "holiday", "cooking", "dance", "school", "picnic", "circus", "garden", "birthday",
                "bicycle", "carnival"]
N_USERS = 60


def toy_data(seed: int = 0) -> RecData:
    """60 users; a source domain of 10 adventure books and a target domain of 12 comedy films, with timestamps."""
    rng = np.random.default_rng(seed)
    rows = []
    for u in range(N_USERS):
        for domain, words, n in (("books", SOURCE_WORDS, 4), ("films", TARGET_WORDS, 5)):
            if domain == "books" and u % 13 == 0:
                continue  # a few users have no source history at all
            for t, j in enumerate(rng.choice(len(words), n, replace=False)):
                rows.append((f"u{u:02d}", f"{domain[0]}{j}", float(rng.integers(1, 6)), t, domain))
    inter = pd.DataFrame(rows, columns=["user", "item", "rating", "timestamp", "domain"])
    items = pd.DataFrame([(f"{d[0]}{j}", f"An adventure book about a {w}" if d == "books" else f"A comedy film about a {w}",
                           d) for d, words in (("books", SOURCE_WORDS), ("films", TARGET_WORDS))
                          for j, w in enumerate(words)], columns=["item", "text", "domain"])
    items["title"] = items["text"].str.replace("An adventure book about a ", "").str.replace("A comedy film about a ", "")
    return RecData("toy", inter, items, rating_scale=(1.0, 5.0))


def renamed(data: RecData, users: dict[str, str] | None = None, items: dict[str, str] | None = None) -> RecData:
    """``data`` with some user and item ids replaced (e.g. by the ids a documented request uses)."""
    users, items = users or {}, items or {}
    inter = data.interactions.assign(user=data.interactions["user"].replace(users),
                                     item=data.interactions["item"].replace(items))
    return RecData(data.name, inter, data.items.assign(item=data.items["item"].replace(items)),
                   rating_scale=data.rating_scale)


@functools.lru_cache(maxsize=None)
def toy_text(seed: int = 0) -> tuple[TextEncoder, torch.Tensor]:
    """The packaged encoder and the toy items' vectors, made once per test session."""
    encoder = TextEncoder(None, pooling="mean", max_length=32)
    return encoder, encoder.encode(toy_data(seed).items["text"].tolist())


def toy_trained(seed: int = 0, *, whiten: bool = False, pooling: str = "geometric",
                users: dict[str, str] | None = None, items: dict[str, str] | None = None) -> Trained:
    """Random models over the toy split, as an experiment would hand them to ``pack_bundle`` (ids renamed by ``renamed``)."""
    torch.manual_seed(seed)
    data = renamed(toy_data(seed), users, items)
    cd = encode_split(cold_start_split(data, "books", "films", 0.3, seed=seed))
    encoder, text = toy_text(seed)
    source_rows, target_rows = cd.item_rows("books"), cd.item_rows("films")
    items_src, mask = cd.source_histories(None)
    histories = [row[m].numpy() for row, m in zip(items_src, mask)]
    mf = MF(cd.n_users, cd.n_target_items, 8, loss="bpr", init_std=0.5)
    torch.nn.init.normal_(mf.item_bias.weight, std=0.5)
    bridge = LMBridge(text[torch.as_tensor(target_rows)], mean_pool(text[torch.as_tensor(source_rows)], histories, empty="zeros"),
                      dim=8, hidden=16, dropout=0.0, whiten=whiten, loss="softmax")
    torch.nn.init.normal_(bridge.item_bias.weight, std=0.5)
    source_len = np.bincount(cd.source_train["u"], minlength=cd.n_users)
    target_len = np.bincount(cd.target_train["u"], minlength=cd.n_users)
    pop = popularity_scores(cd.target_train["i"].to_numpy(), cd.n_target_items)
    ids = cd.target_items.ids
    scorers = [Scorer("mf", mf.score_all, ids, target_len > 0), Scorer("lm_bridge", bridge.score_all, ids, source_len > 0),
               Scorer("popularity", lambda u: pop.expand(len(u), -1), ids, np.ones(cd.n_users, bool))]
    can_serve = torch.stack([torch.as_tensor(np.asarray(s.can_serve)) for s in scorers], 1)
    fusion = SoftmaxFusion(scorers, ids, mode="user", features=gate_features(source_len, target_len, can_serve),
                           temperature=[0.7, 1.3, 2.0], standardize=True, pooling=pooling)
    for p in fusion.gate.parameters():
        torch.nn.init.normal_(p, std=0.8)  # far from the uniform start, so the weights differ by user
    seen = interaction_matrix(cd.target_train["u"].to_numpy(), cd.target_train["i"].to_numpy(), cd.n_users, cd.n_target_items)
    lm = {"dim": 8, "hidden": 16, "dropout": 0.0, "whiten": whiten}
    return Trained(cd=cd, text=text, encoder=encoder, mf=mf, bridge=bridge, bridge_settings=lm, popularity=pop,
                   source_len=source_len, target_len=target_len, seen=seen, fusion=fusion,
                   config={"kind": "fusion", "name": "toy"}, summary={"experiment": "toy"})


def toy_bundle(path: Path, **options) -> Path:
    return pack_bundle(path, toy_trained(**options))
