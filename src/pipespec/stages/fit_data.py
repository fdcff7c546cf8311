"""Where the featurize fit's statistics come from: the training table as fitting sees it.

``Columns`` is what ``pipespec.stages.fitter`` asks of the table (the current columns after
the steps added so far, their first rows, counts, quantiles, the target's labels); two
backends answer it with the same numbers, so the fitted document does not depend on the
backend: ``InMemory`` over a pandas table, ``Partitioned`` over a Dask DataFrame, computing
on the cluster partition by partition. Each applies a fitted step with the one interpreter,
``pipespec.bundle.transforms``, so that later steps are fitted on what serving will see.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pipespec.bundle.columns import as_array, floats, text_keys, to_objects
from pipespec.bundle.transforms import run as run_steps
from pipespec.core.documents import CustomStep, Step
from pipespec.core.errors import ConfigError
from pipespec.stages.rows import INFER_ROWS

if TYPE_CHECKING:
    import pandas as pd


class Columns:
    """The training table as fitting sees it: the current columns after the steps added so
    far, and the statistics fitting needs of them. ``work`` maps the current column names to
    their values (in memory) or to None (partitioned); fitting only reads its keys."""

    raw: list[str]
    work: dict[str, Any]
    custom: dict[str, Any]  # the classes of features.custom, by import path

    def keep(self, columns: list[str]) -> None:
        raise NotImplementedError

    def add(self, step: Step) -> None:
        raise NotImplementedError

    def drop(self, column: str) -> None:
        raise NotImplementedError

    def head(self, column: str) -> pd.Series:
        """Values to infer the column's type from (its first rows at least)."""
        raise NotImplementedError

    def all_distinct(self, column: str) -> bool:
        """More than 50 rows, none missing, no value twice: an identifier."""
        raise NotImplementedError

    def quantiles(self, column: str, qs: list[float]) -> list[float]:
        raise NotImplementedError

    def counts(self, column: str, *, text: bool) -> pd.Series:
        """Counts of the non-missing values, most frequent first (``text``: as category keys)."""
        raise NotImplementedError

    def prefetch_counts(self, columns: list[str]) -> None:
        """Counts of several columns will be asked for: compute them together if that helps."""

    def frame(self, what: str) -> pd.DataFrame:
        raise NotImplementedError

    def labels(self, target: str, task: str) -> pd.Series:
        """The target's training values (the distinct ones are enough)."""
        raise NotImplementedError


class InMemory(Columns):
    """A pandas table: every statistic is exact. The columns steps touch are held as the
    interpreter holds them (``pipespec.bundle.transforms``); the others stay as read, for
    type inference."""

    def __init__(self, frame: pd.DataFrame, columns: list[str]) -> None:
        self._frame = frame
        self.raw = list(frame.columns)
        self.custom = {}
        self.keep(columns)

    def keep(self, columns: list[str]) -> None:
        self.work = {c: as_array(self._frame[c]) for c in columns}
        self._touched: set[str] = set()

    def add(self, step: Step) -> None:
        before = {k: id(v) for k, v in self.work.items()}
        run_steps(self.work, [step], self.custom)
        self._touched |= {k for k, v in self.work.items() if before.get(k) != id(v)}
        self._touched |= set(getattr(step, "map", {}).values())

    def drop(self, column: str) -> None:
        del self.work[column]

    def _series(self, column: str) -> pd.Series:
        import pandas as pd

        return pd.Series(to_objects(self.work[column]))

    def head(self, column: str) -> pd.Series:
        if column in self._frame.columns and column not in self._touched:
            return self._frame[column]
        return self._series(column)

    def all_distinct(self, column: str) -> bool:
        series = self.head(column)
        return bool(len(series) > 50 and series.notna().all() and series.nunique() == len(series))

    def quantiles(self, column: str, qs: list[float]) -> list[float]:
        import pandas as pd

        values = pd.Series(floats(self.work[column]))
        return [values.quantile(q) for q in qs]

    def counts(self, column: str, *, text: bool) -> pd.Series:
        import pandas as pd

        values = self.work[column]
        series = pd.Series(to_objects(text_keys(values) if text else values))
        return series.dropna().value_counts()

    def frame(self, what: str) -> pd.DataFrame:
        import pandas as pd

        return pd.DataFrame({k: to_objects(v) for k, v in self.work.items()})

    def labels(self, target: str, task: str) -> pd.Series:
        return self._frame[target]


