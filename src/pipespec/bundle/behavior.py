"""Behaviour checks of a bundle: slices, the weakest-segment search, invariance, directional
expectations (declared, and derived from monotone constraints), minimum-functionality cases
and a latency budget.

Every check goes through ``Bundle.predict`` on raw rows, so what is measured is what ships.
The checks are the ``behavior`` section of ``params.yaml`` (typed by
``pipespec.core.config.BehaviorConfig``); ``spec_from`` reads that section, or the same
mapping from a checks file, without Hydra, so the ``behavior`` stage and ``pipespec test`` on
a serving host run one implementation. Sampling and perturbations are seeded per check: the
same bundle, data and checks give the same report (latency timings aside, which
``stable`` leaves out of what DVC tracks).
"""

from __future__ import annotations

import difflib
import html
import math
import time
import types
import typing
import zlib
from collections.abc import Mapping
from dataclasses import MISSING as NO_DEFAULT
from dataclasses import dataclass, field, fields, is_dataclass
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipespec.core.bounds import holds, parse_bound
from pipespec.core.config import (
    BehaviorConfig,
    DirectionalConfig,
    InvarianceConfig,
    SliceConfig,
)
from pipespec.core.documents import class_columns
from pipespec.core.errors import BehaviorError, ConfigError, DataError
from pipespec.core.model_metrics import BEHAVIOR, NEUTRAL, lower_is_better, task_metrics
from pipespec.core.numbers import number

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

    from pipespec.bundle.bundle import Bundle

SECTION = "behavior"
# Metrics by task (the first is the search's default) and their directions:
# core/model_metrics, shared with evaluation and `pipespec diff`.
METRICS = BEHAVIOR
CASE_COLUMNS = ("case", "expected_label", "expected_min", "expected_max")
PAIR_COLUMNS = 8  # the search pairs up the columns with the 8 weakest single-column segments
MIN_CLASS_ROWS = 10  # the search's AUC needs this many rows of each class in a segment
MONOTONE_KEYS = ("monotone_constraints", "monotone_constraint", "mc", "monotonic_cst")


# --- the spec -----------------------------------------------------------------------------


def spec_from(data: Any, *, where: str) -> BehaviorConfig:
    """The typed checks from a plain mapping (``params.yaml``'s ``behavior`` section, or a
    checks file); a ConfigError naming ``behavior.KEY`` and ``where`` for anything wrong."""
    if not isinstance(data, Mapping):
        raise ConfigError(f"{where}: the behaviour checks must be a mapping, got {type(data)}")
    spec = _build(BehaviorConfig, data, SECTION, where)
    for name, s in spec.slices.items():
        key = f"{SECTION}.slices.{name}"
        ways = sum(x is not None for x in (s.values, s.bins)) + (
            s.min is not None or s.max is not None
        )
        if ways != 1:
            raise ConfigError(
                f"{key} in {where}: give exactly one of values, min/max or bins",
                hint="e.g. {column: sex, values: [Female]} or {column: age, min: 18, max: 30}",
            )
        for metric, expr in s.bounds.items():
            parse_bound(f"{key}.bounds.{metric}", expr)
        if not s.bounds and not s.max_gap:
            raise ConfigError(f"{key} in {where}: give bounds, max_gap or both")
    for name, inv in spec.invariance.items():
        if (inv.value is None) == (inv.noise is None):
            raise ConfigError(
                f"{SECTION}.invariance.{name} in {where}: give exactly one of value or noise",
                hint="value: set the column to it; noise: add N(0, noise x the column's std)",
            )
    if spec.search.max_columns not in (1, 2):
        raise ConfigError(f"{SECTION}.search.max_columns in {where}: must be 1 or 2")
    return spec


def _build(cls: Any, data: Any, key: str, where: str) -> Any:
    """``data`` as an instance of ``cls`` (a dataclass, dict, list, Enum, Optional or plain)."""
    origin = typing.get_origin(cls)
    if cls is Any:
        return data
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(cls) if a is not type(None)]
        return None if data is None else _build(args[0], data, key, where)
    if data is None or data == "???":
        raise ConfigError(f"{key} in {where}: a value is required")
    if is_dataclass(cls):
        if not isinstance(data, Mapping):
            raise ConfigError(f"{key} in {where}: expected a mapping, got '{data}'")
        hints = typing.get_type_hints(cls)
        known = {f.name: f for f in fields(cls)}
        unknown = [k for k in data if k not in known]
        if unknown:
            close = difflib.get_close_matches(str(unknown[0]), list(known), n=1)
            raise ConfigError(
                f"{key}.{unknown[0]} in {where}: unknown key",
                hint=(f"Did you mean '{close[0]}'? " if close else "")
                + f"Keys: {', '.join(known)}",
            )
        values = {}
        for name, f in known.items():
            if name in data:
                values[name] = _build(hints[name], data[name], f"{key}.{name}", where)
            elif f.default == "???" or (
                f.default is NO_DEFAULT and f.default_factory is NO_DEFAULT
            ):
                raise ConfigError(f"{key}.{name} in {where}: a value is required")
        return cls(**values)  # type: ignore[operator]
    if origin is dict:
        if not isinstance(data, Mapping):
            raise ConfigError(f"{key} in {where}: expected a mapping, got '{data}'")
        value_type = typing.get_args(cls)[1]
        return {str(k): _build(value_type, v, f"{key}.{k}", where) for k, v in data.items()}
    if origin is list:
        if not isinstance(data, list | tuple):
            raise ConfigError(f"{key} in {where}: expected a list, got '{data}'")
        item = typing.get_args(cls)[0]
        return [_build(item, v, f"{key}[{i}]", where) for i, v in enumerate(data)]
    if isinstance(cls, type) and issubclass(cls, Enum):
        try:
            return cls(data)
        except ValueError:
            options = ", ".join(str(m.value) for m in cls)
            raise ConfigError(f"{key} in {where}: '{data}' is not one of {options}") from None
    if cls is bool:
        if not isinstance(data, bool):
            raise ConfigError(f"{key} in {where}: expected true or false, got '{data}'")
        return data
    if cls in (int, float):
        ok = isinstance(data, int | float) and not isinstance(data, bool)
        if not ok or (cls is int and not float(data).is_integer()):
            raise ConfigError(f"{key} in {where}: expected a number ({cls.__name__}), got '{data}'")
        return cls(data)
    if cls is str:
        return str(data)
    return data


