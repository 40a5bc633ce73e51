"""The one switch that sizes every chapter: `smoke` (a CPU minute) or `full` (the real experiment)."""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, replace
from typing import Any

ENV_VAR = "CDTL_PROFILE"
WITH_GPU, WITHOUT_GPU = "full", "smoke"  # the default where a CUDA GPU is present, and where none is
RENAMED = {"max_text_length": "max_length"}  # an older field's name -> its name now (the config key's)


@dataclass(frozen=True)
class Profile:
    """Sizes for one run. Chapters read these fields; they never hard-code sizes of their own."""

    name: str
    movielens: str  # registry name of the MovieLens used by the chapters
    seeds: tuple[int, ...]  # one experiment per seed
    cold_ratios: tuple[float, ...]  # fractions of overlapping users made cold-start
    new_item_ratios: tuple[float, ...]  # fractions of the target catalogue held out as new items
    epochs: int  # upper bound on training epochs (early stopping may end sooner)
    batch_size: int  # training mini-batch
    eval_batch_size: int  # users per batch in full-ranking evaluation
    embedding_dim: int  # latent size of ID-based models
    encode_batch_size: int  # texts per language-model forward pass
    max_length: int  # tokens kept per item text (a config's text.max_length)
    bootstrap: int  # bootstrap resamples for confidence intervals
    plot_sample: int  # points drawn in scatter plots
    finetune_users: int  # users whose histories fine-tune the language model (0: every user)
    finetune_epochs: int  # epochs of language-model fine-tuning
    finetune_freeze_layers: int  # lowest transformer layers kept frozen while fine-tuning
    finetune_max_history: int  # history items per user in the two-tower user tower
    finetune_batch_size: int  # users per fine-tuning batch
    amazon_users: int  # users sampled from the Amazon pair for a quick run (0: every user)
    scale_sizes: tuple[int, ...]  # synthetic interactions at which chapter 02 measures how cost grows

    def as_dict(self) -> dict[str, Any]:
        """The profile as plain JSON-ready values (for metrics.json and recorded results)."""
        return asdict(self)


PROFILES: dict[str, Profile] = {
    "smoke": Profile(
        name="smoke",
        movielens="movielens-100k",
        seeds=(0,),
        cold_ratios=(0.2,),
        new_item_ratios=(0.2,),
        epochs=10,
        batch_size=1024,
        eval_batch_size=512,
        embedding_dim=32,
        encode_batch_size=64,
        max_length=32,
        bootstrap=200,
        plot_sample=2_000,
        finetune_users=256,
        finetune_epochs=1,
        finetune_freeze_layers=5,
        finetune_max_history=5,
        finetune_batch_size=32,
        amazon_users=2_000,
        scale_sizes=(10_000, 20_000, 40_000),
    ),
    "full": Profile(
        name="full",
        movielens="movielens-1m",
        seeds=(0, 1, 2),
        cold_ratios=(0.2, 0.5, 0.8),
        new_item_ratios=(0.1, 0.2, 0.5),
        epochs=100,
        batch_size=4096,
        eval_batch_size=2048,
        embedding_dim=64,
        encode_batch_size=256,
        max_length=64,
        bootstrap=1_000,
        plot_sample=20_000,
        finetune_users=0,
        finetune_epochs=1,
        finetune_freeze_layers=2,
        finetune_max_history=20,
        finetune_batch_size=64,
        amazon_users=0,
        scale_sizes=(100_000, 300_000, 1_000_000),
    ),
}


def cuda_available() -> bool:
    """True where PyTorch sees a CUDA GPU (False where torch is missing or CPU-only)."""
    try:
        import torch
    except ImportError:  # pragma: no cover - torch is a dependency; kept for a bare install
        return False
    return bool(torch.cuda.is_available())


def choose(name: str | None = None) -> tuple[str, str]:
    """The profile's name and where it came from: ``"argument"``, ``"environment"``, ``"gpu"`` or ``"cpu"``.

    ``name`` wins when given (a papermill ``parameters`` cell passes it); otherwise the
    ``CDTL_PROFILE`` environment variable; otherwise ``full`` where a CUDA GPU is present
    and ``smoke`` where none is, so a laptop never starts an hour-long CPU run by default.
    """
    if name:
        chosen, source = name, "argument"
    elif os.environ.get(ENV_VAR, "").strip():
        chosen, source = os.environ[ENV_VAR], "environment"
    elif cuda_available():
        chosen, source = WITH_GPU, "gpu"
    else:
        chosen, source = WITHOUT_GPU, "cpu"
    chosen = chosen.strip().lower()
    if chosen not in PROFILES:
        raise ValueError(
            f"unknown profile {chosen!r} (from {'argument' if source == 'argument' else ENV_VAR}); "
            f"expected one of {sorted(PROFILES)}"
        )
    return chosen, source


def profile(name: str | None = None, **overrides: Any) -> Profile:
    """Return the sizes for this run.

    The profile is chosen by :func:`choose`: ``name``, else ``CDTL_PROFILE``, else ``full``
    with a CUDA GPU and ``smoke`` without. Keyword overrides replace single fields, e.g.
    ``profile("smoke", epochs=5)``.
    """
    base = PROFILES[choose(name)[0]]
    renamed = sorted(set(overrides) & set(RENAMED))
    if renamed:
        raise ValueError(f"profile field {renamed[0]} was renamed to {RENAMED[renamed[0]]}: write "
                         f"{RENAMED[renamed[0]]}=...")
    unknown = sorted(set(overrides) - set(base.as_dict()))
    if unknown:
        raise ValueError(f"unknown profile field(s) {unknown}; valid fields: {sorted(base.as_dict())}")
    return replace(base, **overrides) if overrides else base
