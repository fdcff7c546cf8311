"""The column representation shared by the input check and the transforms interpreter.

A checked input, and a training table the featurize stage fits on, are ``work``: a mapping
of column names to arrays in one of four representations:

- float64 (numbers, integers, and integer or float categories; NaN where missing);
- object (text or booleans; None where missing);
- datetime64[ns] (NaT where missing);
- an Arrow string array (text read from a file: pandas' own text columns are Arrow, and a
  million rows of them never become Python objects).

``as_array`` puts a training column in that form, ``pipespec.bundle.inputs.check`` puts
serving input in the same form, and ``pipespec.bundle.transforms`` runs the fitted steps on
it, so the steps see the same values whichever path they came from. The helpers here read
and convert columns in that representation (category keys as text, numbers parsed from
text the way the CSV reader parses them, dates, lookups of keys in a category list); none
knows about a transforms document or an input schema.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np

SMALL = 64  # up to this many rows, lookups go value by value (cheaper than a hash table)

__all__ = [
    "SMALL",
    "Codes",
    "as_array",
    "category_codes",
    "floats",
    "index_in",
    "is_arrow",
    "parse_dates",
    "parse_floats",
    "positions_in",
    "present_keys",
    "take",
    "text_keys",
    "to_objects",
]


def as_array(values: Any) -> Any:
    """A column (pandas Series, Arrow-backed or not, or a sequence) in the interpreter's
    representation: float64 for numbers, datetime64 for dates, Arrow for pandas' text
    columns, object for other text and booleans."""
    import numpy as np
    import pandas as pd

    series = values if isinstance(values, pd.Series) else pd.Series(values)
    dtype = series.dtype
    if pd.api.types.is_bool_dtype(dtype):
        return series.to_numpy(dtype=object, na_value=None)
    if pd.api.types.is_numeric_dtype(dtype):
        return series.to_numpy(dtype="float64", na_value=np.nan)
    if pd.api.types.is_datetime64_any_dtype(dtype):
        if getattr(dtype, "tz", None) is not None:
            series = series.dt.tz_localize(None)
        return series.to_numpy(dtype="datetime64[ns]")
    if isinstance(dtype, pd.StringDtype) and dtype.storage == "pyarrow":
        import pyarrow as pa

        arrow = pa.array(series.array).cast(pa.string())  # zero-copy view of its chunks
        return arrow.combine_chunks() if isinstance(arrow, pa.ChunkedArray) else arrow
    out = series.to_numpy(dtype=object, na_value=None)
    if dtype is np.dtype(object):  # a mix may hold NaN or pd.NA: missing is None here
        missing = pd.isna(out)
        if missing.any():
            out = out.copy()
            out[missing] = None
    return out


def is_arrow(values: Any) -> bool:
    """An Arrow string array (text read from a file)."""
    import numpy as np

    return not isinstance(values, np.ndarray) and type(values).__module__.startswith("pyarrow")


def to_objects(values: Any) -> np.ndarray:
    """A column as a numpy array; Arrow text becomes an object array (None where missing)."""
    import numpy as np

    if is_arrow(values):
        return np.asarray(values.to_numpy(zero_copy_only=False), dtype=object)
    return values


def take(values: Any, rows: np.ndarray) -> Any:
    """The entries ``rows`` of a column, in its representation."""
    if is_arrow(values):
        return values.take(rows)
    return values[rows]


def text_keys(values: Any) -> Any:
    """Category keys as text, None where missing: 1.0 and 1 are the same category ('1'),
    booleans are 'True'/'False', text is itself (Arrow text stays Arrow). Value by value, so
    a key never depends on the other rows."""
    import numpy as np

    if is_arrow(values):
        return values
    if values.dtype == object:
        n = len(values)
        if n <= SMALL:
            return np.array(
                [None if v is None else (v if type(v) is str else str(v)) for v in values],
                dtype=object,
            )
        import pandas as pd

        if pd.api.types.infer_dtype(values, skipna=True) in ("string", "empty"):
            return values  # text (and None) only: the keys as they are
        keys = values.copy()
        other = ~pd.isna(values)
        other[other] = [type(v) is not str for v in values[other]]
        if other.any():
            keys[other] = [str(v) for v in values[other]]
        return keys
    if values.dtype.kind == "M":
        import pandas as pd

        text = pd.Series(values).astype("str").to_numpy(dtype=object)
        text[np.isnat(values)] = None
        return text
    floats = np.asarray(values, dtype="float64")
    out = np.empty(len(floats), dtype=object)
    finite = np.isfinite(floats)
    whole = finite & (floats == np.round(floats)) & (np.abs(floats) < 2**63)
    if whole.any():
        out[whole] = floats[whole].astype(np.int64).astype(str)
    rest = ~whole & ~np.isnan(floats)
    if rest.any():
        out[rest] = [repr(v) if math.isfinite(v) else str(v) for v in floats[rest].tolist()]
    out[np.isnan(floats)] = None
    return out


def parse_floats(text: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Text (object array of str) as float64, parsed by Arrow (correctly rounded, the way the
    CSV reader parses). Returns the values, the unreadable entries and the blank ones (blank
    text is missing, as training read it)."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    n = len(text)
    values = np.full(n, np.nan)
    wrong = np.zeros(n, dtype=bool)
    if n == 0:
        return values, wrong, np.zeros(0, dtype=bool)
    arrow = text if is_arrow(text) else pa.array(text, type=pa.string())
    stripped = pc.utf8_trim_whitespace(arrow)
    blank = np.asarray(pc.equal(stripped, "").to_numpy(zero_copy_only=False), dtype=bool)
    ok = ~blank
    try:
        values[ok] = pc.cast(pc.filter(stripped, pa.array(ok)), pa.float64()).to_numpy(
            zero_copy_only=False
        )
        return values, wrong, blank
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        pass
    # some token is not a number: each distinct token is parsed once, in one cast where
    # it can be (a column of words or identifiers costs one regex over its distinct tokens)
    encoded = pc.dictionary_encode(_combined(stripped))
    tokens = encoded.dictionary
    parsed, unreadable = np.full(len(tokens), np.nan), np.ones(len(tokens), dtype=bool)
    maybe = np.flatnonzero(
        np.asarray(pc.match_substring_regex(tokens, MAYBE_NUMBER).to_numpy(zero_copy_only=False))
    )
    for batch, numbers in _castable(tokens, maybe):
        parsed[batch], unreadable[batch] = numbers, False
    codes = encoded.indices.to_numpy(zero_copy_only=False)
    present = ok & ~np.asarray(encoded.is_null().to_numpy(zero_copy_only=False), dtype=bool)
    where = codes[present].astype(np.intp)
    values[present], wrong[present] = parsed[where], unreadable[where]
    return values, wrong, blank


# What Arrow's text-to-float cast may accept, and more: signed decimal digits with a point
# and an exponent, or an inf/nan spelling. A token it does not match is certainly not a
# number; one it matches is cast (tests/bundle/test_columns.py compares both with Arrow's
# cast of each token alone).
MAYBE_NUMBER = r"(?i)^[+-]?([0-9.]+(e[+-]?[0-9]*)?$|inf|nan)"


def _combined(values: Any) -> Any:
    return values.combine_chunks() if hasattr(values, "combine_chunks") else values


def _castable(tokens: Any, candidates: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
    """The candidate tokens in groups that Arrow casts to float64 whole, with their values:
    all of them in one when it can, else the halves, and so on (a few unreadable tokens among
    many numbers cost a few casts each, not one per token); those it refuses alone are in no
    group."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if not len(candidates):
        return []
    try:
        numbers = pc.cast(tokens.take(pa.array(candidates)), pa.float64())
        return [(candidates, numbers.to_numpy(zero_copy_only=False))]
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        if len(candidates) == 1:
            return []
    half = len(candidates) // 2
    return _castable(tokens, candidates[:half]) + _castable(tokens, candidates[half:])


