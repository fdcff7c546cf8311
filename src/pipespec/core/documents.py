"""The documents that stages hand each other and the bundle carries, as typed classes.

Every document is a dataclass; ``to_json`` and ``from_json`` are the one (de)serialiser for
all of them, and ``plain`` the one converter of numpy scalars to JSON values. A field added
to a document is therefore written by training and read by serving without a second place
to remember it; a document that does not fit its class is refused with the field path named.

The documents:

- ``ReadOptions``: how the training config read its files (separator, header, names,
  strip, comment, encoding, missing-value markers, dtypes). Stored in the bundle, so
  ``pipespec predict``, ``monitor`` and the log replay read a file exactly as ``load`` did.
- ``Column`` and ``InputSchema``: what a raw input record must look like.
- ``Output``: what the model answers (task, target, classes, threshold).
- ``Strictness`` and ``ServingPolicy``: what serving refuses, warns about, and its limits.
- ``Transforms``: the fitted transforms (``transforms.json``).
- ``Contract``: the train/serve contract, the bundle's ``schema.json``: the input schema,
  the reading options, the output and the policy.
- ``TableMeta``: what a table written by a stage says about itself (Parquet metadata).
- ``Card``: the model card.
"""

from __future__ import annotations

import dataclasses
import difflib
import enum
import functools
import json
import math
import sys
import types
import typing
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar

from pipespec.core.errors import DocumentError

T = TypeVar("T")

# pandas' own default missing-value markers (``read_csv``'s ``keep_default_na``). The one list:
# the reader passes it to the CSV parser, and a column declared numeric in ``dataset.dtypes``
# reads these (and ``dataset.na_values``) as missing even where ``keep_default_na`` is false.
DEFAULT_NA_VALUES = (
    "",
    "#N/A",
    "#N/A N/A",
    "#NA",
    "-1.#IND",
    "-1.#QNAN",
    "-NaN",
    "-nan",
    "1.#IND",
    "1.#QNAN",
    "<NA>",
    "N/A",
    "NA",
    "NULL",
    "NaN",
    "None",
    "n/a",
    "nan",
    "null",
)


# --- the (de)serialiser ------------------------------------------------------------------


def plain(value: Any, digits: int | None = None) -> Any:
    """A numpy scalar (or anything with ``.item()``) as the plain Python value JSON holds.
    Exact types only: ``numpy.float64`` is a ``float`` but YAML's emitter cannot write it.
    With ``digits``, a float is rounded to that many decimals and a NaN or infinity becomes
    None (JSON's null): what a report writes."""
    if not (value is None or type(value) in (bool, int, float, str)):
        if isinstance(value, enum.Enum):
            value = value.value
        else:
            item = getattr(value, "item", None)
            value = item() if callable(item) else value
    if digits is not None and isinstance(value, float):
        return round(value, digits) if math.isfinite(value) else None
    return value


def to_json(value: Any, *, digits: int | None = None) -> Any:
    """Any document (or part of one) as plain JSON data: dataclasses as objects (fields in
    declaration order; fields marked ``omit_none`` left out while None), tuples as lists;
    ``digits`` as in :func:`plain`."""
    kind = type(value)
    if kind is str or kind is int or kind is bool or value is None:
        return value  # most of a document's values: plain as they are
    if kind is float and digits is None:
        return value
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        out: dict[str, Any] = {}
        for f in dataclasses.fields(value):
            item = getattr(value, f.name)
            if item is None and f.metadata.get("omit_none"):
                continue
            out[f.metadata.get("key", f.name)] = to_json(item, digits=digits)
        return out
    if isinstance(value, dict):
        return {str(plain(k)): to_json(v, digits=digits) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_json(v, digits=digits) for v in value]
    return plain(value, digits)


def from_json(cls: type[T], data: Any, where: str = "", *, lenient: bool = False) -> T:
    """``data`` (parsed JSON) as an instance of the document class ``cls``; a
    ``DocumentError`` names the field path of anything that does not fit.

    ``lenient`` reads values as a hand-written YAML config gives them (the behaviour checks of
    ``params.yaml`` or of a checks file): a whole number where a float is declared becomes a
    float (``shift: 24`` is 24.0), a float with no fraction where an int is declared an int,
    a number where text is declared its text, and ``???`` (OmegaConf's missing value) is a
    value still to give. Without it a document is read as written, so that writing it again
    gives the same bytes."""
    return typing.cast(T, _convert(cls, data, where or cls.__name__, lenient))


