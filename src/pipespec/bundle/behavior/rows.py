"""What every check kind works on: the bundle, the raw rows, their predictions through
``Bundle.predict`` (rows the input schema refuses left out), the labelled rows and their
scores, and the metrics of a set of rows."""

from __future__ import annotations

import difflib
import math
import zlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pipespec.bundle.behavior.report import Check, Report
from pipespec.bundle.behavior.spec import SECTION
from pipespec.core.config import BehaviorConfig
from pipespec.core.documents import class_columns
from pipespec.core.errors import ConfigError
from pipespec.core.model_metrics import BEHAVIOR, gap_of, task_metrics
from pipespec.core.numbers import number

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

    from pipespec.bundle.bundle import Bundle

# Metrics by task (the first is the search's default) and their directions:
# core/model_metrics, shared with evaluation and `pipespec diff`.
METRICS = BEHAVIOR


@dataclass
class Labelled:
    """The rows with a label that the bundle predicted: labels ``y`` (class codes for a
    classifier), scores ``s`` (``model_metrics``' input) and the raw rows themselves."""

    y: np.ndarray
    s: np.ndarray
    rows: pd.DataFrame


class Rows:
    """The bundle and the rows the checks run on, with their predictions (``base``)."""

    def __init__(
        self, bundle: Bundle, frame: pd.DataFrame, spec: BehaviorConfig, report: Report
    ) -> None:
        self.bundle, self.frame, self.spec, self.report = bundle, frame, spec, report
        self.target = str(bundle.output.target)
        self.threads = bundle.policy.num_threads
        self.base = self.predict(frame)
        if not len(self.base):
            from pipespec.bundle.bundle import invalid_rows_error

            checked = bundle.check(frame.drop(columns=[self.target], errors="ignore"))
            raise invalid_rows_error(checked, f"the data ({report.data['source']})")

    def add(self, check: Check) -> None:
        self.report.checks.append(check)

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

    def column(self, name: str, key: str) -> str:
        """``name``, a column of the data; a ConfigError naming ``key`` otherwise."""
        if name not in self.frame.columns:
            close = difflib.get_close_matches(name, [str(c) for c in self.frame.columns], n=1)
            raise ConfigError(
                f"{key}: no column '{name}' in the data",
                hint=(f"Did you mean '{close[0]}'? " if close else "")
                + f"Columns: {', '.join(map(str, self.frame.columns))}",
            )
        return name

    def numeric(self, column: str, key: str) -> Any:
        """The column's values as floats (missing: NaN)."""
        import pandas as pd

        values = pd.to_numeric(self.frame[column], errors="coerce")
        if values.notna().sum() == 0:
            raise ConfigError(f"{key}: column '{column}' is not numeric, it cannot be shifted")
        return values.to_numpy(dtype=float)

    def rng(self, kind: str, name: str) -> np.random.Generator:
        """A generator seeded by the checks' seed and the check: one check's draws do not
        depend on which other checks there are."""
        import numpy as np

        return np.random.default_rng([self.spec.seed, zlib.crc32(f"{kind}:{name}".encode())])

    def labelled(self) -> Labelled | None:
        """The predicted rows that have a label; None when the data has no target column."""
        import numpy as np

        from pipespec.bundle.transforms import encode_target

        if self.target not in self.frame.columns:
            return None
        index = self.base.index
        y = self.frame.loc[index, self.target]
        keep = y.notna().to_numpy()
        codes = np.full(len(index), np.nan)
        codes[keep] = encode_target(self.bundle.transforms.target, y[keep])
        if self.bundle.task == "multiclass":
            scores = self.base[class_columns(list(self.bundle.classes))].to_numpy(dtype=float)
        else:
            scores = self.base["prediction"].to_numpy(dtype=float)
        known = ~np.isnan(codes)
        return Labelled(codes[known], scores[known], self.frame.loc[index[known]])

    def metric_value(self, values: dict[str, Any], metric: str, key: str) -> float | None:
        """``values[metric]``; a ConfigError naming ``key`` for a metric the task lacks."""
        if metric not in METRICS[self.bundle.task]:
            raise ConfigError(
                f"{key}.{metric}: no metric '{metric}' for a {self.bundle.task} model",
                hint=f"Metrics: {', '.join(METRICS[self.bundle.task])}",
            )
        return values.get(metric)


def metrics(
    bundle: Bundle, y: np.ndarray, s: np.ndarray, *, only: str | None = None
) -> dict[str, float | None]:
    """The task's metrics on labels ``y`` and scores ``s``; None where undefined."""
    task = bundle.task
    wanted = [only] if only else list(METRICS[task])
    if not len(y):
        return dict.fromkeys(wanted)
    values = task_metrics(task, y, s, wanted, threshold=bundle.threshold)
    return {name: rounded(v) for name, v in values.items()}


def rounded(value: float | None) -> float | None:
    """A metric as the report holds it: 6 decimals; None where it is undefined."""
    return round(float(value), 6) if value is not None and math.isfinite(value) else None


def gap(metric: str, overall: float, value: float) -> float:
    """How much worse a set of rows is than all rows (negative: better)."""
    return round(gap_of(metric, overall, value), 6)


def quantile_bins(values: pd.Series, bins: int) -> list[tuple[str, Any, str]]:
    """(label, row mask, description) of each quantile bin of a numeric column."""
    import numpy as np
    import pandas as pd

    numbers = pd.to_numeric(values, errors="coerce").to_numpy(dtype=float)
    edges = np.unique(np.nanquantile(numbers, np.linspace(0, 1, bins + 1)))
    out = []
    for i in range(len(edges) - 1):
        low, high = edges[i], edges[i + 1]
        last = i == len(edges) - 2
        # in numpy: a missing value (NaN) is in no bin, as pandas' NA filled with False
        mask = (numbers >= low) & ((numbers <= high) if last else (numbers < high))
        where = f"in [{number(low)}, {number(high)}{']' if last else ')'}"
        out.append((f"q{i + 1}", mask, where))
    return out


def missing(value: Any) -> bool:
    """Whether one value is missing (None, NaN, NA)."""
    import pandas as pd

    try:
        return bool(pd.isna(value))
    except (TypeError, ValueError):
        return False


def key(*parts: str) -> str:
    """A config key under the ``behavior`` section: ``behavior.slices.NAME``."""
    return ".".join((SECTION, *parts))
