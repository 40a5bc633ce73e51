"""Who am I among the processes torchrun started, which share of the work is mine, and how the shares come back together.

Everything here is a no-op in a single process: ``world_size()`` is 1, ``shard(n)`` is the
whole range and ``gather`` returns its input, so code written with these helpers runs
unchanged with and without ``torchrun``.
"""

from __future__ import annotations

import datetime
import os
import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import numpy as np
import torch
import torch.distributed as dist

#: how long a rank waits for the others at a collective before it gives up (seconds)
TIMEOUT_ENV = "CDTL_DIST_TIMEOUT"
DEFAULT_TIMEOUT_S = 1800


class RankFailure(RuntimeError):
    """Another process of a torchrun job stopped (or stopped answering): this one stops too."""


def launched() -> bool:
    """Whether torchrun (or another launcher) started this process as one rank of several."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def active() -> bool:
    """Whether a process group of more than one rank is up."""
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def world_size() -> int:
    """Processes in the job (1 without torchrun)."""
    return dist.get_world_size() if active() else 1


def rank() -> int:
    """This process's rank, 0..world_size()-1 (0 without torchrun)."""
    return dist.get_rank() if active() else 0


def is_main() -> bool:
    """Whether this process writes files and prints tables: rank 0, or the only process (torchrun's RANK before setup)."""
    return rank() == 0 if active() else int(os.environ.get("RANK", "0")) == 0


def setup(device: torch.device) -> bool:
    """Join the job torchrun started (gloo on CPU, NCCL on CUDA); False when there is no job to join.

    Reads torchrun's environment (RANK, WORLD_SIZE, MASTER_ADDR, ...). On CUDA each rank takes
    the GPU of its LOCAL_RANK. Idempotent: a second call does nothing.
    """
    if not launched():
        return False
    if not dist.is_available():
        raise RuntimeError("torch.distributed is not available in this PyTorch build; run without torchrun")
    if dist.is_initialized():
        return True
    backend = "nccl" if device.type == "cuda" else "gloo"
    if device.type == "cuda":
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
    timeout = datetime.timedelta(seconds=float(os.environ.get(TIMEOUT_ENV, DEFAULT_TIMEOUT_S)))
    dist.init_process_group(backend=backend, timeout=timeout)
    return True


def teardown() -> None:
    """Leave the process group, if this process joined one."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def local_device(device: torch.device) -> torch.device:
    """This rank's device: its own GPU (LOCAL_RANK) on CUDA, else ``device``."""
    if device.type == "cuda" and launched():
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
    return device


def shard(n: int, *, world: int | None = None, at: int | None = None) -> slice:
    """This rank's contiguous share of ``range(n)``: sizes differ by at most one, earlier ranks larger."""
    world = world_size() if world is None else world
    at = rank() if at is None else at
    base, extra = divmod(int(n), world)
    start = at * base + min(at, extra)
    return slice(start, start + base + (1 if at < extra else 0))


def my_chunks(n: int, size: int) -> list[int]:
    """Starts of the chunks of ``size`` over ``range(n)`` that this rank takes: every world_size()-th one.

    The chunks are those one process would cut, so work done per chunk (an encoded shard of an
    embedding cache) is the same whichever rank does it.
    """
    return list(range(0, int(n), int(size)))[rank()::world_size()]


def barrier() -> None:
    """Wait for every rank (no-op in one process)."""
    if active():
        dist.barrier()


def gather(part: torch.Tensor) -> torch.Tensor:
    """Every rank's ``part`` concatenated along dim 0 in rank order (parts may differ in length).

    Each rank must call it (a collective). Returns ``part`` itself in one process.
    """
    if not active():
        return part
    world = dist.get_world_size()
    device = _collective_device(part)
    local = part.to(device)
    sizes = [torch.zeros(1, dtype=torch.int64, device=device) for _ in range(world)]
    dist.all_gather(sizes, torch.tensor([local.shape[0]], dtype=torch.int64, device=device))
    longest = int(max(int(s) for s in sizes))
    padded = torch.zeros((longest, *local.shape[1:]), dtype=local.dtype, device=device)
    padded[: local.shape[0]] = local
    parts = [torch.empty_like(padded) for _ in range(world)]
    dist.all_gather(parts, padded)
    return torch.cat([p[: int(s)] for p, s in zip(parts, sizes)]).to(part.device)


def gather_arrays(part: np.ndarray) -> np.ndarray:
    """``gather`` for NumPy arrays."""
    return gather(torch.from_numpy(np.ascontiguousarray(part))).numpy() if active() else part


def agree(flag: bool) -> bool:
    """Whether ``flag`` is true on every rank (a collective; ``flag`` itself in one process)."""
    if not active():
        return bool(flag)
    value = torch.tensor([1 if flag else 0], dtype=torch.int64, device=_collective_device(torch.zeros(0)))
    dist.all_reduce(value, op=dist.ReduceOp.MIN)
    return bool(value.item())


def broadcast_object(value: object) -> object:
    """Rank 0's ``value`` on every rank (a collective; ``value`` itself in one process)."""
    if not active():
        return value
    box: list[object] = [value]
    dist.broadcast_object_list(box, src=0)
    return box[0]