# --- running the checks -------------------------------------------------------------------


@dataclass
class Check:
    """One verdict: what was checked, the value observed, the bound, and whether it held."""

    kind: str  # slice, search, invariance, directional, cases, latency
    name: str
    subject: str  # the slice, feature or perturbation, in words
    measure: str  # what was measured (auc, gap_auc, violation_rate, p99_ms, ...)
    value: float | None
    op: str
    bound: float
    passed: bool

    def message(self) -> str:
        shown = "none" if self.value is None else f"{self.value:.6g}"
        return (
            f"{self.kind} '{self.name}' ({self.subject}): {self.measure} = {shown}, "
            f"required {self.op} {self.bound:g}"
        )


@dataclass
class Report:
    """Everything one run of the checks found."""

    bundle: dict[str, Any]
    data: dict[str, Any]
    task: str
    seed: int
    overall: dict[str, Any] = field(default_factory=dict)
    slices: dict[str, Any] = field(default_factory=dict)
    search: dict[str, Any] = field(default_factory=dict)
    invariance: dict[str, Any] = field(default_factory=dict)
    directional: dict[str, Any] = field(default_factory=dict)
    cases: dict[str, Any] = field(default_factory=dict)
    latency: dict[str, Any] = field(default_factory=dict)
    checks: list[Check] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def failures(self) -> list[Check]:
        return [c for c in self.checks if not c.passed]

    def to_json(self) -> dict[str, Any]:
        return _plain(
            {
                "bundle": self.bundle,
                "data": self.data,
                "task": self.task,
                "seed": self.seed,
                "passed": not self.failures,
                "checks_total": len(self.checks),
                "checks_failed": len(self.failures),
                "overall": self.overall,
                "slices": self.slices,
                "search": self.search,
                "invariance": self.invariance,
                "directional": self.directional,
                "cases": self.cases,
                "latency": self.latency,
                "checks": [{**c.__dict__, "message": c.message()} for c in self.checks],
                "notes": self.notes,
            }
        )


def run_checks(
    bundle: Bundle, frame: pd.DataFrame, spec: BehaviorConfig, *, base: Path, source: str
) -> Report:
    """Run every check of ``spec`` on ``frame`` (raw rows, with the target column when there
    are labels). ``base`` is the folder relative case-file paths start from."""
    import numpy as np

    target = str(bundle.output.target)
    rng = np.random.default_rng(spec.seed)
    total = len(frame)
    if spec.rows is not None and total > spec.rows:
        frame = frame.iloc[np.sort(rng.choice(total, size=spec.rows, replace=False))]
    frame = frame.reset_index(drop=True)
    report = Report(
        bundle={"name": bundle.card.get("name"), "sha256": bundle.sha},
        data={"source": source, "rows": len(frame), "total_rows": total},
        task=bundle.task,
        seed=spec.seed,
    )
    if not len(frame):
        raise DataError(f"{source} has no rows: nothing to check the model's behaviour on")
    runner = _Runner(bundle, frame, spec, report, target)
    runner.metric_checks()
    runner.invariance()
    runner.directional()
    runner.cases(base)
    runner.latency()
    return report


def columns_read(bundle: Bundle, spec: BehaviorConfig) -> set[str]:
    """The data columns ``run_checks`` reads: the bundle's input columns and the ones it
    ignores, the target, and every column a check names. The others need not be read."""
    names = {c.name for c in bundle.schema.columns} | set(bundle.schema.ignored)
    names.add(str(bundle.output.target))
    names.update(s.column for s in spec.slices.values())
    names.update(c.column for c in spec.invariance.values())
    names.update(c.column for c in spec.directional.values())
    names.update(spec.search.columns or ())
    return names