def dumps(value: Any) -> bytes:
    """Stable JSON bytes of a document: sorted keys, 2-space indent, trailing newline."""
    return (json.dumps(to_json(value), indent=2, sort_keys=True, allow_nan=False) + "\n").encode()


MISSING = "???"  # OmegaConf's missing value: a field with this default must be given


@functools.cache
def _hints(cls: type) -> dict[str, Any]:
    """A document class's resolved field types, once per class: resolving them is most of
    reading a document (a transforms document of 55 columns: 0.1 s of 0.13 s). Read-only."""
    module = sys.modules[cls.__module__]
    return typing.get_type_hints(cls, vars(module))


def _convert(tp: Any, data: Any, where: str, lenient: bool = False) -> Any:
    if tp is Any:
        return data
    if lenient and isinstance(data, str) and data == MISSING:
        raise DocumentError(f"{where}: a value is required")
    origin = typing.get_origin(tp)
    if origin is Literal:
        if data in typing.get_args(tp) and isinstance(data, str):
            return data
        allowed = ", ".join(str(a) for a in typing.get_args(tp))
        raise DocumentError(f"{where}: expected {allowed}, not {_shown(data)}")
    if origin in (typing.Union, types.UnionType):
        options = typing.get_args(tp)
        tags = _tags(options)
        if tags:  # a tagged union: the class is the one its tag names
            if not isinstance(data, dict):
                raise DocumentError(f"{where}: expected an object, not {_kind(data)}")
            tag = data.get(TAG)
            if not isinstance(tag, str) or tag not in tags:
                raise DocumentError(
                    f"{where}: unknown {TAG} {_shown(tag)}; {TAG}s: {', '.join(sorted(tags))}"
                )
            return _convert(tags[tag], data, f"{where} ({TAG} {tag})", lenient)
        if data is None and type(None) in options:
            return None
        errors = []
        for option in options:
            if option is type(None):
                continue
            try:
                return _convert(option, data, where, lenient)
            except DocumentError as exc:
                errors.append(exc)
        raise errors[0] if errors else DocumentError(f"{where}: unexpected null")
    if dataclasses.is_dataclass(tp):
        if not isinstance(data, dict):
            raise DocumentError(f"{where}: expected an object, not {_kind(data)}")
        assert isinstance(tp, type)
        hints = _hints(tp)
        known = {f.metadata.get("key", f.name): f for f in dataclasses.fields(tp)}
        unknown = sorted(str(k) for k in set(data) - set(known))
        if unknown:
            close = difflib.get_close_matches(unknown[0], list(known), n=1)
            raise DocumentError(
                f"{where}: unknown field '{unknown[0]}'",
                hint=(f"Did you mean '{close[0]}'? " if close else "")
                + f"Fields: {', '.join(known)}",
            )
        kwargs = {}
        for key, f in known.items():
            if key not in data:
                if (
                    f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
                ) or (isinstance(f.default, str) and f.default == MISSING):
                    raise DocumentError(f"{where}: field '{key}' is missing")
                continue
            kwargs[f.name] = _convert(hints[f.name], data[key], f"{where}.{key}", lenient)
        try:
            return tp(**kwargs)
        except DocumentError as exc:  # a document's own check (``__post_init__``)
            raise DocumentError(f"{where}: {exc.message}") from None
    if origin in (list, tuple):
        if not isinstance(data, list) and not (lenient and isinstance(data, tuple)):
            raise DocumentError(f"{where}: expected a list, not {_kind(data)}")
        args = typing.get_args(tp)
        item = args[0] if args else Any
        values = [_convert(item, v, f"{where}[{i}]", lenient) for i, v in enumerate(data)]
        return tuple(values) if origin is tuple else values
    if origin is dict:
        if not isinstance(data, dict):
            raise DocumentError(f"{where}: expected an object, not {_kind(data)}")
        args = typing.get_args(tp)
        item = args[1] if len(args) == 2 else Any
        return {str(k): _convert(item, v, f"{where}.{k}", lenient) for k, v in data.items()}
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        try:
            return tp(data)
        except ValueError:
            allowed = ", ".join(str(m.value) for m in tp)
            raise DocumentError(f"{where}: '{data}' is not one of {allowed}") from None
    number = isinstance(data, int | float) and not isinstance(data, bool)
    if tp is float:
        if number:
            return float(data) if isinstance(data, float) or lenient else data
        raise DocumentError(f"{where}: expected a number, not {_kind(data)}")
    if tp is int:
        if isinstance(data, int) and not isinstance(data, bool):
            return data
        if lenient and number and math.isfinite(data) and float(data).is_integer():
            return int(data)
        raise DocumentError(f"{where}: expected an integer, not {_kind(data)}")
    if lenient and tp is str and (number or isinstance(data, bool)):
        return str(data)
    if tp in (str, bool):
        if type(data) is tp:
            return data
        raise DocumentError(f"{where}: expected {tp.__name__}, not {_kind(data)}")
    raise DocumentError(f"{where}: cannot read a value of type {tp}")