def parse_dates(values: np.ndarray, fmt: str | None) -> np.ndarray:
    """Dates as datetime64[ns] (NaT where missing or unreadable), parsed with ``fmt``."""
    import warnings

    import numpy as np
    import pandas as pd

    if not is_arrow(values) and values.dtype.kind == "M":
        return values.astype("datetime64[ns]")
    values = to_objects(values)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # a format pandas cannot infer
        parsed = pd.to_datetime(pd.Series(values, dtype=object), format=fmt, errors="coerce")
    if getattr(parsed.dtype, "tz", None) is not None:
        parsed = parsed.dt.tz_localize(None)
    return np.asarray(parsed.to_numpy(dtype="datetime64[ns]"))


def floats(values: np.ndarray) -> np.ndarray:
    """A column as float64: numbers as they are, booleans 0/1, text parsed, dates NaN."""
    import numpy as np

    if is_arrow(values):
        parsed, _, _ = parse_floats(values)
        return parsed
    if values.dtype == object:
        n = len(values)
        out = np.full(n, np.nan)
        text = np.fromiter((type(v) is str for v in values), bool, n)
        other = ~text & np.fromiter((v is not None for v in values), bool, n)
        if text.any():
            parsed, _, _ = parse_floats(values[text])
            out[text] = parsed
        if other.any():
            out[other] = [float(v) for v in values[other]]
        return out
    if values.dtype.kind == "M":
        return np.full(len(values), np.nan)
    return np.asarray(values, dtype="float64")


