"""Fine-tune the language model itself as a recommender: a two-tower model trained with an in-batch softmax (``model``)."""

from cdtl.models.two_tower.batches import TwoTowerBatches, two_tower_batches
from cdtl.models.two_tower.model import ADAPTORS, LR, TARGETS, USER_POOLINGS, WEIGHT_DECAY, TwoTower

__all__ = ["ADAPTORS", "LR", "TARGETS", "USER_POOLINGS", "TwoTower", "TwoTowerBatches", "WEIGHT_DECAY", "two_tower_batches"]