class _Runner:
    def __init__(
        self, bundle: Bundle, frame: pd.DataFrame, spec: BehaviorConfig, report: Report, target: str
    ) -> None:
        self.bundle, self.frame, self.spec, self.report = bundle, frame, spec, report
        self.target = target
        self.threads = bundle.policy.num_threads
        self.base = self.predict(frame)
        if not len(self.base):
            from pipespec.bundle.bundle import invalid_rows_error

            inputs = frame.drop(columns=[target], errors="ignore")
            checked = bundle.check(inputs)
            raise invalid_rows_error(checked, f"the data ({report.data['source']})")

    # predictions ---------------------------------------------------------------------------

    def predict(self, frame: pd.DataFrame) -> pd.DataFrame:
        """Predictions by index; rows the input schema refuses are left out."""
        inputs = frame.drop(columns=[self.target], errors="ignore")
        return self.bundle.predict(inputs, on_invalid="skip", threads=self.threads)

    def output_of(self, predicted: pd.DataFrame, output: str | None) -> pd.Series:
        name = output or "prediction"
        if name not in predicted.columns:
            raise ConfigError(
                f"output '{name}' is not a prediction column of this bundle",
                hint=f"Columns: {', '.join(predicted.columns)}",
            )
        return predicted[name]

    def perturbed(self, changes: list[tuple[str, Any]]) -> list[pd.DataFrame]:
        """``self.predict`` of the data with one column replaced, for each (column, new
        values) of ``changes``: what predicting each perturbed copy of the data whole gives,
        computed with less work. Checking and the transforms work value by value, and the
        model row by row, so a row whose value did not change keeps its prediction (and its
        refusal) from ``self.base``; only the rows that changed are scored, those of every
        perturbation in one batch (per set of column types: a batch is one frame)."""
        import numpy as np
        import pandas as pd

        frame = self.frame
        parts: list[tuple[int, pd.DataFrame]] = []  # (perturbation, its changed rows)
        for k, (column, values) in enumerate(changes):
            new = pd.Series(values, index=frame.index)
            old = frame[column]
            if new.dtype == old.dtype:
                gone, was = _missing_mask(new), _missing_mask(old)
                same = gone & was
                both = ~(gone | was)
                equal = new.to_numpy(dtype=object)[both] == old.to_numpy(dtype=object)[both]
                same[both] = np.asarray(equal, dtype=bool)
                changed = np.flatnonzero(~same)
            else:  # a column of another type: every row is checked again
                changed = np.arange(len(frame))
            rows = frame.iloc[changed].copy()
            rows[column] = new.iloc[changed]
            parts.append((k, rows))
        predicted: dict[int, pd.DataFrame] = {}
        batches: list[tuple[list[Any], list[tuple[int, pd.DataFrame]]]] = []
        for k, rows in parts:  # one batch per set of column types
            kinds = list(rows.dtypes)
            for batch_kinds, members in batches:
                if len(batch_kinds) == len(kinds) and all(
                    a == b for a, b in zip(batch_kinds, kinds, strict=True)
                ):
                    members.append((k, rows))
                    break
            else:
                batches.append((kinds, [(k, rows)]))
        for _, members in batches:
            sizes = [len(rows) for _, rows in members]
            batch = pd.concat([rows for _, rows in members], ignore_index=True)
            out = self.predict(batch) if len(batch) else self.base.iloc[:0]
            at = out.index.to_numpy()
            start = 0
            for (k, rows), size in zip(members, sizes, strict=True):
                mine = (at >= start) & (at < start + size)
                got = out[mine]
                got.index = rows.index[at[mine] - start]
                predicted[k] = got
                start += size
        results = []
        for k, rows in parts:
            kept = self.base.drop(index=rows.index, errors="ignore")
            results.append(pd.concat([kept, predicted[k]]).sort_index(kind="stable"))
        return results

    def _changes(self, new: pd.DataFrame, output: str | None) -> pd.Series:
        """New minus old prediction on the rows both predicted (``new``: the predictions of
        the perturbed data); multiclass without an output: the largest absolute change over
        the class probabilities."""
        rows = self.base.index.intersection(new.index)
        if self.bundle.task == "multiclass" and output is None:
            cols = class_columns(list(self.bundle.classes))
            diff = (new.loc[rows, cols] - self.base.loc[rows, cols]).abs()
            return diff.max(axis=1)
        return self.output_of(new, output).loc[rows] - self.output_of(self.base, output).loc[rows]

    # metrics -------------------------------------------------------------------------------

    def labels(self) -> np.ndarray | None:
        from pipespec.bundle.transforms import encode_target

        if self.target not in self.frame.columns:
            return None
        rows = self.base.index
        y = self.frame.loc[rows, self.target]
        keep = y.notna().to_numpy()
        codes = encode_target(self.bundle.transforms.target, y[keep])
        out = np_full(len(rows))
        out[keep] = codes
        return out

    def metric_checks(self) -> None:
        spec = self.spec
        y = self.labels()
        if y is None:
            if spec.slices:
                raise DataError(
                    f"the data has no target column '{self.target}': slices need labels",
                    hint="Give a file with the labels, or remove behavior.slices.",
                )
            self.report.notes.append(f"no target column '{self.target}': slices not checked")
            return
        scores = self.scores()
        known = ~_isnan(y)
        self.y, self.s = y[known], scores[known]
        self.rows = self.frame.loc[self.base.index[known]]
        self.report.overall = {"rows": int(known.sum()), **metrics(self.bundle, self.y, self.s)}
        for name, cfg in spec.slices.items():
            self.slice(name, cfg)
        if spec.search.enabled:
            self.search()

    def scores(self) -> np.ndarray:
        if self.bundle.task == "multiclass":
            cols = class_columns(list(self.bundle.classes))
            return self.base[cols].to_numpy(dtype=float)
        return self.base["prediction"].to_numpy(dtype=float)

    def slice(self, name: str, cfg: SliceConfig) -> None:
        column = self.column(cfg.column, f"{SECTION}.slices.{name}.column")
        values = self.rows[column]
        if cfg.bins is not None:
            out: dict[str, Any] = {}
            for label, mask, where in _bins(values, cfg.bins):
                out[label] = self.slice_result(f"{name}.{label}", f"{column} {where}", mask, cfg)
            self.report.slices[name] = out
            return
        if cfg.values is not None:
            mask = _isin(values, cfg.values)
            where = f"{column} in {list(cfg.values)}"
        else:
            mask = values.notna().to_numpy().copy()
            if cfg.min is not None:
                mask &= (values >= cfg.min).fillna(False).to_numpy()
            if cfg.max is not None:
                mask &= (values < cfg.max).fillna(False).to_numpy()
            where = f"{column} in [{_g(cfg.min)}, {_g(cfg.max)})"
        self.report.slices[name] = self.slice_result(name, where, mask, cfg)

    def slice_result(self, name: str, where: str, mask: Any, cfg: SliceConfig) -> dict[str, Any]:
        import numpy as np

        mask = np.asarray(mask, dtype=bool)
        n = int(mask.sum())
        result: dict[str, Any] = {"where": where, "rows": n}
        if n < cfg.min_rows:  # too few rows to say anything: that is a failure of its own
            self.report.checks.append(Check("slice", name, where, "rows", n, ">=", cfg.min_rows,
                                            False))  # fmt: skip
            return result
        values = metrics(self.bundle, self.y[mask], self.s[mask])
        result.update(values)
        for metric, expr in sorted(cfg.bounds.items()):
            op, bound = parse_bound(f"{SECTION}.slices.{name}.bounds.{metric}", expr)
            value = self.metric_value(values, metric, f"{SECTION}.slices.{name}.bounds")
            passed = value is not None and holds(value, op, bound)
            self.report.checks.append(Check("slice", name, where, metric, value, op, bound, passed))
        for metric, allowed in sorted(cfg.max_gap.items()):
            value = self.metric_value(values, metric, f"{SECTION}.slices.{name}.max_gap")
            overall = self.report.overall.get(metric)
            gap = None if value is None or overall is None else _gap(metric, overall, value)
            result[f"gap_{metric}"] = gap
            passed = gap is not None and gap <= allowed
            subject = f"{where}; overall {metric} {_g(overall)}, slice {_g(value)}"
            self.report.checks.append(
                Check("slice", name, subject, f"gap_{metric}", gap, "<=", allowed, passed)
            )
        return result

    def metric_value(self, values: dict[str, Any], metric: str, key: str) -> float | None:
        if metric not in METRICS[self.bundle.task]:
            raise ConfigError(
                f"{key}.{metric}: no metric '{metric}' for a {self.bundle.task} model",
                hint=f"Metrics: {', '.join(METRICS[self.bundle.task])}",
            )
        return values.get(metric)

    def column(self, name: str, key: str) -> str:
        if name not in self.frame.columns:
            close = difflib.get_close_matches(name, [str(c) for c in self.frame.columns], n=1)
            raise ConfigError(
                f"{key}: no column '{name}' in the data",
                hint=(f"Did you mean '{close[0]}'? " if close else "")
                + f"Columns: {', '.join(map(str, self.frame.columns))}",
            )
        return name

    def search(self) -> None:
        """The weakest segments: every value (categorical) or quantile bin (numeric) of one
        column, and of pairs of columns, with at least ``min_rows`` rows."""
        import itertools

        import numpy as np

        cfg = self.spec.search
        metric = cfg.metric or METRICS[self.bundle.task][0]
        overall = self.metric_value(self.report.overall, metric, f"{SECTION}.search.metric")
        if overall is None:
            self.report.notes.append(f"search: overall {metric} is undefined")
            return
        names = cfg.columns or [c.name for c in self.bundle.schema.columns if c.type != "datetime"]
        groups: dict[str, list[tuple[str, Any]]] = {}
        for name in names:
            self.column(name, f"{SECTION}.search.columns")
            groups[name] = self.groups(name, cfg.bins, cfg.min_rows)
        found: list[dict[str, Any]] = []
        codes = {name: _codes(found_groups, len(self.y)) for name, found_groups in groups.items()}

        def segments(combo: tuple[str, ...]) -> None:
            # the rows of every combination counted at once (a column's groups do not
            # overlap): only the combinations with enough rows are masked and scored
            sizes = [len(groups[c]) for c in combo]
            counts = None
            if all(codes[c] is not None for c in combo):
                flat = np.zeros(len(self.y), dtype=np.int64)
                inside = np.ones(len(self.y), dtype=bool)
                for c, size in zip(combo, sizes, strict=True):
                    code = typing.cast("np.ndarray", codes[c])
                    flat = flat * size + np.maximum(code, 0)
                    inside &= code >= 0
                counts = np.bincount(flat[inside], minlength=math.prod(sizes))
            for k, chosen in enumerate(itertools.product(*(groups[c] for c in combo))):
                if counts is not None and counts[k] < cfg.min_rows:
                    continue
                mask = chosen[0][1]
                for _, other in chosen[1:]:
                    mask = mask & other
                n = int(mask.sum())
                if n < cfg.min_rows:
                    continue
                if metric == "auc" and _minority(self.y[mask]) < MIN_CLASS_ROWS:
                    continue  # an AUC over a handful of positives says nothing
                value = metrics(self.bundle, self.y[mask], self.s[mask], only=metric).get(metric)
                if value is None:
                    continue
                where = " and ".join(w for w, _ in chosen)
                found.append({"where": where, "columns": list(combo), "rows": n, metric: value,
                              "gap": _gap(metric, overall, value)})  # fmt: skip

        for name in names:
            segments((name,))
        if cfg.max_columns == 2:  # pairs among the columns with the weakest single segments
            worst: dict[str, float] = {}
            for seg in found:
                column = seg["columns"][0]
                worst[column] = max(worst.get(column, seg["gap"]), seg["gap"])
            weak = sorted((c for c in worst if worst[c] > 0), key=lambda c: (-worst[c], c))
            for combo in itertools.combinations(sorted(weak[:PAIR_COLUMNS], key=names.index), 2):
                segments(combo)
        found.sort(key=lambda s: (-s["gap"], s["where"]))
        top = [_rounded(s) for s in found[: cfg.top]]
        self.report.search = {
            "metric": metric,
            "overall": overall,
            "segments_tried": len(found),
            "weakest": top,
            "worst_gap": round(top[0]["gap"], 6) if top else None,
        }
        if cfg.max_gap is not None:
            for i, seg in enumerate(top):
                self.report.checks.append(
                    Check("search", f"weakest[{i}]", f"{seg['where']}, {seg['rows']} rows",
                          f"gap_{metric}", seg["gap"], "<=", cfg.max_gap,
                          seg["gap"] <= cfg.max_gap)
                )  # fmt: skip

    def groups(self, name: str, bins: int, min_rows: int) -> list[tuple[str, Any]]:
        """(description, row mask) of each value or bin of a column, on the labelled rows."""
        values = self.rows[name]
        numeric = values.dtype.kind in "if" and values.nunique() > bins
        if numeric:
            return [(f"{name} {where}", mask) for _, mask, where in _bins(values, bins)]
        counts = values.astype("object").value_counts(dropna=False)
        out = []
        for value, count in counts.items():
            if count < min_rows:
                continue
            if _missing(value):
                out.append((f"{name} is missing", values.isna().to_numpy()))
            else:
                out.append((f"{name} = {value}", (values == value).fillna(False).to_numpy()))
        return out

    # perturbations -------------------------------------------------------------------------

    def rng(self, kind: str, name: str) -> np.random.Generator:
        import numpy as np

        return np.random.default_rng([self.spec.seed, zlib.crc32(f"{kind}:{name}".encode())])

    def invariance(self) -> None:
        # every perturbation is made first, then all are scored together (``perturbed``)
        made = [self.one_invariance(name, cfg) for name, cfg in self.spec.invariance.items()]
        for (name, cfg, subject, _), new in zip(made, self.perturbed([m[3] for m in made]),
                                             strict=True):  # fmt: skip
            change = self._changes(new, None).abs()
            self.report.invariance[name] = self.violations(
                "invariance", name, subject, change > cfg.tolerance, change, cfg.max_violation_rate
            )

    def one_invariance(
        self, name: str, cfg: InvarianceConfig
    ) -> tuple[str, InvarianceConfig, str, tuple[str, Any]]:
        """The check's subject and its perturbation: (column, the column's new values)."""
        import numpy as np

        column = self.column(cfg.column, f"{SECTION}.invariance.{name}.column")
        if cfg.noise is not None:
            values = self.numeric(column, f"{SECTION}.invariance.{name}.column")
            scale = float(np.nanstd(values)) * cfg.noise
            noise = self.rng("invariance", name).normal(0.0, scale, len(values))
            changed = _like(values + noise, self.frame[column])
            subject = f"{column} + N(0, {cfg.noise:g} x std)"
        else:
            changed = _fill(self.frame[column], cfg.value)
            subject = f"{column} set to {cfg.value!r}"
        return name, cfg, subject, (column, changed)

    def numeric(self, column: str, key: str) -> Any:
        import pandas as pd

        values = pd.to_numeric(self.frame[column], errors="coerce")
        if values.notna().sum() == 0:
            raise ConfigError(f"{key}: column '{column}' is not numeric, it cannot be shifted")
        return values.to_numpy(dtype=float)

    def directional(self) -> None:
        checks = [(n, c, False) for n, c in self.spec.directional.items()]
        checks += [(n, c, True) for n, c in self.derived()]
        shifts = []
        for name, cfg, _ in checks:
            key = f"{SECTION}.directional.{name}"
            column = self.column(cfg.column, f"{key}.column")
            values = self.numeric(column, f"{key}.column")
            shifts.append((column, _like(values + cfg.shift, self.frame[column])))
        scored = self.perturbed(shifts)  # every shift scored together
        for (name, cfg, derived), (column, _), new in zip(checks, shifts, scored, strict=True):
            change = self._changes(new, cfg.output)
            present = self.frame.loc[change.index, column].notna()
            change = change[present]
            way = cfg.direction.value
            wrong = change < -cfg.tolerance if way == "up" else change > cfg.tolerance
            subject = (
                f"{column} {cfg.shift:+g}: {self._output_named(cfg.output)} must not go "
                f"{'down' if way == 'up' else 'up'}" + (" (monotone constraint)" if derived else "")
            )
            result = self.violations(
                "directional", name, subject, wrong, change.abs(), cfg.max_violation_rate
            )
            result.update({"derived": derived, "shift": cfg.shift, "direction": way})
            self.report.directional[name] = result

    def _output_named(self, output: str | None) -> str:
        """The output a directional check watches, in words: a multiclass model's is a
        class's probability, named with its class."""
        if self.bundle.task != "multiclass":
            return output or "prediction"
        names = dict(zip(class_columns(list(self.bundle.classes)), self.bundle.classes,
                         strict=True))  # fmt: skip
        if output in names:
            return f"the probability of class {names[output]!r} ({output})"
        return f"{output}" if output else "no class's probability (the largest change)"

    def derived(self) -> list[tuple[str, DirectionalConfig]]:
        """A directional check for every feature with a monotone constraint in the model's
        params (``model.params.monotone_constraints``, a list in feature order or a mapping)."""
        import numpy as np

        cfg = self.spec.monotone
        if not cfg.enabled:
            return []
        constraints = monotone_constraints(self.bundle)
        raw = {c.name: c for c in self.bundle.schema.columns}
        out = []
        for feature, sign in constraints.items():
            column = raw.get(feature)
            if column is None or column.type != "numeric" or feature not in self.frame.columns:
                self.report.notes.append(
                    f"monotone constraint on '{feature}' not checked: it is not a raw numeric "
                    "input column"
                )
                continue
            std = float(np.nanstd(self.numeric(feature, "monotone")))
            shift = cfg.shift * std
            if column.dtype == "int":
                shift = float(max(1, round(shift)))
            out.append(
                (
                    f"monotone_{feature}",
                    DirectionalConfig(
                        column=feature,
                        shift=round(shift, 6),
                        direction=_direction(sign),
                        tolerance=cfg.tolerance,
                        max_violation_rate=cfg.max_violation_rate,
                    ),
                )
            )
        return out

    def violations(
        self, kind: str, name: str, subject: str, wrong: Any, size: Any, allowed: float
    ) -> dict[str, Any]:
        n = len(wrong)
        bad = int(wrong.sum())
        rate = bad / n if n else None
        result = {
            "subject": subject,
            "rows": n,
            "refused_rows": int(len(self.frame) - n),
            "violations": bad,
            "violation_rate": rate,
            "max_change": float(size.max()) if n else None,
        }
        passed = rate is not None and rate <= allowed
        self.report.checks.append(
            Check(kind, name, subject, "violation_rate", rate, "<=", allowed, passed)
        )
        return result

    # cases ---------------------------------------------------------------------------------

    def cases(self, base: Path) -> None:
        import pandas as pd

        cfg = self.spec.cases
        if not cfg.path:
            return
        path = Path(cfg.path)
        path = path if path.is_absolute() else base / path
        try:
            table = pd.read_csv(path)
        except FileNotFoundError:
            raise ConfigError(f"{SECTION}.cases.path: no file {path}") from None
        except (ValueError, OSError) as exc:
            raise DataError(f"{SECTION}.cases.path: cannot read {path}: {exc}") from None
        expect = [c for c in CASE_COLUMNS[1:] if c in table.columns]
        if not expect:
            raise DataError(
                f"{path}: no expected_label, expected_min or expected_max column",
                hint="Each row is a case: input fields, then what the model must answer.",
            )
        names = (
            table["case"].astype(str) if "case" in table else pd.Series(range(1, len(table) + 1))
        )
        inputs = table.drop(columns=[c for c in CASE_COLUMNS if c in table.columns])
        checked = self.bundle.check(inputs)
        refused: dict[int, str] = {}
        for problem in checked.iter_problems(kind="refused"):
            refused.setdefault(problem.row, problem.message())
        predicted = self.bundle.predict(inputs, on_invalid="skip", threads=self.threads)
        failures = []
        for i in range(len(table)):
            case = str(names.iloc[i])
            if i in refused or i not in predicted.index:
                failures.append({"case": case, "reason": f"refused: {refused.get(i, '?')}"})
                continue
            row = predicted.loc[i]
            reason = _case_failure(table.iloc[i], row)
            if reason:
                failures.append({"case": case, "reason": reason})
        rate = len(failures) / len(table) if len(table) else 0.0
        self.report.cases = {
            "path": str(cfg.path),
            "total": len(table),
            "failed": len(failures),
            "failure_rate": rate,
            "failures": failures,
        }
        shown = "; ".join(f"case {f['case']}: {f['reason']}" for f in failures[:3])
        self.report.checks.append(
            Check("cases", Path(cfg.path).name, f"{len(table)} cases" + (f"; {shown}" if shown
                  else ""), "failure_rate", rate, "<=", cfg.max_failure_rate,
                  rate <= cfg.max_failure_rate)
        )  # fmt: skip

    # latency -------------------------------------------------------------------------------

    def latency(self) -> None:
        import numpy as np

        cfg = self.spec.latency
        if not cfg.enabled:
            return
        inputs = self.frame.drop(columns=[self.target], errors="ignore")
        valid = inputs.loc[self.base.index] if len(self.base) else inputs
        rng = self.rng("latency", "rows")
        single = valid.iloc[rng.integers(0, len(valid), cfg.records)]
        batch = valid.iloc[rng.integers(0, len(valid), cfg.batch_rows)]

        def timed(frames: list[pd.DataFrame]) -> list[float]:
            for frame in frames[:3]:  # warm-up: caches, LightGBM's first call
                self.bundle.predict(frame, on_invalid="skip", threads=self.threads)
            out = []
            for frame in frames:
                start = time.perf_counter()
                self.bundle.predict(frame, on_invalid="skip", threads=self.threads)
                out.append((time.perf_counter() - start) * 1000)
            return out

        rows = [single.iloc[[i]] for i in range(len(single))]
        for label, frames, n in (
            ("single", rows, 1),
            ("batch", [batch] * cfg.batches, cfg.batch_rows),
        ):
            times = timed(frames)
            p50, p99 = (float(np.percentile(times, q)) for q in (50, 99))
            self.report.latency[label] = {
                "rows": n,
                "calls": len(times),
                "p50_ms": round(p50, 3),
                "p99_ms": round(p99, 3),
            }
            for q, value in (("p50", p50), ("p99", p99)):
                bound = getattr(cfg, f"{label}_{q}_ms")
                if bound is None:
                    continue
                what = "one record" if label == "single" else f"a batch of {n:,} rows"
                self.report.checks.append(
                    Check("latency", f"{label}_{q}", f"Bundle.predict, {what}", f"{q}_ms",
                          round(value, 3), "<=", bound, value <= bound)
                )  # fmt: skip


