"""Seeds: every random seed a study uses, derived from the sweep's one `seed`, distinct and
reproducible.

Each comes from numpy's `SeedSequence` with its own entropy or spawn key, so a trial's training
seed, a replicate's seed and a sampler's seed never coincide, and rerunning the sweep file
reproduces all of them.
"""

from __future__ import annotations

import numpy as np


def trial_seed(sweep_seed: int, trial_number: int) -> int:
    """A training seed derived from (sweep seed, trial number): distinct per trial, reproducible."""
    return int(np.random.SeedSequence([sweep_seed, trial_number]).generate_state(1)[0] % (2**31 - 1))


def replicate_seed(sweep_seed: int, trial_number: int, index: int) -> int:
    """Seed of replicate `index` of a trial: new (never a search trial's seed) and reproducible."""
    return int(np.random.SeedSequence([sweep_seed, trial_number, 1_000_003, index]).generate_state(1)[0] % (2**31 - 1))


def sampler_seed(sweep_seed: int, key: int) -> int:
    """The seed of draw number `key` (kept apart from the training seeds by its own spawn key)."""
    return int(np.random.SeedSequence(sweep_seed, spawn_key=(1, key)).generate_state(1)[0])
