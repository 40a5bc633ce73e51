"""Training for every model of the course: the checked config, the loop (``fit``) and pickle-free checkpoints."""

from cdtl.train.checkpoint import ResumeError, load_weights, save_weights
from cdtl.train.config import HISTORY_KEYS, TrainConfig, TrainResult
from cdtl.train.device import choose_device, set_seed
from cdtl.train.loop import SYNC_EVERY, LossGuard, TrainingState, fit
from cdtl.train.schedule import LRSchedule, make_optimizer

__all__ = ["HISTORY_KEYS", "LRSchedule", "LossGuard", "ResumeError", "SYNC_EVERY", "TrainConfig", "TrainResult",
           "TrainingState", "choose_device", "fit", "load_weights", "make_optimizer", "save_weights", "set_seed"]
