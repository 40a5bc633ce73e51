"""The smallest config of every experiment kind, and the hand-made two-domain data each runs on."""

from __future__ import annotations

from toy_data import two_domains

from cdtl.data.tables import RecData

PROTOCOL = {"source": "src", "target": "tgt"}
TRAIN = {"epochs": 2, "progress": False}
# the smallest config of each kind that runs on the hand-made two-domain set
CONFIGS = {
    "single": {"kind": "single", "protocol": {"name": "cold_start", **PROTOCOL, "cold_ratio": 0.5},
               "model": {"dim": 4}, "train": TRAIN, "evaluate": {"metrics": ["ndcg@5"], "bootstrap": 20}},
    "transfer": {"kind": "transfer", "protocol": {**PROTOCOL, "cold_ratios": [0.5]},
                 "models": ["popularity", "target_mf", "emcdr_linear"], "tasks": ["ranking", "rating"],
                 "mf": {"ranking": {"dim": 4, "epochs": 2}, "rating": {"dim": 4, "epochs": 2}},
                 "mapping": {"epochs": 2, "hidden": 8}, "evaluate": {"metrics": ["ndcg@5"], "bootstrap": 20}},
    "fusion": {"kind": "fusion", "protocol": {**PROTOCOL, "cold_ratio": 0.5, "warm_val": 0.2, "warm_test": 0.2},
               "scorers": ["mf", "popularity"], "mf": {"dim": 4, "train": TRAIN},
               "fusion": {"modes": ["global", "user"], "train": {"epochs": 2, "progress": False}},
               "evaluate": {"metrics": ["ndcg@10"], "bootstrap": 20}},
    "multitask": {"kind": "multitask", "protocol": {**PROTOCOL, "cold_ratio": 0.5, "source_holdout": 0.3},
                  "features": {"text": False}, "model": {"dim": 4, "hidden": [8], "tower": [4], "n_experts": 2},
                  "models": [{"name": "single", "arch": "single"}, {"name": "mmoe", "arch": "mmoe"}],
                  "train": TRAIN, "evaluate": {"ks": [5], "bootstrap": 20}},
    "finetune": {"kind": "finetune", "protocol": {**PROTOCOL, "cold_ratio": 0.5},
                 "model": {"freeze_layers": 5, "max_history": 4}, "text": {"max_length": 8, "encode_batch_size": 16},
                 "batches": {"batch_size": 32}, "train": {"epochs": 1, "progress": False},
                 "evaluate": {"metrics": ["ndcg@5"], "bootstrap": 20, "whiten_dim": 4}},
    "newitems": {"kind": "newitems", "protocol": {**PROTOCOL, "by": "random", "ratios": [0.5], "cold_ratio": 0.3},
                 "models": ["popularity", "mf"], "encoders": ["frozen"], "mf": {"dim": 4, "epochs": 2, "batch_size": 64},
                 "evaluate": {"metrics": ["ndcg@3"], "monitor": "ndcg@3", "bootstrap": 20}},
    "fewshot": {"kind": "fewshot", "protocol": {**PROTOCOL, "shots": [0, 1], "eval_ratio": 0.3},
                "models": ["popularity", "target_knn"], "encoders": ["frozen"],
                "evaluate": {"metrics": ["ndcg@3"], "monitor": "ndcg@3", "bootstrap": 20}},
    "sequential": {"kind": "sequential", "protocol": {**PROTOCOL, "budgets": [1.0]},
                   "models": ["popularity", "item_knn", "sasrec"], "model": {"dim": 4, "max_len": 6, "layers": 1},
                   "train": {**TRAIN, "monitor": "ndcg@5"}, "pretrain": {**TRAIN, "monitor": "ndcg@5"},
                   "evaluate": {"metrics": ["ndcg@5"], "negatives": 5, "bootstrap": 20}},
}
SLOW_KINDS = {"finetune"}  # loads and fine-tunes the language model


def own_data(kind: str) -> RecData:
    """The hand-made two-domain set; for the few-shot kind, half the users have no source history (its protocol
    trains on users of one domain only and evaluates the users both domains share)."""
    data = two_domains(ratings=True, per_group=8)  # 16 items a domain: NDCG@10 needs 10 left after exclusion
    if kind == "fewshot":
        inter = data.interactions
        data = RecData(data.name, inter[~((inter["domain"] == "src") & (inter["user"] < "u40"))], data.items,
                       rating_scale=data.rating_scale)
    return data