TAG = "op"  # the field that names the class in a tagged union of documents


@functools.lru_cache(maxsize=64)
def _tags(options: tuple[Any, ...]) -> dict[str, type] | None:
    """``{tag: class}`` when every option is a document class whose ``op`` is a Literal."""
    found: dict[str, type] = {}
    for option in options:
        if not (dataclasses.is_dataclass(option) and isinstance(option, type)):
            return None
        hint = _hints(option).get(TAG)
        if typing.get_origin(hint) is not Literal:
            return None
        for value in typing.get_args(hint):
            found[value] = option
    return found


def _shown(data: Any) -> str:
    """A value for a message: short, and without control characters."""
    text = repr(data)
    return text if len(text) <= 60 else text[:57] + "..."


def _kind(data: Any) -> str:
    if data is None:
        return "null"
    return {dict: "an object", list: "a list", str: "a string", bool: "a boolean"}.get(
        type(data), "a number" if isinstance(data, int | float) else type(data).__name__
    )


# --- reading -----------------------------------------------------------------------------

SEPARATORS = {"\\t": "\t", "tab": "\t", "space": " "}  # awkward to type on a command line
DTYPES = {"float": "float64", "int": "Int64", "str": "str", "category": "str", "bool": "boolean"}
FORMATS = ("csv", "parquet", "jsonl")


@dataclass(frozen=True)
class ReadOptions:
    """How the dataset's files are read: every reading option of a dataset config.

    ``load`` reads the training files with it; the bundle stores it, so ``pipespec predict``,
    ``monitor`` and the replay of serve logs read any file the training config could read
    with the values training saw.
    """

    format: str = "csv"  # csv | parquet | jsonl: how a file without a known extension is read
    sep: str = ","
    header: bool = True
    columns: tuple[str, ...] | None = None  # names when header is false
    na_values: tuple[str, ...] = ()  # extra missing-value markers
    keep_default_na: bool = True  # false: 'NA', 'None', '' ... stay text
    strip: bool = False  # spaces around text values and names are stripped
    comment: str | None = None  # lines starting with it are skipped
    encoding: str = "utf-8"
    dtypes: dict[str, str] = field(default_factory=dict)  # {column: float|int|str|category|bool}
    # true: in a column read as numbers, a token that is not a finite number is read as
    # missing (``dataset.coerce_numeric``); ``numeric`` names those columns (the package
    # stage fills it from the input schema). Both left out of the JSON while unset.
    coerce_numeric: bool | None = field(default=None, metadata={"omit_none": True})
    numeric: tuple[str, ...] | None = field(default=None, metadata={"omit_none": True})

    @classmethod
    def from_dataset(cls, ds: Any) -> ReadOptions:
        """The reading options of a ``dataset`` config group (a mapping)."""
        source = str(ds.get("source") or "csv")
        columns = ds.get("columns")
        return cls(
            format=source if source in FORMATS else "parquet",  # embedded: a table in memory
            sep=SEPARATORS.get(str(ds.get("sep", ",")), str(ds.get("sep", ","))),
            header=bool(ds.get("header", True)),
            columns=tuple(str(c) for c in columns) if columns else None,
            na_values=tuple(str(v) for v in ds.get("na_values") or ()),
            keep_default_na=bool(ds.get("keep_default_na", True)),
            strip=bool(ds.get("strip", False)),
            comment=ds.get("comment"),
            encoding=str(ds.get("encoding") or "utf-8"),
            dtypes={str(k): str(v) for k, v in dict(ds.get("dtypes") or {}).items()},
            coerce_numeric=True if ds.get("coerce_numeric") else None,
        )

    @property
    def missing_markers(self) -> tuple[str, ...]:
        """Text the CSV parser reads as missing."""
        defaults = DEFAULT_NA_VALUES if self.keep_default_na else ()
        return tuple(dict.fromkeys([*defaults, *self.na_values]))

    def csv_kwargs(self) -> dict[str, Any]:
        """``pandas.read_csv`` keywords (Dask's ``read_csv`` takes the same)."""
        return {
            "sep": self.sep,
            "header": 0 if self.header else None,
            "names": list(self.columns) if self.columns else None,
            "na_values": list(self.na_values) or None,
            "keep_default_na": self.keep_default_na,
            "skipinitialspace": self.strip,
            "comment": self.comment,
            "encoding": self.encoding,
        }


