"""Row primitives shared by the stage kinds: the column that marks a row's split, and the
seeded number that assigns a row to a split. This module imports nothing from pipespec, so
that any stage kind can use it without importing another (an import-linter contract)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np

# Reading text as numbers (load's reading contract and featurize's type inference agree)
INFER_ROWS = 20_000  # types are inferred from the first rows (identifiers from all)
NUMBER_SHARE = 0.95  # a text column is numeric when this share of its values parse as numbers

SPLIT_COLUMN = "_split"
"""load writes it when a separate test file is read: ``"test"`` on its rows, ``""`` elsewhere;
split keeps those rows as the test set and drops the column."""


def uniform(keys: np.ndarray, seed: int) -> np.ndarray:
    """A seeded number in [0, 1) per 64-bit key (splitmix64): the same key, the same number."""
    import numpy as np

    with np.errstate(over="ignore"):
        x = keys.astype(np.uint64) + np.uint64(seed) * np.uint64(0x9E3779B97F4A7C15)
        x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        x = x ^ (x >> np.uint64(31))
    return (x >> np.uint64(11)).astype(np.float64) * (1.0 / (1 << 53))