# --- metrics and helpers ------------------------------------------------------------------


def metrics(
    bundle: Bundle, y: np.ndarray, s: np.ndarray, *, only: str | None = None
) -> dict[str, float | None]:
    """The task's metrics on labels ``y`` and scores ``s``; None where undefined."""
    task = bundle.task
    wanted = [only] if only else list(METRICS[task])
    if not len(y):
        return dict.fromkeys(wanted)
    values = task_metrics(task, y, s, wanted, threshold=bundle.threshold)
    return {
        name: round(float(v), 6) if v is not None and math.isfinite(v) else None
        for name, v in values.items()
    }


def _codes(groups: list[tuple[str, Any]], rows: int) -> np.ndarray | None:
    """Each row's group number among ``groups`` (row masks), -1 for a row in none; None
    when two groups share a row (then no count can stand for the combinations' masks)."""
    import numpy as np

    out = np.full(rows, -1, dtype=np.int64)
    total = 0
    for i, (_, mask) in enumerate(groups):
        mask = np.asarray(mask, dtype=bool)
        out[mask] = i
        total += int(mask.sum())
    return out if total == int((out >= 0).sum()) else None


def _minority(y: np.ndarray) -> int:
    positives = int((y == 1).sum())
    return min(positives, len(y) - positives)


