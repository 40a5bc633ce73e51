"""Multi-task recommenders over shared user and item representations: single-task, shared-bottom, MMoE and PLE.

Every example is a (user, item, task) triple with a label. Tasks live in item *domains*
(0 the source, 1 the target, ...) and are of one of two kinds:

- ``"rating"``: an explicit rating, squared error (e.g. ``source_rating``, ``target_rating``);
- ``"click"``: an interaction (label 1) or a sampled non-interaction (label 0), binary
  cross-entropy on a logit, evaluated by ranking (e.g. ``target_click``).

The input of every architecture is the same shared representation of the pair
(``Inputs``): the user's ID embedding (one table for all domains, so a user is the same
row in every task), the item's ID embedding (one table per domain), the item's frozen
language-model vector through a learned projection, and an embedding of the domain,
concatenated. What differs is what the tasks share after that:

- ``"single"``: nothing at all. Every task has its own inputs, its own MLP and its own
  tower: the baseline that multi-task learning must beat.
- ``"shared_bottom"``: one MLP (the bottom) shared by every task, one small tower per task.
- ``"mmoe"``: K expert MLPs shared by every task; each task mixes them with its own
  softmax gate, a function of the input (Ma et al., KDD 2018).
- ``"ple"``: progressive layered extraction (Tang et al., RecSys 2020): shared experts
  *and* experts that belong to one task; each task's gate mixes its own experts and the
  shared ones; with two levels a shared gate mixes every expert into the input of the
  next level's shared experts.

Loss: ``L = sum_t w_t L_t`` over the tasks present in a batch, each ``L_t`` a mean over
that task's examples (``weighting="fixed"``, weights ``loss_weights``), or the learned
uncertainty weighting of Kendall et al. (CVPR 2018), ``L = sum_t exp(-s_t) L_t + s_t``
with one learned ``s_t`` per task (``weighting="uncertainty"``). A task with no example
in a batch contributes nothing, neither its loss nor its ``s_t``: never a NaN.

``gate_weights(batch)`` gives every task's gate distribution over the experts
(``expert_names``), for MMoE and PLE.
"""

from cdtl.models.layers import mlp
from cdtl.models.multitask.architectures import PLE, MMoE, PLELevel, SharedBottom, SingleTask
from cdtl.models.multitask.batches import MultiTaskBatches, multitask_batches
from cdtl.models.multitask.inputs import Inputs
from cdtl.models.multitask.model import MultiTask
from cdtl.models.multitask.tasks import ARCHS, BATCH_KEYS, DEFAULT_TASKS, KNOWN_TASKS, TASK_KINDS, WEIGHTINGS, Task

__all__ = ["ARCHS", "BATCH_KEYS", "DEFAULT_TASKS", "KNOWN_TASKS", "MMoE", "MultiTask", "MultiTaskBatches", "Inputs",
           "PLE", "PLELevel", "SharedBottom", "SingleTask", "TASK_KINDS", "Task", "WEIGHTINGS", "mlp",
           "multitask_batches"]