# --- the input schema --------------------------------------------------------------------

NUMERIC = "numeric"
CATEGORICAL = "categorical"
DATETIME = "datetime"
KINDS = (NUMERIC, CATEGORICAL, DATETIME)
RAW_TYPES = ("int", "float", "bool", "str", "datetime")


@dataclass(frozen=True)
class Column:
    """One raw input column as the model saw it in training."""

    name: str
    type: str  # numeric | categorical | datetime
    dtype: str  # int | float | bool | str | datetime: the raw type in training
    nullable: bool  # training had missing values here
    min: float | None = None  # observed (numeric)
    max: float | None = None
    low: float | None = None  # usual range (numeric): observed widened by range_margin
    high: float | None = None
    categories: tuple[str, ...] | None = None  # observed (categorical); None: too many to keep
    format: str | None = None  # datetime: the format the transforms parse with

    def __post_init__(self) -> None:
        if self.type not in KINDS or self.dtype not in RAW_TYPES:
            raise DocumentError(f"column '{self.name}': unknown type {self.type}/{self.dtype}")

    def expected(self) -> str:
        """What a usual value looks like, for messages."""
        if self.type == NUMERIC:
            kind = "a boolean" if self.dtype == "bool" else "a number"
            if self.dtype == "str":
                kind = "a number (or numeric text)"
            if self.low is not None and self.high is not None:
                kind += f" in [{self.low:.6g}, {self.high:.6g}]"
        elif self.type == DATETIME:
            kind = "a date/time string" + (f" like {self.format!r}" if self.format else "")
        else:
            kind = {
                "str": "a string",
                "int": "an integer",
                "float": "a number",
                "bool": "a boolean",
                "datetime": "a date/time string",
            }[self.dtype]
            if self.categories is not None:
                shown = ", ".join(repr(c) for c in self.categories[:8])
                more = f", ... ({len(self.categories)} in all)" if len(self.categories) > 8 else ""
                kind += f" among {shown}{more}"
        return kind + (" or null" if self.nullable else "")


@dataclass(frozen=True)
class InputSchema:
    """Every raw column the model needs, in the order the transforms list them."""

    columns: tuple[Column, ...]
    ignored: tuple[str, ...] = ()  # columns seen in training but not used (ids, leakage, ...)

    @property
    def names(self) -> list[str]:
        return [c.name for c in self.columns]

    def column(self, name: str) -> Column:
        for col in self.columns:
            if col.name == name:
                return col
        raise KeyError(name)


# --- output and policy -------------------------------------------------------------------


@dataclass(frozen=True)
class Output:
    """What the model answers."""

    task: str  # binary | multiclass | regression
    target: str
    classes: list[Any] | None = None  # labels, in class-code order (classification)
    threshold: float | None = None  # binary: probability at which the label is the second class


def class_columns(classes: list[Any]) -> list[str]:
    """The output columns of a multiclass model's class probabilities, named after the class
    labels (``p_A``, ``p_B``, ...: ``p_`` keeps them apart from ``label``, ``row`` and the
    input columns), in class-code order; ``p_0..p_k`` when two labels read the same."""
    names = [f"p_{c}" for c in classes]
    return names if len(set(names)) == len(names) else [f"p_{k}" for k in range(len(classes))]


@dataclass(frozen=True)
class Strictness:
    """Which kinds of unusual input are refused instead of predicted with a warning."""

    out_of_range: bool = False  # a number outside the usual range
    unseen_category: bool = False  # a category training never saw
    unexpected_null: bool = False  # a null where training had none