def index_in(keys: np.ndarray, categories: list[str] | tuple[str, ...]) -> np.ndarray:
    """Position of each text key in ``categories`` (-1: not there or missing), by Arrow's
    hash table: for many rows."""
    return positions_in(keys, categories).astype("float64")


def positions_in(keys: Any, categories: list[str] | tuple[str, ...]) -> np.ndarray:
    """``index_in`` as integers (int32; -1: not there or missing): one pass of Arrow's hash
    table over the keys, whose result ``Codes`` lets a later step reuse."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    arrow = keys if is_arrow(keys) else pa.array(keys, type=pa.string())
    found = pc.index_in(arrow, value_set=pa.array(list(categories), type=pa.string()))
    if found.null_count:
        found = found.fill_null(-1)
    return np.asarray(found.to_numpy(zero_copy_only=False), dtype=np.int32)


@dataclass(frozen=True, eq=False)
class Codes:
    """The input check's lookup of a column's keys in its schema categories, kept so the
    categorical step reuses it instead of hashing every key a second time.

    ``source`` is the very array the positions were computed from: a step that finds
    another array under the column's name (renamed, imputed, taken) looks the keys up
    itself."""

    source: Any
    categories: tuple[str, ...]
    positions: np.ndarray  # int32, position in ``categories``; -1: not there or missing

    def take(self, rows: np.ndarray, source: Any) -> Codes:
        """The codes of ``rows`` only, for ``source`` (the column's same rows)."""
        return Codes(source, self.categories, self.positions[rows])

    def recode(self, categories: list[str] | tuple[str, ...], unseen: float) -> np.ndarray | None:
        """Each key's code in ``categories`` as the categorical step gives it (float64: the
        position; ``unseen`` where the key is not there; NaN where it is missing, which
        ``missing`` says), from the kept lookup in one gather through a table of the kept
        list; None when ``categories`` holds a key the kept list lacks (the lookup could not
        tell it apart from an unseen one)."""
        import numpy as np

        index = category_codes(self.categories)
        # ``unseen`` everywhere: position -1 (not there or missing) reads the extra last entry
        table = np.full(len(self.categories) + 1, unseen, dtype="float64")
        placed = np.zeros(len(self.categories) + 1, dtype=bool)
        for i, category in enumerate(categories):
            at = index.get(category)
            if at is None:
                return None
            if not placed[int(at)]:  # a repeated category keeps its first position
                table[int(at)], placed[int(at)] = float(i), True
        codes = table[self.positions]
        missing = _missing(self.source)
        if missing.any():
            codes[missing] = np.nan
        return codes


def _missing(values: Any) -> np.ndarray:
    """Which entries of a column have no key (``~present_keys(text_keys(values))``, without
    making the keys of numbers or dates)."""
    import numpy as np

    if not is_arrow(values) and values.dtype.kind == "f":
        return np.isnan(values)
    if not is_arrow(values) and values.dtype.kind == "M":
        return np.isnat(values)
    return ~present_keys(values)


def present_keys(keys: Any) -> np.ndarray:
    """Which keys are not missing (None)."""
    import numpy as np

    if is_arrow(keys):
        if keys.null_count == 0:  # a file's column without a gap: no mask to unpack
            return np.ones(len(keys), dtype=bool)
        return np.asarray(keys.is_valid().to_numpy(zero_copy_only=False), dtype=bool)
    return np.asarray(keys != None, dtype=bool)  # noqa: E711 (elementwise on an array)


_CODES: dict[int, tuple[Any, dict[str, float]]] = {}


def category_codes(categories: list[str] | tuple[str, ...]) -> dict[str, float]:
    """Category -> code, built once per category list (a step's list lives as long as its
    transforms document: cached by identity, checked)."""
    found = _CODES.get(id(categories))
    if found is None or found[0] is not categories:
        if len(_CODES) > 512:
            _CODES.clear()
        found = _CODES[id(categories)] = (
            categories,
            {c: float(i) for i, c in enumerate(categories)},
        )
    return found[1]