class Partitioned(Columns):
    """A Dask DataFrame: statistics are computed on the cluster, partition by partition
    (quantiles are Dask's approximations); types are inferred from the first rows."""

    def __init__(self, frame: Any, columns: list[str]) -> None:
        self._frame = frame
        self.raw = list(frame.columns)
        self._sample = frame.head(INFER_ROWS, npartitions=-1)
        self._inputs = list(columns)
        self._steps: list[Step] = []
        self._head: dict[str, Any] = {}
        self._counts: dict[str, pd.Series] = {}
        self._rows: int | None = None
        self.work = {}
        self.custom = {}
        self.keep(columns)

    def keep(self, columns: list[str]) -> None:
        self._inputs = list(columns)
        self._head = {c: self._sample[c] for c in columns}
        self._sync()

    def _sync(self) -> None:
        self.work.clear()
        self.work.update(dict.fromkeys(self._head))

    def add(self, step: Step) -> None:
        import pandas as pd

        work = run_steps({k: as_array(v) for k, v in self._head.items()}, [step], self.custom)
        self._head = {k: pd.Series(to_objects(v)) for k, v in work.items()}
        self._steps.append(step)
        if isinstance(step, CustomStep):
            self._counts.clear()
        renamed = getattr(step, "map", {})
        for name in {getattr(step, "column", None), *renamed, *renamed.values()}:
            self._counts.pop(name, None)
        self._sync()

    def drop(self, column: str) -> None:
        del self._head[column]
        self._sync()

    def current(self) -> Any:
        """The table as the steps so far leave it (lazy)."""
        meta = _apply_steps(self._sample.iloc[:0], self._inputs, self._steps)
        return self._frame.map_partitions(
            _apply_steps, self._inputs, list(self._steps), meta=meta, align_dataframes=False
        )

    def head(self, column: str) -> pd.Series:
        return self._head[column]

    def all_distinct(self, column: str) -> bool:
        self.prefetch_counts([column])
        counts = self._counts[column]
        if self._rows is None:
            self._rows = int(self._frame.map_partitions(len).sum().compute())
        rows = self._rows
        return bool(rows > 50 and len(counts) == rows and int(counts.sum()) == rows)

    def quantiles(self, column: str, qs: list[float]) -> list[float]:
        """Exact, as in memory: the column alone is gathered (8 bytes a row), because Dask's
        quantiles are approximations and the document must not depend on the backend."""
        values = self.current()[column].astype("float64").compute()
        return [float(values.quantile(q)) for q in qs]

    def counts(self, column: str, *, text: bool) -> pd.Series:
        import pandas as pd

        textual = not pd.api.types.is_numeric_dtype(self._head[column])
        if not text or textual:
            self.prefetch_counts([column])
            return self._counts[column]
        keys = self.current()[column].map_partitions(_text_keys, meta=(column, "object"))
        return _ranked(keys.value_counts(dropna=True).compute())

    def prefetch_counts(self, columns: list[str]) -> None:
        import dask

        wanted = [c for c in columns if c not in self._counts]
        if not wanted:
            return
        table = self.current() if self._steps else self._frame  # (reads only these columns)
        work = [table[c].value_counts(dropna=True) for c in wanted]
        if self._rows is None:
            work.append(table.map_partitions(len).sum())
        found = dask.compute(*work)
        if self._rows is None:
            self._rows = int(found[-1])
        self._counts.update({c: _ranked(v) for c, v in zip(wanted, found, strict=False)})

    def frame(self, what: str) -> pd.DataFrame:
        raise ConfigError(
            f"{what} is not supported with compute=dask: a custom transform's fit takes the "
            "whole training table in memory",
            hint="Fit the features with compute=local, or express them with the built-in "
            "options (derived, transforms, impute).",
        )

    def labels(self, target: str, task: str) -> pd.Series:
        import pandas as pd

        if task == "regression":
            return self._sample[target]
        return pd.Series(self._frame[target].dropna().unique().compute())


def _apply_steps(frame: pd.DataFrame, inputs: list[str], steps: list[Step]) -> pd.DataFrame:
    import pandas as pd

    work = run_steps({c: as_array(frame[c]) for c in inputs}, steps)
    return pd.DataFrame({k: to_objects(v) for k, v in work.items()}, index=frame.index)


def _text_keys(series: pd.Series) -> pd.Series:
    import pandas as pd

    return pd.Series(to_objects(text_keys(as_array(series))), index=series.index, dtype=object)


def _ranked(counts: pd.Series) -> pd.Series:
    """Counts, most frequent first, ties in the order of their values (stable across runs)."""
    keys = [str(k) for k in counts.index]
    order = sorted(range(len(counts)), key=lambda i: (-int(counts.iloc[i]), keys[i]))
    return counts.iloc[order]
