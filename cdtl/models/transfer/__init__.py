"""Cross-domain models for cold-start users, one file each, from the target-only baseline to the language-model bridge."""

from cdtl.models.transfer.base import TRANSFER_LOSSES, TargetScorer
from cdtl.models.transfer.cmf import CMF, domain_batches
from cdtl.models.transfer.emcdr import EMCDR, user_batches
from cdtl.models.transfer.lm_bridge import LMBridge, PTUPCDRText
from cdtl.models.transfer.ptupcdr import PTUPCDR
from cdtl.models.transfer.target_only import MeanUser

__all__ = ["CMF", "EMCDR", "LMBridge", "MeanUser", "PTUPCDR", "PTUPCDRText", "TRANSFER_LOSSES", "TargetScorer",
           "domain_batches", "user_batches"]
