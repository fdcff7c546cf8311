"""Directional expectations: adding ``shift`` to a numeric column must move the prediction
only one way. Declared in ``behavior.directional``, and derived from the model's monotone
constraints (``model.params.monotone_constraints`` or one of LightGBM's aliases for it)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from pipespec.bundle.behavior.perturb import changes, like, perturbed, violations
from pipespec.bundle.behavior.rows import Rows, key
from pipespec.core.config import Direction, DirectionalConfig
from pipespec.core.documents import class_columns
from pipespec.core.lightgbm_params import PARAMETERS

if TYPE_CHECKING:
    from pipespec.bundle.bundle import Bundle

MONOTONE = "monotone_constraints"
MONOTONE_KEYS = (MONOTONE, *PARAMETERS[MONOTONE])  # the parameter, then LightGBM's aliases


class Directional:
    """The ``behavior.directional`` checks and those the monotone constraints imply, every
    shift scored together (``perturb.perturbed``)."""

    kind = "directional"

    def __init__(self, rows: Rows) -> None:
        self.rows = rows

    def run(self) -> None:
        rows = self.rows
        checks = [(n, c, False) for n, c in rows.spec.directional.items()]
        checks += [(n, c, True) for n, c in self.derived()]
        shifts = []
        for name, cfg, _ in checks:
            column = rows.column(cfg.column, key("directional", name, "column"))
            values = rows.numeric(column, key("directional", name, "column"))
            shifts.append((column, like(values + cfg.shift, rows.frame[column])))
        scored = perturbed(rows, shifts)
        for (name, cfg, derived), (column, _), new in zip(checks, shifts, scored, strict=True):
            change = changes(rows, new, cfg.output)
            change = change[rows.frame.loc[change.index, column].notna()]
            way = cfg.direction.value
            wrong = change < -cfg.tolerance if way == "up" else change > cfg.tolerance
            subject = (
                f"{column} {cfg.shift:+g}: {self.output_named(cfg.output)} must not go "
                f"{'down' if way == 'up' else 'up'}" + (" (monotone constraint)" if derived else "")
            )
            result = violations(
                rows, self.kind, name, subject, wrong, change.abs(), cfg.max_violation_rate
            )
            result.update({"derived": derived, "shift": cfg.shift, "direction": way})
            rows.report.directional[name] = result

    def output_named(self, output: str | None) -> str:
        """The output a check watches, in words: a multiclass model's is a class's
        probability, named with its class."""
        bundle = self.rows.bundle
        if bundle.task != "multiclass":
            return output or "prediction"
        names = dict(zip(class_columns(list(bundle.classes)), bundle.classes, strict=True))
        if output in names:
            return f"the probability of class {names[output]!r} ({output})"
        return f"{output}" if output else "no class's probability (the largest change)"

    def derived(self) -> list[tuple[str, DirectionalConfig]]:
        """A directional check for every raw numeric input with a monotone constraint."""
        import numpy as np

        rows = self.rows
        cfg = rows.spec.monotone
        if not cfg.enabled:
            return []
        raw = {c.name: c for c in rows.bundle.schema.columns}
        out = []
        for feature, sign in monotone_constraints(rows.bundle).items():
            column = raw.get(feature)
            if column is None or column.type != "numeric" or feature not in rows.frame.columns:
                rows.report.notes.append(
                    f"monotone constraint on '{feature}' not checked: it is not a raw numeric "
                    "input column"
                )
                continue
            shift = cfg.shift * float(np.nanstd(rows.numeric(feature, "monotone")))
            if column.dtype == "int":
                shift = float(max(1, round(shift)))
            out.append((
                f"monotone_{feature}",
                DirectionalConfig(
                    column=feature,
                    shift=round(shift, 6),
                    direction=Direction.up if sign > 0 else Direction.down,
                    tolerance=cfg.tolerance,
                    max_violation_rate=cfg.max_violation_rate,
                ),
            ))  # fmt: skip
        return out


def monotone_constraints(bundle: Bundle) -> dict[str, int]:
    """``{feature: +1 | -1}`` from the model params the bundle was trained with: a list in
    feature order (or its comma-separated text), or a mapping by feature name."""
    model = (bundle.card.get("params") or {}).get("model") or {}
    params = model.get("params") or {}
    raw = next((params[k] for k in MONOTONE_KEYS if k in params), None)
    if raw is None:
        return {}
    if isinstance(raw, str):
        raw = [int(v) for v in raw.split(",") if v.strip()]
    if isinstance(raw, Mapping):
        pairs = [(str(k), int(v)) for k, v in raw.items()]
    else:
        names = bundle.feature_names
        pairs = [(names[i], int(v)) for i, v in enumerate(raw) if i < len(names)]
    return {name: sign for name, sign in pairs if sign}
