"""Data schemas: pandera's own YAML format, read with errors that name the file and the
column at fault, inferred from data by ``pipespec schema infer``.

A schema file is what ``pandera.DataFrameSchema.from_yaml`` reads, so that pandera's
documentation applies as is. pipespec adds one thing pandera has no key for, row-count
bounds, and keeps it in pandera's free-form ``metadata`` mapping, which plain pandera loads
and ignores::

    metadata:
      pipespec:
        rows: {min: 1000, max: 10000000}

pandera itself ignores keys it does not know (a misspelt ``colums:`` would silently check
nothing), so :func:`load` refuses them, with the alternatives.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipespec.core.documents import plain
from pipespec.core.errors import ConfigError

if TYPE_CHECKING:
    import pandas as pd
    import pandera.pandas as pa

EXTENSION_KEY = "pipespec"  # under `metadata:`
ROWS_KEY = "rows"
ROW_BOUND_KEYS = ("min", "max")

# Top-level keys of pandera's pandas YAML format (pandera.io.pandas_io.deserialize_schema).
TOP_LEVEL_KEYS = (
    "schema_type",
    "version",
    "api",
    "dataframe_library",
    "columns",
    "checks",
    "index",
    "multiindex",
    "dtype",
    "coerce",
    "strict",
    "name",
    "ordered",
    "unique",
    "report_duplicates",
    "unique_column_names",
    "add_missing_columns",
    "title",
    "description",
    "metadata",
    "drop_invalid_rows",
)
# Keys of a column that are options; any other key of a column names a check.
COLUMN_OPTION_KEYS = (
    "dtype",
    "nullable",
    "unique",
    "coerce",
    "required",
    "regex",
    "checks",
    "name",
    "title",
    "description",
    "default",
    "report_duplicates",
    "drop_invalid_rows",
)
# pandera's built-in checks for pandas columns (aliases included), for hints.
CHECK_NAMES = (
    "equal_to",
    "not_equal_to",
    "greater_than",
    "greater_than_or_equal_to",
    "less_than",
    "less_than_or_equal_to",
    "in_range",
    "isin",
    "notin",
    "str_matches",
    "str_contains",
    "str_startswith",
    "str_endswith",
    "str_length",
    "unique_values_eq",
    "is_monotonic",
)
CHECK_ALIASES = ("eq", "ne", "gt", "ge", "lt", "le", "between")
BOUND_CHECKS = (
    "greater_than",
    "greater_than_or_equal_to",
    "less_than",
    "less_than_or_equal_to",
    "in_range",
    *CHECK_ALIASES,
)

HEADER = """\
# pandera YAML schema (pandera.DataFrameSchema.from_yaml), checked by pipespec's validate
# stage: `pipespec run schema.path=THIS_FILE`. Written by `pipespec schema infer` from
#   {source} ({rows:,} rows)
# as a starting point: ranges and categories are the ones observed there. Widen or tighten
# them, and add checks (str_matches, unique, ...) where you know more.
# Row-count bounds are a pipespec extension that plain pandera ignores:
#   metadata:
#     pipespec:
#       rows: {{min: 1000, max: 10000000}}
"""


@dataclass(frozen=True)
class RowBounds:
    """Inclusive bounds on the number of rows of a table (None: unbounded)."""

    min: int | None = None
    max: int | None = None


@dataclass
class DataSchema:
    """A pandera schema plus pipespec's row-count bounds, and the file it came from."""

    pandera: pa.DataFrameSchema
    source: str
    rows: RowBounds = field(default_factory=RowBounds)

    @property
    def columns(self) -> list[str]:
        return [str(c) for c in self.pandera.columns]


def _fail(shown: str, message: str, hint: str | None = None) -> ConfigError:
    return ConfigError(f"schema file {shown} (schema.path): {message}", hint=hint)


def _unknown(key: str, where: str, choices: Iterable[str], shown: str) -> ConfigError:
    choices = list(choices)
    close = difflib.get_close_matches(key, choices, n=1)
    return _fail(
        shown,
        f"unknown key '{key}' {where}",
        hint=(f"Did you mean '{close[0]}'? " if close else "") + f"Keys: {', '.join(choices)}",
    )