def _gap(metric: str, overall: float, value: float) -> float:
    """How much worse the slice is than all rows (negative: better)."""
    if metric in NEUTRAL:
        return round(abs(value - overall), 6)
    return round(value - overall if lower_is_better(metric) else overall - value, 6)


def monotone_constraints(bundle: Bundle) -> dict[str, int]:
    """``{feature: +1 | -1}`` from the model params the bundle was trained with."""
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


def _direction(sign: int) -> Any:
    from pipespec.core.config import Direction

    return Direction.up if sign > 0 else Direction.down


def _bins(values: pd.Series, bins: int) -> list[tuple[str, Any, str]]:
    """(label, mask, description) of each quantile bin of a numeric column."""
    import numpy as np
    import pandas as pd

    numbers = pd.to_numeric(values, errors="coerce")
    edges = np.unique(np.nanquantile(numbers.to_numpy(dtype=float), np.linspace(0, 1, bins + 1)))
    out = []
    for i in range(len(edges) - 1):
        low, high = edges[i], edges[i + 1]
        last = i == len(edges) - 2
        mask = (numbers >= low) & ((numbers <= high) if last else (numbers < high))
        where = f"in [{_g(low)}, {_g(high)}{']' if last else ')'}"
        out.append((f"q{i + 1}", mask.fillna(False).to_numpy(), where))
    return out


