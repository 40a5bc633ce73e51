"""Jobs that tests/test_distributed.py starts under torchrun (gloo, CPU): ``python -m torch.distributed.run ... JOB OUT``."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import save_file

from cdtl import distributed
from cdtl.models.batches import RatingBatches, rating_batches
from cdtl.models.mf import MF
from cdtl.train import TrainConfig, fit

TITLES = [f"{kind} film number {n} about {topic}" for n in range(30)
          for kind, topic in (("an old", "the sea"), ("a new", "a city"))][:48]


class DyingBatches(RatingBatches):
    """Rating batches whose rank 1 dies (as a killed process would) at the second step of epoch 1."""

    def __call__(self, epoch, generator):
        for step, batch in enumerate(super().__call__(epoch, generator)):
            if epoch == 1 and step == 1 and self.rank == 1:
                os._exit(3)
            yield batch


def die(out: Path) -> None:
    rng = np.random.default_rng(0)
    u, i = rng.integers(0, 30, 400), rng.integers(0, 20, 400)
    base = rating_batches(u, i, rng.uniform(1, 5, 400), batch_size=32)
    maker = DyingBatches(base.users, base.items, base.ratings, 32)
    model = MF(30, 20, 4, loss="mse")
    fit(model, maker, TrainConfig(epochs=3, lr=0.01, progress=False, device="cpu", checkpoint_dir=str(out / "ckpt")))


def encode(out: Path) -> None:
    from cdtl.encoders.text_encoder import TextEncoder

    encoder = TextEncoder(None, max_length=16, batch_size=8, chunk_size=8, device="cpu", cache_dir=out / "cache")
    vectors = encoder.encode(TITLES)
    plain = TextEncoder(None, max_length=16, batch_size=8, chunk_size=8, device="cpu").encode(TITLES)
    if distributed.is_main():
        save_file({"cached": vectors, "plain": plain}, out / "vectors.safetensors")
        (out / "encode.json").write_text(json.dumps({"world": distributed.world_size()}))


if __name__ == "__main__":
    job, out = sys.argv[1], Path(sys.argv[2])
    distributed.setup(torch.device("cpu"))
    try:
        {"die": die, "encode": encode}[job](out)
    finally:
        distributed.teardown()