def load(path: Path, shown: str | None = None) -> DataSchema:
    """Read a pandera YAML schema file; every mistake is a ConfigError naming ``shown``."""
    import yaml

    shown = shown or str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise _fail(
            shown, "file not found", hint="Write one with `pipespec schema infer DATA --out FILE`."
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise _fail(shown, f"cannot read it: {exc}") from None
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise _fail(shown, f"not valid YAML: {exc}") from None
    return from_dict(doc if doc is not None else {}, shown)


def from_dict(doc: Any, shown: str) -> DataSchema:
    """A DataSchema from the parsed YAML document of ``shown``."""
    if not isinstance(doc, Mapping):
        raise _fail(shown, "expected a mapping with 'columns' at the top")
    for key in doc:
        if key not in TOP_LEVEL_KEYS:
            raise _unknown(str(key), "at the top", TOP_LEVEL_KEYS, shown)
    if doc.get("schema_type", "dataframe") != "dataframe":
        raise _fail(shown, f"schema_type is '{doc['schema_type']}'; pipespec checks 'dataframe'")
    if doc.get("drop_invalid_rows"):
        raise _fail(
            shown,
            "drop_invalid_rows would drop failing rows silently",
            hint="Remove it and set schema.policy=quarantine: failing rows then go to the "
            "quarantine file and the report.",
        )
    columns = doc.get("columns") or {}
    if not isinstance(columns, Mapping):
        raise _fail(shown, "'columns' must map each column name to its spec")
    for name, spec in columns.items():
        _check_column(str(name), spec, shown)
    rows = _row_bounds(doc.get("metadata"), shown)
    return DataSchema(_deserialize(dict(doc), shown), shown, rows)


def _check_column(name: str, spec: Any, shown: str) -> None:
    from pandera.api.checks import Check

    if spec is None:
        return
    if not isinstance(spec, Mapping):
        raise _fail(shown, f"column '{name}': expected a mapping (dtype, nullable, checks ...)")
    if spec.get("drop_invalid_rows"):
        raise _fail(
            shown,
            f"column '{name}': drop_invalid_rows would drop failing rows silently",
            hint="Remove it and set schema.policy=quarantine instead.",
        )
    for key in spec:
        if key in BOUND_CHECKS:
            _check_bounds(name, str(key), spec[key], spec.get("dtype"), shown)
        if key in COLUMN_OPTION_KEYS or hasattr(Check, str(key)):
            continue
        close = difflib.get_close_matches(str(key), (*COLUMN_OPTION_KEYS, *CHECK_NAMES), n=1)
        raise _fail(
            shown,
            f"unknown key '{key}' in column '{name}'",
            hint=(f"Did you mean '{close[0]}'? " if close else "")
            + f"Options: {', '.join(COLUMN_OPTION_KEYS[:6])}, ...; "
            + f"checks: {', '.join(CHECK_NAMES)} (pandera's built-in checks).",
        )


def _check_bounds(column: str, check: str, value: Any, dtype: Any, shown: str) -> None:
    """A bound of a numeric column that YAML read as text (PyYAML reads ``1e3`` as a string)
    would make the check err on every row: say so at load time, naming column and check."""
    if not isinstance(dtype, str) or not dtype.lower().startswith(("int", "uint", "float")):
        return
    bounds = value.items() if isinstance(value, Mapping) else [("value", value)]
    for arg, bound in bounds:
        if arg in ("min_value", "max_value", "value") and isinstance(bound, str):
            raise _fail(
                shown,
                f"column '{column}': {check} bound '{bound}' is text, not a number",
                hint="YAML reads exponents without a sign or dot as text: write 1000, 1.0e+3 "
                "or 1000.0.",
            )


def _row_bounds(metadata: Any, shown: str) -> RowBounds:
    if not metadata:
        return RowBounds()
    if not isinstance(metadata, Mapping):
        raise _fail(shown, "'metadata' must be a mapping")
    ours = metadata.get(EXTENSION_KEY)
    if ours is None:
        return RowBounds()
    if not isinstance(ours, Mapping):
        raise _fail(shown, f"metadata.{EXTENSION_KEY} must be a mapping, e.g. rows: {{min: 100}}")
    for key in ours:
        if key != ROWS_KEY:
            raise _unknown(str(key), f"in metadata.{EXTENSION_KEY}", (ROWS_KEY,), shown)
    rows = ours.get(ROWS_KEY) or {}
    if not isinstance(rows, Mapping):
        raise _fail(shown, f"metadata.{EXTENSION_KEY}.rows must be a mapping like {{min: 100}}")
    bounds: dict[str, int | None] = {}
    for key, value in rows.items():
        if key not in ROW_BOUND_KEYS:
            raise _unknown(str(key), f"in metadata.{EXTENSION_KEY}.rows", ROW_BOUND_KEYS, shown)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
            raise _fail(shown, f"metadata.{EXTENSION_KEY}.rows.{key} must be a whole number")
        if value is not None and value < 0:
            raise _fail(shown, f"metadata.{EXTENSION_KEY}.rows.{key} must not be negative")
        bounds[str(key)] = value
    result = RowBounds(bounds.get("min"), bounds.get("max"))
    if result.min is not None and result.max is not None and result.min > result.max:
        raise _fail(shown, f"metadata.{EXTENSION_KEY}.rows: min {result.min} > max {result.max}")
    return result


def _deserialize(doc: dict[str, Any], shown: str) -> pa.DataFrameSchema:
    """pandera's own loader; its errors name the column at fault."""
    from pandera.io.pandas_io import deserialize_schema

    try:
        return deserialize_schema(doc)
    except Exception as exc:
        for name, spec in (doc.get("columns") or {}).items():
            try:
                deserialize_schema({"columns": {name: spec}})
            except Exception as col_exc:
                raise _fail(shown, f"column '{name}': {_reason(col_exc)}") from None
        raise _fail(shown, _reason(exc)) from None


def _reason(exc: Exception) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


# --- inference --------------------------------------------------------------------------


def infer(frame: pd.DataFrame, *, max_categories: int = 20) -> dict[str, Any]:
    """A starting schema for ``frame`` that ``frame`` itself passes: dtypes, nullability,
    observed ranges of numbers, allowed values of low-cardinality text, unique text ids."""
    import pandas as pd

    columns: dict[str, Any] = {}
    for name in frame.columns:
        series = frame[name]
        spec: dict[str, Any] = {"dtype": _dtype_name(series)}
        spec["nullable"] = bool(series.isna().any())
        values = series.dropna()
        dtype = series.dtype
        if pd.api.types.is_bool_dtype(dtype) or values.empty:
            pass
        elif pd.api.types.is_numeric_dtype(dtype):
            low, high = values.min(), values.max()
            spec["in_range"] = {"min_value": plain(low), "max_value": plain(high)}
        elif isinstance(dtype, pd.CategoricalDtype) or _is_text(series):
            distinct = values.unique()
            if len(distinct) <= max_categories:
                spec["isin"] = _sorted([plain(v) for v in distinct])
            elif not spec["nullable"] and len(distinct) == len(series) and len(series) > 1:
                spec["unique"] = True
        columns[str(name)] = spec
    return {"schema_type": "dataframe", "columns": columns, "coerce": False, "strict": False}


def marker_tokens(frame: pd.DataFrame, known: Iterable[str] = ()) -> dict[str, dict[str, int]]:
    """Tokens of the text columns that look like missing-value markers ('?', '-', 'n/a',
    ...; ``pipespec.bundle.reader.marker_like``) and are not among ``known`` (the reading
    options' markers): {token: {column: count}}, so ``schema infer`` can propose them as
    ``dataset.na_values``."""
    from pipespec.bundle.reader import marker_like

    skip = set(known)
    found: dict[str, dict[str, int]] = {}
    for column in frame.columns:
        series = frame[column]
        if not _is_text(series):
            continue
        counts = series.dropna().astype(str).value_counts()
        for token, count in counts.items():
            if token not in skip and token.strip() not in skip and marker_like(str(token)):
                found.setdefault(str(token).strip(), {})[str(column)] = int(count)
    return dict(sorted(found.items()))


def dump(doc: Mapping[str, Any], *, source: str, rows: int) -> str:
    """The YAML text of an inferred schema, with a header that says how to use it.

    Columns are block mappings, one key per line; lists and ranges stay on one line."""
    import yaml

    class Dumper(yaml.SafeDumper):
        pass

    def flow_list(dumper: yaml.SafeDumper, value: list[Any]) -> yaml.Node:
        return dumper.represent_sequence("tag:yaml.org,2002:seq", value, flow_style=True)

    def flow_map(dumper: yaml.SafeDumper, value: _Flow) -> yaml.Node:
        return dumper.represent_mapping("tag:yaml.org,2002:map", dict(value), flow_style=True)

    Dumper.add_representer(list, flow_list)
    Dumper.add_representer(_Flow, flow_map)
    shaped = dict(doc)
    shaped["columns"] = {
        name: {k: _Flow(v) if isinstance(v, dict) else v for k, v in spec.items()}
        for name, spec in (doc.get("columns") or {}).items()
    }
    body = yaml.dump(
        shaped, Dumper=Dumper, sort_keys=False, default_flow_style=False, allow_unicode=True,
        width=100,
    )  # fmt: skip
    return HEADER.format(source=source, rows=rows) + body


class _Flow(dict[str, Any]):
    """A mapping written on one line (``in_range: {min_value: 0, max_value: 72}``)."""


def _dtype_name(series: pd.Series) -> str:
    # pandas 3's default text dtype is `str` (pandera reads 'str' and 'string' alike)
    return "str" if _is_text(series) else str(series.dtype)


def _is_text(series: pd.Series) -> bool:
    import pandas as pd

    if isinstance(series.dtype, pd.StringDtype):
        return True
    if not pd.api.types.is_object_dtype(series.dtype):
        return False
    values = series.dropna()
    return bool(len(values)) and bool(values.map(lambda v: isinstance(v, str)).all())


def _sorted(values: list[Any]) -> list[Any]:
    try:
        return sorted(values)
    except TypeError:  # mixed types: a stable order all the same
        return sorted(values, key=lambda v: (type(v).__name__, str(v)))
