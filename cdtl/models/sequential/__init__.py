"""Next-item recommenders that read ordered histories: popularity, last-item k-NN, GRU4Rec, SASRec, a text-based
SASRec that transfers, and a SASRec over merged two-domain histories that knows each item's domain."""

from cdtl.models.sequential.base import NextItemModel
from cdtl.models.sequential.batches import item_counts, next_item_batches
from cdtl.models.sequential.cross_domain import CrossDomainSASRec
from cdtl.models.sequential.evaluation import RecentOnly, rank_next, rank_sampled
from cdtl.models.sequential.gru4rec import GRU4Rec
from cdtl.models.sequential.item_knn import LastItemKNN
from cdtl.models.sequential.popularity import SequencePopularity
from cdtl.models.sequential.sasrec import SASRec
from cdtl.models.sequential.text_sasrec import TextSASRec, set_trainable
from cdtl.models.sequential.transformer import CausalTransformer, causal_mask

__all__ = [
    "CausalTransformer", "CrossDomainSASRec", "GRU4Rec", "LastItemKNN", "NextItemModel", "RecentOnly", "SASRec",
    "SequencePopularity", "TextSASRec", "causal_mask", "item_counts", "next_item_batches", "rank_next", "rank_sampled",
    "set_trainable"
]