@dataclass(frozen=True)
class ServingPolicy:
    """How predict and serve treat input, and their limits."""

    on_invalid: str = "fail"  # predict: refused rows stop the run (fail) or are left out (skip)
    max_records: int = 1000
    max_body_bytes: int = 1 << 20
    range_margin: float | None = 0.5
    strict: Strictness = field(default_factory=Strictness)
    num_threads: int = 1


@dataclass(frozen=True)
class Contract:
    """The train/serve contract (the bundle's ``schema.json``): how to read a file, what a
    record must look like, what the model answers, and what serving refuses."""

    schema: InputSchema
    reading: ReadOptions
    output: Output
    policy: ServingPolicy


# --- fitted transforms -------------------------------------------------------------------


@dataclass(frozen=True)
class TargetSpec:
    """The label: its column, the task, the class labels (classification) and the map
    ``features.target_map`` applies to raw labels first."""

    name: str
    task: str
    classes: list[Any] | None = field(default=None, metadata={"omit_none": True})
    map: dict[str, Any] | None = field(default=None, metadata={"omit_none": True})


@dataclass(frozen=True)
class InputSpec:
    """A raw column the transforms read, and its inferred kind."""

    name: str
    type: str  # numeric | categorical | datetime


@dataclass(frozen=True)
class FeatureSpec:
    """A model input column; a categorical one carries its categories (code = position)."""

    name: str
    type: str  # numeric | categorical
    categories: list[str] | None = field(default=None, metadata={"omit_none": True})


# The steps of the transforms document: one class per op, told apart by their ``op`` field
# (a tagged union: ``from_json`` picks the class by it, so an unknown op or a field an op
# does not take is refused naming the step). The interpreter is
# ``pipespec.bundle.transforms``; ``OPS`` there maps each class to its function.


@dataclass(frozen=True, kw_only=True)
class RenameStep:
    """Rename columns ``{old: new}``."""

    op: Literal["rename"] = "rename"
    map: dict[str, str]


@dataclass(frozen=True, kw_only=True)
class ToNumericStep:
    """A column as numbers (text parsed, booleans 0/1)."""

    op: Literal["to_numeric"] = "to_numeric"
    column: str


@dataclass(frozen=True, kw_only=True)
class DatePartsStep:
    """A date column as numeric parts ``COLUMN_PART``; the column itself goes."""

    op: Literal["date_parts"] = "date_parts"
    column: str
    parts: list[str]
    format: str | None = None


@dataclass(frozen=True, kw_only=True)
class DeriveStep:
    """A new numeric column computed from others: ``expr`` in the grammar of
    ``pipespec.core.expression`` (parsed, and checked, when the document is read)."""

    op: Literal["derive"] = "derive"
    column: str
    expr: str
    uses: list[str]

    def __post_init__(self) -> None:
        from pipespec.core.expression import parse

        found = parse(self.expr)  # ExpressionError (a DocumentError) names the token
        unlisted = sorted(set(found.columns) - set(self.uses))
        if unlisted:
            raise DocumentError(
                f"derive step '{self.column}': '{self.expr}' reads column(s) "
                f"{', '.join(unlisted)} that 'uses' does not list"
            )

    @property
    def expression(self) -> Any:
        from pipespec.core.expression import parse

        return parse(self.expr)  # cached


@dataclass(frozen=True, kw_only=True)
class Log1pStep:
    """``log(1 + x)``; values at or below -1 become missing."""

    op: Literal["log1p"] = "log1p"
    column: str


@dataclass(frozen=True, kw_only=True)
class ClipStep:
    """Values outside ``[lower, upper]`` set to the bound (a null bound: that side is open)."""

    op: Literal["clip"] = "clip"
    column: str
    lower: float | None = None
    upper: float | None = None


@dataclass(frozen=True, kw_only=True)
class BinStep:
    """Quantile bins: the code of the bin each value falls in, by the fitted ``edges``."""

    op: Literal["bin"] = "bin"
    column: str
    edges: list[float]


@dataclass(frozen=True, kw_only=True)
class ImputeStep:
    """Missing values of a column filled with ``value`` (and a ``COLUMN_missing`` 0/1 column
    with ``indicator``)."""

    op: Literal["impute"] = "impute"
    column: str
    value: Any = None
    indicator: bool = False