def _isin(values: pd.Series, wanted: list[Any]) -> Any:
    texts = {str(v) for v in wanted}
    return values.map(lambda v: not _missing(v) and (v in wanted or str(v) in texts)).to_numpy(
        dtype=bool
    )


def _missing_mask(values: pd.Series) -> np.ndarray:
    """Where a column's values are missing (None, NaN, NA)."""
    return values.isna().to_numpy(dtype=bool)


def _missing(value: Any) -> bool:
    import pandas as pd

    try:
        return bool(pd.isna(value))
    except (TypeError, ValueError):
        return False


def _isnan(values: np.ndarray) -> np.ndarray:
    import numpy as np

    return np.isnan(values.astype(float))


def np_full(n: int) -> np.ndarray:
    import numpy as np

    return np.full(n, np.nan)


def _like(values: Any, original: pd.Series) -> Any:
    """Perturbed numbers in the column's own kind: integers stay integers (rounded)."""
    import numpy as np
    import pandas as pd

    if original.dtype.kind in "iu" or str(original.dtype) in ("Int64", "Int32", "Int16", "Int8"):
        rounded = np.round(values)
        return pd.array([None if np.isnan(v) else int(v) for v in rounded], dtype="Int64")
    return values


def _fill(original: pd.Series, value: Any) -> Any:
    import pandas as pd

    return pd.Series([value] * len(original), index=original.index, dtype=original.dtype)


