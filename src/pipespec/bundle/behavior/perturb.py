"""What the perturbation checks (invariance, directional) share: scoring perturbed copies of
the data with little work, the change of each prediction, and the violation rate."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pipespec.bundle.behavior.report import Check
from pipespec.bundle.behavior.rows import Rows
from pipespec.core.documents import class_columns

if TYPE_CHECKING:
    import pandas as pd

Change = tuple[str, Any]  # (column, the column's new values)


def perturbed(rows: Rows, changes: list[Change]) -> list[pd.DataFrame]:
    """``rows.predict`` of the data with one column replaced, for each (column, new values)
    of ``changes``: what predicting each perturbed copy of the data whole gives, computed
    with less work. Checking and the transforms work value by value, and the model row by
    row, so a row whose value did not change keeps its prediction (and its refusal) from
    ``rows.base``; only the rows that changed are scored, those of every perturbation in one
    batch (per set of column types: a batch is one frame)."""
    import pandas as pd

    parts = [(k, _changed_rows(rows.frame, column, values))
             for k, (column, values) in enumerate(changes)]  # fmt: skip
    predicted: dict[int, pd.DataFrame] = {}
    batches: list[tuple[list[Any], list[tuple[int, pd.DataFrame]]]] = []
    for k, changed in parts:  # one batch per set of column types
        kinds = list(changed.dtypes)
        for batch_kinds, members in batches:
            if len(batch_kinds) == len(kinds) and all(
                a == b for a, b in zip(batch_kinds, kinds, strict=True)
            ):
                members.append((k, changed))
                break
        else:
            batches.append((kinds, [(k, changed)]))
    for _, members in batches:
        sizes = [len(changed) for _, changed in members]
        batch = pd.concat([changed for _, changed in members], ignore_index=True)
        out = rows.predict(batch) if len(batch) else rows.base.iloc[:0]
        at = out.index.to_numpy()
        start = 0
        for (k, changed), size in zip(members, sizes, strict=True):
            mine = (at >= start) & (at < start + size)
            got = out[mine]
            got.index = changed.index[at[mine] - start]
            predicted[k] = got
            start += size
    results = []
    for k, changed in parts:
        kept = rows.base.drop(index=changed.index, errors="ignore")
        results.append(pd.concat([kept, predicted[k]]).sort_index(kind="stable"))
    return results


def _changed_rows(frame: pd.DataFrame, column: str, values: Any) -> pd.DataFrame:
    """The rows of ``frame`` whose ``column`` the new ``values`` change, with them."""
    import numpy as np
    import pandas as pd

    new = pd.Series(values, index=frame.index)
    old = frame[column]
    if new.dtype == old.dtype:
        gone, was = new.isna().to_numpy(dtype=bool), old.isna().to_numpy(dtype=bool)
        same = gone & was
        both = ~(gone | was)
        equal = new.to_numpy(dtype=object)[both] == old.to_numpy(dtype=object)[both]
        same[both] = np.asarray(equal, dtype=bool)
        changed = np.flatnonzero(~same)
    else:  # a column of another type: every row is checked again
        changed = np.arange(len(frame))
    out = frame.iloc[changed].copy()
    out[column] = new.iloc[changed]
    return out


def changes(rows: Rows, new: pd.DataFrame, output: str | None) -> pd.Series:
    """New minus old prediction on the rows both predicted (``new``: the predictions of the
    perturbed data); multiclass without an output: the largest absolute change over the
    class probabilities."""
    base, bundle = rows.base, rows.bundle
    both = base.index.intersection(new.index)
    if bundle.task == "multiclass" and output is None:
        cols = class_columns(list(bundle.classes))
        return (new.loc[both, cols] - base.loc[both, cols]).abs().max(axis=1)
    return rows.output_of(new, output).loc[both] - rows.output_of(base, output).loc[both]


def violations(
    rows: Rows, kind: str, name: str, subject: str, wrong: Any, size: Any, allowed: float
) -> dict[str, Any]:
    """The result of a perturbation check (``wrong``: the rows that broke the expectation,
    ``size``: each row's change) and its verdict, added to the report."""
    n = len(wrong)
    bad = int(wrong.sum())
    rate = bad / n if n else None
    result = {
        "subject": subject,
        "rows": n,
        "refused_rows": int(len(rows.frame) - n),
        "violations": bad,
        "violation_rate": rate,
        "max_change": float(size.max()) if n else None,
    }
    passed = rate is not None and rate <= allowed
    rows.add(Check(kind, name, subject, "violation_rate", rate, "<=", allowed, passed))
    return result


def like(values: Any, original: pd.Series) -> Any:
    """Perturbed numbers in the column's own kind: integers stay integers (rounded)."""
    import numpy as np
    import pandas as pd

    if original.dtype.kind in "iu" or str(original.dtype) in ("Int64", "Int32", "Int16", "Int8"):
        rounded = np.round(values)
        return pd.array([None if np.isnan(v) else int(v) for v in rounded], dtype="Int64")
    return values


def filled(original: pd.Series, value: Any) -> pd.Series:
    """The column with every value set to ``value``, in the column's type."""
    import pandas as pd

    return pd.Series([value] * len(original), index=original.index, dtype=original.dtype)