@dataclass(frozen=True, kw_only=True)
class CategoricalStep:
    """Text keys as codes 0..K-1 in the fitted order; unseen ones the 'other' code K."""

    op: Literal["categorical"] = "categorical"
    column: str
    categories: list[str]
    other: bool = False  # featurize writes it always (features.other_bucket)


@dataclass(frozen=True, kw_only=True)
class OnehotStep:
    """One 0/1 column ``COLUMN=CATEGORY`` per fitted category; the column itself goes."""

    op: Literal["onehot"] = "onehot"
    column: str
    categories: list[str]


@dataclass(frozen=True, kw_only=True)
class CustomStep:
    """A user's transform, ``package.module:Class`` with its fitted ``state``. Loaded only
    when the host allows the module by name and its source matches the hash the bundle's
    manifest recorded (``pipespec.bundle.bundle``)."""

    op: Literal["custom"] = "custom"
    fn: str
    state: Any = None

    def __post_init__(self) -> None:
        module, sep, name = self.fn.partition(":")
        parts = module.split(".")
        if not sep or not name.isidentifier() or not all(p.isidentifier() for p in parts):
            raise DocumentError(
                f"custom step: '{self.fn}' is not an import path 'package.module:Class'"
            )
        if any(p.startswith("__") for p in (*parts, name)):
            raise DocumentError(f"custom step: '{self.fn}' names a dunder")

    @property
    def module(self) -> str:
        return self.fn.partition(":")[0]


Step = (
    RenameStep
    | ToNumericStep
    | DatePartsStep
    | DeriveStep
    | Log1pStep
    | ClipStep
    | BinStep
    | ImputeStep
    | CategoricalStep
    | OnehotStep
    | CustomStep
)


def step_from(data: Any, where: str = "step") -> Step:
    """One step from plain data (``{"op": NAME, ...}``), typed; ``DocumentError`` otherwise."""
    return from_json(Step, data, where)  # type: ignore[arg-type]


@dataclass(frozen=True)
class Transforms:
    """The fitted transforms (``transforms.json``), written by featurize and interpreted by
    ``pipespec.bundle.transforms``: typed steps, one class per op."""

    version: int
    target: TargetSpec
    inputs: list[InputSpec]
    steps: list[Step]
    features: list[FeatureSpec]
    dropped: list[str] = field(default_factory=list)

    @property
    def feature_names(self) -> list[str]:
        return [f.name for f in self.features]


# --- tables ------------------------------------------------------------------------------


@dataclass(frozen=True)
class TableMeta:
    """What a table written by a stage says about itself (its Parquet metadata)."""

    target: str | None = None
    task: str | None = None
    weight: str | None = None
    classes: list[Any] | None = field(default=None, metadata={"omit_none": True})
    categorical: list[str] | None = field(default=None, metadata={"omit_none": True})
    features: list[str] | None = field(default=None, metadata={"omit_none": True})
    # load's count, per column, of the values ``dataset.coerce_numeric`` read as missing
    coerced: dict[str, int] | None = field(default=None, metadata={"omit_none": True})


# --- the model card ----------------------------------------------------------------------


@dataclass(frozen=True)
class CardModel:
    """The model in a card."""

    task: str
    target: str
    classes: list[Any] | None
    threshold: float | None
    trees: int
    objective: str | None
    feature_names: list[str]


@dataclass(frozen=True)
class TrainingData:
    """What the model was trained from: the training table's hash and size."""

    sha256: str
    rows: int
    profiled_rows: int
    columns: int
    # values that ``dataset.coerce_numeric`` read as missing at load, per column (the
    # dataset's files, before sampling and split); left out while none were
    coerced_missing: dict[str, int] | None = field(default=None, metadata={"omit_none": True})


@dataclass(frozen=True)
class Card:
    """The model card: what the model is, what it was trained from and with, how it did in
    training, and the versions that made it. No timestamp and no hash of pipespec's own
    code: a refactor that changes no behaviour leaves the bundle's bytes as they were."""

    name: str
    bundle_format: int
    env: str
    pipespec: str  # the version that built the bundle
    model: CardModel
    features: list[dict[str, Any]]
    ignored: list[str]
    metrics: dict[str, Any]  # the train stage's metrics (evaluation scores the bundle later)
    params: dict[str, Any]
    data: dict[str, TrainingData]
    inputs: dict[str, str]  # SHA-256 of every input the package stage was given
    versions: dict[str, str]
    git: dict[str, Any] | None = None
