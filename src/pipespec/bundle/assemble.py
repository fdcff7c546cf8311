"""Assembling a bundle: the files of ``models/bundle/`` from a trained model, its fitted
transforms and the raw training rows, written atomically.

``assemble`` infers the input schema from the raw training rows, puts it with the reading
options, the output and the serving policy into the train/serve contract (``schema.json``),
profiles the training rows and the model's scores on them for drift monitoring, writes the
model card (JSON and Markdown) and the manifest. The package stage reads its inputs and
calls it; tests and other commands can build a bundle the same way without a pipeline.
Nothing here reads ``params.yaml``: the configuration arrives as a typed ``Settings``. No
timestamps and no hash of pipespec's own code go in, so the same inputs and versions give
the same bytes.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipespec import __version__
from pipespec.bundle import bundle as files
from pipespec.bundle.bundle import Bundle, invalid_rows_error
from pipespec.bundle.card import markdown, versions
from pipespec.bundle.inputs import Checked, infer
from pipespec.bundle.profile import CALIBRATION, THRESHOLD_KEYS, calibration, reference
from pipespec.bundle.transforms import encode_target, load_custom
from pipespec.bundle.transforms import load as load_transforms
from pipespec.core.documents import (
    Card,
    CardModel,
    Contract,
    CustomStep,
    Output,
    ReadOptions,
    ServingPolicy,
    TrainingData,
    dumps,
    to_json,
)
from pipespec.core.errors import ConfigError, DataError

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd
    import pyarrow as pa

# Training rows (a seeded sample) the drift reference profile describes. 50,000 keeps the
# reference's own sampling noise far below every alert (docs/architecture.md, "The drift
# profile's sample"): a 10-bin PSI of about 9/50,000 = 0.0002 between two samples of the same
# data against a 0.2 threshold, 5,000 rows per decile bin, and a CDF standard error of at
# most 0.0022 at the 99 percentiles; above it, each row costs the package stage a prediction.
PROFILE_ROWS = 50_000
CALIBRATION_ROWS = 50_000  # valid rows (seeded sample) the monitor's calibration is measured on


@dataclass(frozen=True)
class Settings:
    """What the configuration decides about a bundle. The package stage fills it from
    ``dataset``, ``evaluation``, ``production``, ``env``, ``compute`` and ``seed``."""

    name: str  # the card's name: DATASET-MODEL
    env: str
    reading: ReadOptions = field(default_factory=ReadOptions)
    policy: ServingPolicy = field(default_factory=ServingPolicy)
    threshold: float = 0.5  # the binary decision threshold (evaluation.threshold)
    optimize_threshold: bool = False  # binary: the F1-best threshold on the valid rows instead
    ignored: tuple[str, ...] = ()  # raw columns the model does not read (dataset.drop, weight)
    profile_bins: int = 10
    monitor: Mapping[str, Any] = field(default_factory=dict)  # drift thresholds, into the profile
    seed: int = 0  # of the profile's sample of the training rows
    params: Mapping[str, Any] = field(default_factory=dict)  # recorded in the card
    git: Mapping[str, Any] | None = None  # HEAD and dirty, recorded in the card


@dataclass(frozen=True)
class Sources:
    """How messages and the card name the inputs: a description of the training and valid
    rows, the SHA-256 of each input file, and the count of all training rows and columns
    when ``train`` holds a sample of the rows or only the columns the model reads."""

    train: str = "the training rows"
    valid: str = "the valid rows"
    transforms: str = "transforms.json"
    hashes: Mapping[str, str] = field(default_factory=dict)  # input name -> SHA-256
    train_rows: int | None = None
    train_columns: int | None = None  # when ``train`` holds only the columns the model reads
    coerced: Mapping[str, int] | None = None  # load's coerce_numeric count (TableMeta.coerced)


def assemble(
    target: str | Path,
    *,
    model_text: bytes,
    transforms_text: bytes,
    train: pd.DataFrame | pa.Table | Any,
    settings: Settings,
    valid: pd.DataFrame | Callable[[], pd.DataFrame | None] | None = None,
    metrics: Mapping[str, Any] | None = None,
    sources: Sources | None = None,
) -> Bundle:
    """Build the bundle of ``model_text`` (LightGBM's text format) and ``transforms_text``
    (the fitted transforms document) for the raw training rows ``train``, and write it to
    ``target`` atomically. Returns the bundle as written (its ``sha`` names it).

    ``train`` may be an Arrow table (a Parquet file's rows, read without pandas): the schema
    is then inferred on its columns as they are, and only the profile's sample becomes
    pandas; the bundle is the one its pandas frame gives. It may also be any rows with
    ``TableRows``' interface (``columns``, ``len``, a column by name as ``infer`` takes it,
    ``sample``): the package stage's rows read a row group at a time.

    ``valid`` (the held-out rows the monitor's calibration is measured on) may be a function
    that reads them: it is then called beside the profile's work, on another thread, and the
    held-out rows are checked and scored there too (reading Parquet and LightGBM's scoring
    work without the GIL, beside the schema's and the profile's Python)."""
    sources = sources or Sources()
    transforms = load_transforms(json.loads(transforms_text), sources.transforms)
    # the project's own custom transforms (features.custom): their sources are hashed into
    # the manifest before they are imported, so a host can check them before it imports them
    modules = {s.module for s in transforms.steps if isinstance(s, CustomStep)}
    custom_hashes = files.source_hashes(modules)
    custom = {s.fn: load_custom(s.fn) for s in transforms.steps if isinstance(s, CustomStep)}
    label = transforms.target
    rows = TableRows(train) if _is_table(train) else train
    missing = [c.name for c in transforms.inputs if c.name not in rows.columns]
    if missing:
        raise DataError(
            f"{sources.train} lack feature column(s) {', '.join(missing)}: a bundle describes "
            "the raw training rows (the split stage's train output), not featurized ones"
        )
    ignored = sorted({*settings.ignored, *transforms.dropped} - {label.name})
    schema = infer(
        rows, transforms, range_margin=settings.policy.range_margin, ignored=list(ignored)
    )
    output = Output(
        task=label.task,
        target=label.name,
        classes=label.classes,
        threshold=float(settings.threshold) if label.task == "binary" else None,
    )
    bundle = Bundle(
        path=Path(target),
        sha="",
        manifest={},
        transforms=transforms,
        contract=Contract(schema, settings.reading, output, settings.policy),
        profile={},
        card={},
        model_text=model_text.decode("utf-8"),
        custom=custom,
    )
    valid_scores = None  # the scores of every valid row, when the threshold needed them
    if label.task == "binary" and settings.optimize_threshold:
        valid = valid() if callable(valid) else valid  # every row is needed first
        if valid is None or valid.empty:
            raise ConfigError(f"evaluation.optimize_threshold needs rows: {sources.valid} has none")
        best, valid_scores = _best_threshold(bundle, valid, sources.valid)
        threshold = round(best, 6)
        output = dataclasses.replace(output, threshold=threshold)
        bundle.contract = dataclasses.replace(bundle.contract, output=output)

    threads = settings.policy.num_threads
    _ = bundle.booster, bundle.feature_names  # made once, before a second thread uses them
    with ThreadPoolExecutor(max_workers=1) as side:
        held = side.submit(_held_out, bundle, valid, settings.seed, threads, valid_scores)
        profiled = (
            _sample(rows, PROFILE_ROWS, settings.seed)
            if _is_frame(rows)
            else rows.sample(PROFILE_ROWS, settings.seed)
        )
        checked = bundle.check(profiled)
        scores = bundle.score(checked, threads=threads)
        classes = label.classes or []
        profile = reference(schema, checked, scores, label.task, classes, settings.profile_bins)
        profile["thresholds"] = {
            k: settings.monitor[k] for k in THRESHOLD_KEYS if k in settings.monitor
        }
        found = held.result()
    if found is not None:
        # the monitor's checks on held-out rows: what unchanged data shows (monitor.py)
        held_checked, held_scores = found
        profile[CALIBRATION] = calibration(
            profile, held_checked, held_scores, label.task, classes, "valid"
        )

    booster = bundle.booster
    card = Card(
        name=settings.name,
        bundle_format=files.FORMAT_VERSION,
        env=settings.env,
        pipespec=__version__,
        model=CardModel(
            task=label.task,
            target=label.name,
            classes=label.classes,
            threshold=output.threshold,
            trees=booster.num_trees(),
            objective=_objective(model_text),
            feature_names=booster.feature_name(),
        ),
        features=[
            {**to_json(c), "categories": None if c.categories is None else len(c.categories)}
            for c in schema.columns
        ],
        ignored=list(schema.ignored),
        metrics=dict(metrics or {}),
        params=to_json(dict(settings.params)),
        data={
            "train": TrainingData(
                sha256=sources.hashes.get("train", ""),
                rows=len(rows) if sources.train_rows is None else sources.train_rows,
                profiled_rows=len(profiled),
                columns=len(rows.columns)
                if sources.train_columns is None
                else sources.train_columns,
                coerced_missing=dict(sources.coerced) if sources.coerced else None,
            )
        },
        inputs=dict(sources.hashes),
        versions=versions(),
        git=None if settings.git is None else dict(settings.git),
    )
    contents = {
        files.MODEL: model_text,
        files.TRANSFORMS: transforms_text,
        files.SCHEMA: dumps(bundle.contract),
        files.PROFILE: dumps(profile),
        files.CARD: dumps(card),
        files.CARD_MD: markdown(to_json(card)).encode("utf-8"),
    }
    bundle.sha = files.write(target, contents, custom_hashes)
    bundle.manifest = files.manifest_for(contents, custom_hashes)
    bundle.profile = profile
    bundle.card = to_json(card)
    return bundle


def _held_out(
    bundle: Bundle,
    valid: pd.DataFrame | Callable[[], pd.DataFrame | None] | None,
    seed: int,
    threads: int,
    valid_scores: np.ndarray | None,
) -> tuple[Checked, np.ndarray] | None:
    """The calibration's seeded sample of the held-out rows (``valid``, or what it reads),
    checked and scored; None without rows. ``valid_scores``: every row's scores, when the
    threshold needed them (every row valid, scores row by row): the sample's are theirs."""
    frame = valid() if callable(valid) else valid
    if frame is None or frame.empty:
        return None
    drawn = _sampled_rows(frame, CALIBRATION_ROWS, seed)  # drawn once
    held = _sample(frame, CALIBRATION_ROWS, seed, drawn)
    checked = bundle.check(held)
    if valid_scores is not None and drawn is not None:
        return checked, valid_scores[drawn]
    return checked, bundle.score(checked, threads=threads)


def _is_table(rows: Any) -> bool:
    import pyarrow as pa

    return isinstance(rows, pa.Table)


def _is_frame(rows: Any) -> bool:
    import pandas as pd

    return isinstance(rows, pd.DataFrame)


class TableRows:
    """An Arrow table's rows as ``infer`` reads a frame: its float64 columns as they are
    (Arrow finds their range and missing values without a copy), every other column as the
    pandas Series the table's ``to_pandas`` would hold; ``sample`` is ``_sample`` of that
    frame (the same rows, in order; a fresh row index)."""

    def __init__(self, table: pa.Table) -> None:
        self.table = table
        self.columns = list(table.column_names)

    def __len__(self) -> int:
        return int(self.table.num_rows)

    def __getitem__(self, name: str) -> Any:
        import pyarrow as pa

        column = self.table.column(name)
        if pa.types.is_float64(column.type):  # a float column whatever pandas' metadata says
            return column
        # through the table, so that its pandas metadata (an extension dtype) is honoured
        return self.table.select([name]).to_pandas()[name]

    def sample(self, rows: int, seed: int) -> pd.DataFrame:
        table = self.table
        if table.num_rows > rows:
            table = table.take(sample_positions(table.num_rows, rows, seed))
        return table.to_pandas(split_blocks=True)


def _sample(
    train: pd.DataFrame, rows: int, seed: int, drawn: np.ndarray | None = None
) -> pd.DataFrame:
    """At most ``rows`` of ``train``, drawn with ``seed``, in their order: the schema sees
    every row, the profile a sample. ``train.sample(n, random_state=seed).sort_index()``,
    drawn on the row numbers alone so that only the sampled rows are copied, once
    (``drawn``: ``_sampled_rows``' answer, when the caller has it already)."""
    if len(train) <= rows:
        return train
    if drawn is None:
        drawn = _sampled_rows(train, rows, seed)
    if drawn is None:
        return train.sample(n=rows, random_state=seed).sort_index()
    return train.take(drawn)


def _sampled_rows(train: pd.DataFrame, rows: int, seed: int) -> np.ndarray | None:
    """The row numbers ``_sample`` takes, in order; None when it samples by the index (an
    index not increasing or not unique)."""
    import numpy as np

    if len(train) <= rows:
        return np.arange(len(train))
    if not train.index.is_monotonic_increasing or not train.index.is_unique:
        return None
    return sample_positions(len(train), rows, seed)


def sample_positions(count: int, rows: int, seed: int) -> np.ndarray:
    """The row numbers, in order, of the seeded sample of ``rows`` of ``count`` rows that
    ``assemble`` profiles (``PROFILE_ROWS``) or calibrates on (``CALIBRATION_ROWS``): a
    caller that reads its rows from a file can read only these (the package stage's valid
    rows), and ``assemble`` then sees the same sample."""
    import numpy as np

    if count <= rows:
        return np.arange(count)
    # what ``frame.sample(n=rows, random_state=seed)`` draws (pandas' own call), without a
    # Series of the row numbers; the permutation behind it releases the GIL
    drawn = np.random.RandomState(seed).choice(count, size=rows, replace=False)
    return np.sort(drawn)


def _best_threshold(bundle: Bundle, valid: pd.DataFrame, where: str) -> tuple[float, np.ndarray]:
    """The F1-best threshold on the raw valid rows, scored through the bundle's own path,
    and the scores of the rows (every one valid)."""
    checked = bundle.check(valid)
    if checked.n_invalid:
        raise invalid_rows_error(checked, where)
    scores = bundle.score(checked, threads=bundle.policy.num_threads)
    y = encode_target(bundle.transforms.target, valid[bundle.output.target])
    return best_f1_threshold(y, scores), scores


def best_f1_threshold(y: np.ndarray, pred: np.ndarray) -> float:
    """The probability threshold with the highest F1 (ties: the lowest threshold)."""
    import numpy as np

    from pipespec.core.model_metrics import precision_recall_curve

    precision, recall, thresholds = precision_recall_curve(y, pred)
    f1 = 2 * precision[:-1] * recall[:-1] / np.maximum(precision[:-1] + recall[:-1], 1e-12)
    return float(thresholds[int(np.argmax(f1))])


def _objective(model_text: bytes) -> str | None:
    for line in model_text.decode("utf-8", errors="replace").splitlines()[:30]:
        if line.startswith("objective="):
            return line.split("=", 1)[1]
    return None