class _Loss(torch.nn.Module):
    """``model.loss`` as a module's forward, so DDP sees every training step go through it."""

    def __init__(self, model: torch.nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, batch: dict) -> torch.Tensor:
        return self.model.loss(batch)


def data_parallel(model: torch.nn.Module) -> torch.nn.Module:
    """``model.loss`` wrapped in DistributedDataParallel: calling it computes the loss, backward averages gradients.

    The ranks start from rank 0's weights (DDP broadcasts them once). Buffers are not broadcast
    at every step (the course's models keep only frozen tables in buffers, the same on every
    rank). Every trainable parameter must take part in each step's loss (the course's models do;
    a sparse table that receives no gradient is an error in DDP).
    """
    import inspect

    from torch.nn.parallel import DistributedDataParallel

    device_ids = [torch.cuda.current_device()] if dist.get_backend() == "nccl" else None
    no_sync = ({"forward_sync_buffers": False} if "forward_sync_buffers" in inspect.signature(DistributedDataParallel).parameters
               else {"broadcast_buffers": False})  # the name changed in torch 2.13
    return DistributedDataParallel(_Loss(model), device_ids=device_ids, find_unused_parameters=False, **no_sync)


def shard_batches(batches: object) -> object:
    """This rank's share of a batch maker (``cdtl.models.batches``); the maker itself in one process."""
    if not active():
        return batches
    if not callable(getattr(batches, "sharded", None)):
        raise TypeError(
            f"under torchrun every rank needs its own share of each epoch's batches, but {type(batches).__name__} "
            "has no sharded(rank, world) method; use a maker of cdtl.models.batches, or run in one process"
        )
    return batches.sharded(rank(), world_size())


def failure(err: BaseException, where: str, checkpoint: object) -> RankFailure:
    """The error a rank raises when a collective fails because another rank stopped."""
    saved = (f"the last checkpoint, {checkpoint}, is intact: resume with train.resume: true on any number of processes"
             if checkpoint is not None else "no checkpoint was written (set train.checkpoint_dir to keep one)")
    return RankFailure(f"{describe()}: stopped at {where} because another process of the job stopped or stopped "
                       f"answering ({type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}); {saved}")


def lost_peer(err: BaseException) -> bool:
    """Whether ``err`` is a collective failing because another rank stopped (only ever true under torchrun)."""
    if not active() or isinstance(err, RankFailure):
        return False
    if isinstance(err, getattr(dist, "DistError", ())):
        return True
    text = str(err).lower()
    return isinstance(err, RuntimeError) and any(s in text for s in ("gloo", "nccl", "connection", "timed out", "peer"))


@contextmanager
def stop_together(where: Callable[[], str], checkpoint: Callable[[], object]) -> Iterator[None]:
    """Under torchrun, stop with a ``RankFailure`` (where this rank was, the last checkpoint) when another rank dies.

    Both ways a peer's death reaches a rank are covered: a collective that fails (gloo, NCCL)
    and the SIGTERM torchrun sends the survivors. ``where()`` and ``checkpoint()`` are read
    when it happens. A no-op in one process.
    """
    restore = stop_on_terminate(where, checkpoint)
    try:
        yield
    except Exception as err:
        if lost_peer(err):
            raise failure(err, where(), checkpoint()) from err
        raise
    finally:
        restore()


def stop_on_terminate(where: Callable[[], str], checkpoint: Callable[[], object]) -> Callable[[], None]:
    """Under torchrun, make SIGTERM (what torchrun sends the others when one rank fails) raise a clear RankFailure.

    Returns the function that puts the previous handler back. A no-op in one process.
    """
    if not active() or threading.current_thread() is not threading.main_thread():
        return lambda: None

    def on_term(signum: int, frame: object) -> None:
        raise failure(RuntimeError("torchrun ended the job"), where(), checkpoint())

    previous = signal.signal(signal.SIGTERM, on_term)
    return lambda: signal.signal(signal.SIGTERM, previous)


def mean(value: float) -> float:
    """The mean of ``value`` over the ranks (a collective; ``value`` itself in one process)."""
    if not active():
        return float(value)
    total = torch.tensor([float(value)], dtype=torch.float64, device=_collective_device(torch.zeros(0)))
    dist.all_reduce(total)
    return float(total.item()) / dist.get_world_size()


def _collective_device(tensor: torch.Tensor) -> torch.device:
    """Where a collective's buffers live: the rank's GPU for NCCL, the CPU for gloo."""
    if dist.get_backend() == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


def describe() -> str:
    """'rank r of w', for messages."""
    return f"rank {rank()} of {world_size()}"


__all__ = ["RankFailure", "active", "agree", "barrier", "broadcast_object", "data_parallel", "describe", "failure",
           "gather", "gather_arrays", "is_main", "launched", "local_device", "lost_peer", "mean", "my_chunks", "rank",
           "setup", "shard", "shard_batches", "stop_on_terminate", "stop_together", "teardown", "world_size"]