def _case_failure(case: pd.Series, row: pd.Series) -> str | None:
    if "expected_label" in case.index and not _missing(case["expected_label"]):
        expected, got = case["expected_label"], row.get("label")
        if str(got) != str(expected) and not _same_number(got, expected):
            return f"label {got!r}, expected {expected!r}"
    value = float(row["prediction"]) if "prediction" in row.index else None
    for key, op in (("expected_min", ">="), ("expected_max", "<=")):
        if key in case.index and not _missing(case[key]):
            bound = float(case[key])
            if value is None or not holds(value, op, bound):
                return f"prediction {_g(value)}, expected {op} {bound:g}"
    return None


def _same_number(a: Any, b: Any) -> bool:
    try:
        return float(a) == float(b)
    except (TypeError, ValueError):
        return False


def _g(value: Any) -> str:
    return number(value)


def _rounded(segment: dict[str, Any]) -> dict[str, Any]:
    return {k: round(v, 6) if isinstance(v, float) else v for k, v in segment.items()}


def _plain(value: Any) -> Any:
    """JSON-able: numpy scalars to Python, NaN to None."""
    import numpy as np

    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float):
        return None if not math.isfinite(value) else round(value, 6)
    return value


# --- what DVC tracks, and how people read it ----------------------------------------------


def stable(report: dict[str, Any]) -> dict[str, Any]:
    """The report without the latency timings, which differ from run to run: what the stage
    writes to its DVC outputs, so ``dvc repro -f`` leaves ``dvc.lock`` unchanged. The latency
    verdicts stay (``checks``); the timings are printed."""
    out = dict(report)
    out["latency"] = {
        k: {"rows": v["rows"], "calls": v["calls"]} for k, v in out["latency"].items()
    }
    out["checks"] = [
        {**c, "value": None, "message": c["message"].split(": ", 1)[0] + ": within the budget"}
        if c["kind"] == "latency" and c["passed"]
        else c
        for c in out["checks"]
    ]
    return out


def summary(report: dict[str, Any]) -> dict[str, Any]:
    """``metrics/behavior.json``: the numbers ``dvc metrics diff`` and the gate follow, under
    the key ``behavior`` (gate keys read ``behavior.slices.NAME.auc``)."""
    failed_latency = sum(1 for c in report["checks"] if c["kind"] == "latency" and not c["passed"])

    def numbers(tree: Any) -> Any:
        if isinstance(tree, dict):
            kept = {k: numbers(v) for k, v in tree.items()}
            return {k: v for k, v in kept.items() if v is not None and v != {}}
        if isinstance(tree, bool):
            return int(tree)
        return tree if isinstance(tree, int | float) else None

    body = {
        "passed": int(report["passed"]),
        "checks": report["checks_total"],
        "failed": report["checks_failed"],
        "overall": numbers(report["overall"]),
        "slices": numbers(report["slices"]),
        "search": numbers({k: v for k, v in report["search"].items() if k != "weakest"}),
        "invariance": numbers(report["invariance"]),
        "directional": numbers(report["directional"]),
        "cases": numbers({k: v for k, v in report["cases"].items() if k != "failures"}),
        "latency": {"failed": failed_latency} if report["latency"] else {},
    }
    return {SECTION: {k: v for k, v in body.items() if v != {}}}


def failure_error(report: dict[str, Any], where: str | None = None) -> BehaviorError:
    """The error for a report with failed checks: each names the check, the slice or feature,
    the value observed and the bound."""
    failed = [c["message"] for c in report["checks"] if not c["passed"]]
    return BehaviorError(
        f"{len(failed)} behaviour check(s) failed:\n  " + "\n  ".join(failed),
        hint=f"Details in {where}." if where else None,
    )


