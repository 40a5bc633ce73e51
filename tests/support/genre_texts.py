"""Thirty film descriptions of two genres, users who keep to one, and the two-tower model the tests train copies of."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from cdtl.models.two_tower import TwoTower

SCIFI = [
    "Star Voyager: a space opera about a starship crew", "Galaxy Wars: rebels fight an empire among the stars",
    "Mars Colony: astronauts survive on the red planet", "The Robot Uprising: androids rebel against humans",
    "Time Machine: a scientist travels to the far future", "Alien Contact: first meeting with extraterrestrials",
    "Nebula: a spaceship lost in deep space", "Cyber City: hackers in a neon dystopia",
    "Quantum Leap: physicists bend time and space", "Orbit: a lonely astronaut on a space station",
    "Planet X: explorers discover a new world", "Warp Drive: the first faster-than-light flight",
    "Moonbase: miners on the lunar surface", "Starfall: a comet threatens the earth",
    "Android Dreams: a robot learns to love",
]


ROMANCE = [
    "Wedding Bells: two rivals fall in love before a wedding", "Paris Kiss: a summer romance in Paris",
    "Love Letters: pen pals fall for each other", "The Proposal: a fake engagement turns real",
    "Second Chance: old flames meet again", "Sweet Valentine: a florist finds love on Valentine's day",
    "Heartstrings: a musician and a painter fall in love", "Bride Wars: best friends plan their weddings",
    "Sunset Romance: lovers on a beach holiday", "First Date: a nervous couple's first evening",
    "Honeymoon: newlyweds on a tropical island", "Crush: a high-school love story",
    "Married by Monday: a romantic comedy about a rushed wedding", "Roses: a gardener's love story",
    "Forever Yours: a couple's lifelong romance",
]


TEXTS = SCIFI + ROMANCE  # items 0-14 science fiction, 15-29 romance


N_USERS = 20


def _histories() -> list[np.ndarray]:
    """Even users watched 6 science-fiction films, odd users 6 romances, oldest first."""
    rng = np.random.default_rng(0)
    return [rng.choice(np.arange(15) + (15 if u % 2 else 0), size=6, replace=False) for u in range(N_USERS)]


@pytest.fixture(scope="module")
def frozen4() -> TwoTower:
    """The packaged MiniLM with its embeddings and lowest 4 of 6 layers frozen; tests train deep copies of it."""
    torch.manual_seed(0)
    return TwoTower(freeze_layers=4, max_length=32, max_history=5)
