"""stages/rows.py: the row primitives every stage kind shares."""

from __future__ import annotations

import numpy as np

from pipespec.stages.rows import uniform


def test_split_hash_is_seeded_uniform_and_independent_of_partitioning() -> None:
    keys = np.arange(200_000, dtype=np.uint64)
    u = uniform(keys, 42)
    assert ((u >= 0) & (u < 1)).all()
    assert abs(u.mean() - 0.5) < 0.01
    assert abs((u < 0.15).mean() - 0.15) < 0.005
    pieces = np.concatenate([uniform(part, 42) for part in np.array_split(keys, 7)])
    assert np.array_equal(pieces, u)  # a row's draw does not depend on its partition
    assert not np.array_equal(uniform(keys, 43), u)  # the seed matters