def table(report: dict[str, Any]) -> Any:
    """A rich table of every check, failures first."""
    from rich.console import Group
    from rich.table import Table
    from rich.text import Text

    t = Table(
        title=f"behaviour of {report['bundle']['name']} on {report['data']['rows']:,} rows "
        f"of {report['data']['source']}",
        title_justify="left",
    )
    for name, justify in (("check", "left"), ("subject", "left"), ("measured", "right"),
                          ("bound", "left"), ("", "left")):  # fmt: skip
        t.add_column(name, justify=justify, overflow="fold")  # type: ignore[arg-type]
    for c in sorted(report["checks"], key=lambda c: c["passed"]):
        value = "-" if c["value"] is None else f"{c['value']:.4g}"
        mark = Text("ok", "green") if c["passed"] else Text("FAIL", "bold red")
        t.add_row(f"{c['kind']} {c['name']}", c["subject"], f"{c['measure']} {value}",
                  f"{c['op']} {c['bound']:g}", mark)  # fmt: skip
    lines: list[Any] = [t]
    search = report.get("search") or {}
    if search.get("weakest"):
        s = Table(
            title=f"weakest segments by {search['metric']} (overall {search['overall']:.4g})",
            title_justify="left",
        )
        for name in ("segment", "rows", search["metric"], "gap"):
            s.add_column(name, justify="left" if name == "segment" else "right")
        for seg in search["weakest"]:
            s.add_row(seg["where"], f"{seg['rows']:,}", f"{seg[search['metric']]:.4g}",
                      f"{seg['gap']:+.4g}")  # fmt: skip
        lines.append(s)
    for label, lat in (report.get("latency") or {}).items():
        if "p50_ms" in lat:
            lines.append(
                Text(f"latency {label} ({lat['rows']:,} row(s), {lat['calls']} calls): "
                     f"p50 {lat['p50_ms']:.3f} ms, p99 {lat['p99_ms']:.3f} ms")
            )  # fmt: skip
    lines += [Text(f"note: {n}", "yellow") for n in report.get("notes", [])]
    verdict = "all checks passed" if report["passed"] else f"{report['checks_failed']} FAILED"
    lines.append(Text(f"{report['checks_total']} checks: {verdict}",
                      "green" if report["passed"] else "bold red"))  # fmt: skip
    return Group(*lines)


def render_html(report: dict[str, Any]) -> str:
    """One HTML page, no scripts or external files: the verdict, every check, the slices and
    the weakest segments."""
    e = html.escape
    rows = "".join(
        f"<tr class='{'' if c['passed'] else 'bad'}'><td>{e(c['kind'])}</td><td>{e(c['name'])}"
        f"</td><td>{e(c['subject'])}</td><td>{e(c['measure'])}</td>"
        f"<td>{_g(c['value'])}</td>"
        f"<td>{e(c['op'])} {c['bound']:g}</td><td>{'ok' if c['passed'] else 'FAIL'}</td></tr>"
        for c in sorted(report["checks"], key=lambda c: c["passed"])
    )
    search = report.get("search") or {}
    segments = "".join(
        f"<tr><td>{e(s['where'])}</td><td>{s['rows']:,}</td><td>{s[search['metric']]:.4g}</td>"
        f"<td>{s['gap']:+.4g}</td></tr>"
        for s in search.get("weakest", [])
    )
    overall = ", ".join(f"{e(k)} {_g(v)}" for k, v in report["overall"].items())
    notes = "".join(f"<li>{e(n)}</li>" for n in report.get("notes", []))
    passed = report["passed"]
    color = "#15803d" if passed else "#b91c1c"
    verdict = "PASSED" if passed else f"{report['checks_failed']} CHECK(S) FAILED"
    metric = e(str(search.get("metric", "")))
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<title>pipespec behaviour report: {e(str(report["bundle"]["name"]))}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2rem; color: #222; }}
table {{ border-collapse: collapse; margin: 1rem 0; }}
td, th {{ border-bottom: 1px solid #ddd; padding: .3rem .6rem; text-align: left; }}
tr.bad td {{ background: #fde8e8; }}
.status {{ font-size: 1.4rem; font-weight: bold; color: {color}; }}
small {{ color: #666; }}
</style></head><body>
<h1>Behaviour report</h1>
<p class="status">{verdict}</p>
<p>bundle <b>{e(str(report["bundle"]["name"]))}</b>
<small>({e(report["bundle"]["sha256"][:12])})</small><br>
data <b>{e(str(report["data"]["source"]))}</b>: {report["data"]["rows"]:,} rows checked
(of {report["data"]["total_rows"]:,}), seed {report["seed"]}<br>
all rows: {overall}</p>
<h2>Checks</h2>
<table><tr><th>check</th><th>name</th><th>subject</th><th>measure</th><th>value</th>
<th>bound</th><th></th></tr>{rows}</table>
<h2>Weakest segments</h2>
<table><tr><th>segment</th><th>rows</th><th>{metric}</th><th>gap</th></tr>{segments}</table>
<ul>{notes}</ul>
</body></html>
"""


def load_checks(path: Path) -> dict[str, Any]:
    """The ``behavior`` mapping of a YAML or JSON file: a checks file, or ``params.yaml``."""
    import yaml

    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"checks file not found: {path}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path} is not valid YAML or JSON: {exc}") from None
    if isinstance(data, Mapping) and SECTION in data:
        data = data[SECTION]
    if not isinstance(data, Mapping):
        raise ConfigError(f"{path}: expected a '{SECTION}' mapping of checks")
    return dict(data)


def read_data(bundle: Bundle, path: Path) -> pd.DataFrame:
    """A file of raw rows (the bundle's inputs and the target), read as the training config
    read its files (the bundle's reading options; any extension)."""
    from pipespec.bundle.reader import read_rows

    if not path.exists():
        raise DataError(f"data file not found: {path}")
    return read_rows(path, bundle.reading, where=str(path))
