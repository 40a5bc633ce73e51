"""The recommendation models of the course, each in one file to read top to bottom, plus their batch makers."""

from cdtl.models.batches import bpr_batches, rating_batches, softmax_batches
from cdtl.models.mf import LOSSES, MF

__all__ = ["LOSSES", "MF", "bpr_batches", "rating_batches", "softmax_batches"]
