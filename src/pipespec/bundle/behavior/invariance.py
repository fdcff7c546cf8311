"""Invariance: a perturbation that must not change the prediction (the column set to a
value, or Gaussian noise added to it) beyond a tolerance, on more than a share of rows."""

from __future__ import annotations

from typing import Any

from pipespec.bundle.behavior.perturb import Change, changes, filled, like, perturbed, violations
from pipespec.bundle.behavior.rows import Rows, key
from pipespec.core.config import InvarianceConfig


class Invariance:
    """The ``behavior.invariance`` checks: every perturbation made first, then all scored
    together (``perturb.perturbed``)."""

    kind = "invariance"

    def __init__(self, rows: Rows) -> None:
        self.rows = rows

    def run(self) -> None:
        rows = self.rows
        made = [(name, cfg, *self.perturbation(name, cfg))
                for name, cfg in rows.spec.invariance.items()]  # fmt: skip
        scored = perturbed(rows, [change for *_, change in made])
        for (name, cfg, subject, _), new in zip(made, scored, strict=True):
            change = changes(rows, new, None).abs()
            rows.report.invariance[name] = violations(
                rows, self.kind, name, subject, change > cfg.tolerance, change,
                cfg.max_violation_rate,
            )  # fmt: skip

    def perturbation(self, name: str, cfg: InvarianceConfig) -> tuple[str, Change]:
        """The check's subject in words, and its change to the data."""
        import numpy as np

        rows = self.rows
        column = rows.column(cfg.column, key("invariance", name, "column"))
        values: Any
        if cfg.noise is not None:
            numbers = rows.numeric(column, key("invariance", name, "column"))
            scale = float(np.nanstd(numbers)) * cfg.noise
            noise = rows.rng("invariance", name).normal(0.0, scale, len(numbers))
            values = like(numbers + noise, rows.frame[column])
            return f"{column} + N(0, {cfg.noise:g} x std)", (column, values)
        values = filled(rows.frame[column], cfg.value)
        return f"{column} set to {cfg.value!r}", (column, values)
