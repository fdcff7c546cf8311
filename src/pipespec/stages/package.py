"""The ``package`` stage: the production bundle in ``models/bundle/``, one DVC output.

It reads its inputs (the trained model, the fitted transforms, the raw training rows, and
optionally the raw valid rows and the train stage's metrics) and the configuration, and hands
them to ``pipespec.bundle.assemble``, which builds and writes the bundle: model, transforms,
the train/serve contract, the drift reference profile, the model card and the manifest.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import subprocess
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import Future
from pathlib import Path
from typing import Any

from pipespec.bundle.engine import import_lightgbm
from pipespec.core.console import console
from pipespec.core.errors import ConfigError, StageError
from pipespec.stages.context import StageContext
from pipespec.stages.parquet import (
    part_rows,
    read_arrow,
    read_row_groups,
    read_table,
    table_columns,
    table_meta,
)

# The kind's contract (docs/architecture.md, "Stage kinds")
READS = (
    "seed",
    "dataset",
    "split",
    "features",
    "model",
    "evaluation",
    "env",
    "compute.backend",
    "compute.num_threads",
    "production",
)
INPUTS = ("model", "transforms", "train")
# optional 'valid' (the monitor's calibration is measured on it, and
# evaluation.optimize_threshold picks the threshold on it) and 'metrics'
# (the train stage's, into the card); any input is hashed into the card
ANY_INPUTS = True
OUTPUTS = {"bundle": ("models/bundle", "out")}

SCHEMA_ROWS = 1_000_000  # training rows drawn from a partitioned table (compute=dask)


def run(ctx: StageContext) -> None:
    from concurrent.futures import ThreadPoolExecutor

    from pipespec.bundle.assemble import Settings, Sources, assemble
    from pipespec.core.documents import ReadOptions, ServingPolicy, Strictness

    prod = ctx.params["production"].to_dict()
    dataset = ctx.params["dataset"]
    evaluation = ctx.params["evaluation"]
    seed = int(ctx.params["seed"])
    optimize = bool(evaluation["optimize_threshold"])
    if optimize and "valid" not in ctx.inputs:
        raise ConfigError(
            f"stage '{ctx.name}': evaluation.optimize_threshold needs a 'valid' input "
            "(the raw valid split, split.valid)"
        )
    settings = Settings(
        name=f"{dataset['name']}-{ctx.params['model']['name']}",
        env=ctx.params["env"]["name"],
        reading=ReadOptions.from_dataset(dataset),
        policy=ServingPolicy(
            on_invalid=str(prod["on_invalid"]),
            max_records=int(prod["max_records"]),
            max_body_bytes=int(prod["max_body_bytes"]),
            range_margin=prod["range_margin"],
            strict=Strictness(**prod["strict"]),
            num_threads=int(ctx.params["compute"]["num_threads"]),
        ),
        threshold=float(evaluation["threshold"]),
        optimize_threshold=optimize,
        ignored=tuple(c for c in (*dataset["drop"], dataset.get("weight")) if c is not None),
        profile_bins=int(prod["profile_bins"]),
        monitor=prod["monitor"],
        seed=seed,
        params=_without_engine(ctx.params.to_dict()),
        git=git_commit(ctx.root) if prod["git_commit"] else None,
    )
    # LightGBM is imported while the training rows are read, and the inputs hashed (for the
    # card) while the bundle is assembled: Parquet decoding, hashlib and LightGBM's
    # prediction work without the GIL, and the card is the first to need a hash. The hashing
    # starts after the training rows are read, whose decoding keeps both CPUs of a small
    # machine busy, so that it runs beside the single-threaded schema and profile instead
    # (0.96x the stage's wall time at 1M rows). Arrow's Parquet reader is imported first, so
    # that the decode starts before LightGBM's import (which holds the GIL) does.
    import pyarrow.parquet  # noqa: F401

    with ThreadPoolExecutor(max_workers=1) as pool:
        imported = pool.submit(import_lightgbm)
        model_text = ctx.input("model").read_bytes()
        transforms_text = ctx.input("transforms").read_bytes()
        needed = _input_names(transforms_text)
        train, total_rows, columns = _training_rows(ctx.input("train"), seed=seed, needed=needed)
        hashes = _Hashes({k: pool.submit(_sha, p) for k, p in sorted(ctx.inputs.items())})
        # the valid rows calibrate monitoring (and pick the threshold, when asked): read
        # after the training rows (read beside them, the stage's peak was 140 MiB higher at
        # 1M rows), by ``assemble`` beside its schema and profile
        valid = (
            functools.partial(
                _valid_rows, ctx.input("valid"), needed, transforms_text, None if optimize else seed
            )
            if "valid" in ctx.inputs
            else None
        )
        metrics: dict[str, Any] = {}
        if "metrics" in ctx.inputs:
            metrics = json.loads(ctx.input("metrics").read_text(encoding="utf-8"))
        imported.result()
        if settings.reading.coerce_numeric:  # the columns load read as numbers, for serving
            reading = numeric_reading(settings.reading, train)
            settings = dataclasses.replace(settings, reading=reading)
        sources = Sources(
            train=f"input 'train' ({ctx.input('train')})",
            valid=f"input 'valid' ({ctx.inputs.get('valid')})",
            transforms=str(ctx.input("transforms")),
            hashes=hashes,
            train_rows=total_rows,
            train_columns=columns,
            coerced=table_meta(ctx.input("train")).coerced,  # load's count, passed on by split
        )
        bundle = assemble(
            ctx.output("bundle"),
            model_text=model_text,
            transforms_text=transforms_text,
            train=train,
            settings=settings,
            valid=valid,
            metrics=metrics,
            sources=sources,
        )
        hashes.resolve()  # a file that could not be read fails the stage even if unasked
    console().print(
        f"  bundle {bundle.sha[:12]}: {len(bundle.schema.columns)} input columns, "
        f"{bundle.card['model']['trees']} trees, profile of "
        f"{bundle.card['data']['train']['profiled_rows']:,} training rows -> {bundle.path}"
    )


def numeric_reading(reading: Any, train: Any) -> Any:
    """``reading`` naming the numeric columns of the raw training rows (a frame, or an Arrow
    table: the types its pandas frame has; a missing value changes only an int column's to
    float, or a bool column's to object, which does not change the answer): with
    ``coerce_numeric``, serving reads what is not a number there as missing, as load did."""
    import pandas as pd

    if not isinstance(train, pd.DataFrame):  # an Arrow table
        train = train.schema.empty_table().to_pandas()

    numeric = tuple(
        str(c) for c in train.columns
        if pd.api.types.is_numeric_dtype(train[c]) and not pd.api.types.is_bool_dtype(train[c])
    )  # fmt: skip
    return dataclasses.replace(reading, numeric=numeric)


def git_commit(root: Path) -> dict[str, Any] | None:
    """HEAD and whether the work tree has uncommitted changes; None outside git."""

    def git(*args: str) -> str | None:
        try:
            proc = subprocess.run(
                ["git", *args], cwd=root, capture_output=True, text=True, check=False, timeout=30
            )
        except (OSError, subprocess.TimeoutExpired):
            return None
        return proc.stdout.strip() if proc.returncode == 0 else None

    commit = git("rev-parse", "HEAD")
    if commit is None:
        return None
    status = git("status", "--porcelain", "--untracked-files=no")
    return {"commit": commit, "dirty": bool(status)}


def _input_names(transforms_text: bytes) -> list[str] | None:
    """The raw input columns the transforms document names (None if it cannot be read:
    ``assemble`` then says what is wrong with it)."""
    try:
        return [str(c["name"]) for c in json.loads(transforms_text)["inputs"]]
    except (ValueError, KeyError, TypeError):
        return None


def _valid_rows(
    path: Path, needed: list[str] | None, transforms_text: bytes, sample_seed: int | None = None
) -> Any:
    """The raw valid rows, only the columns the bundle's checks and the threshold read (the
    input columns and the target): the calibration checks each schema column alone, so the
    others change nothing. Every column when the transforms document cannot say which.

    With ``sample_seed`` (no threshold to pick on every row), only the rows of the
    calibration's seeded sample (``assemble.sample_positions``) become pandas: ``assemble``
    then finds no more than CALIBRATION_ROWS and profiles the same rows."""
    try:
        target = str(json.loads(transforms_text)["target"]["name"])
    except (ValueError, KeyError, TypeError):
        needed = None
    columns = None
    if needed is not None:
        available, _ = table_columns(path)
        wanted = {*needed, target}
        columns = [c for c in available if c in wanted] or None
    if sample_seed is None or path.is_dir():
        return read_table(path, columns=columns, memory_map=True)[0]
    from pipespec.bundle.assemble import CALIBRATION_ROWS

    return _sampled(path, columns, CALIBRATION_ROWS, sample_seed).to_pandas(split_blocks=True)


def _training_rows(path: Path, *, seed: int, needed: list[str] | None) -> tuple[Any, int, int]:
    """The training rows the schema and the drift profile are built from, the count of all
    of them and of their columns: every row of a single-file table as Arrow, only the
    ``needed`` columns read; of a partitioned one (compute=dask) at most SCHEMA_ROWS as
    pandas, drawn with a seeded generator part by part."""
    if not path.is_dir():
        # no pandas import before the read: Arrow decodes without the GIL while the other
        # thread imports LightGBM (and pandas with it). The rows stay Arrow: ``assemble``
        # infers the schema on them and makes pandas of the profile's sample only.
        available, _ = table_columns(path)
        wanted = None if needed is None else [c for c in available if c in set(needed)]
        from pipespec.bundle.assemble import PROFILE_ROWS

        if part_rows([path])[0] > PROFILE_ROWS:
            rows = _TrainingRows(path, wanted, seed)
            return rows, len(rows), len(available)
        table = read_arrow(path, wanted, memory_map=True)
        return table, table.num_rows, len(available)
    import numpy as np
    import pandas as pd

    from pipespec.stages import parquet

    parts = parquet.part_files(path)
    counts = parquet.part_rows(parts)
    total = sum(counts)
    share = min(1.0, SCHEMA_ROWS / max(total, 1))
    frames = []
    for index, part in enumerate(parts):
        frame = parquet.read_part(part)
        if share < 1:
            rng = np.random.default_rng([seed, index])
            frame = frame[rng.random(len(frame)) < share]
        frames.append(frame)
    train = pd.concat(frames, ignore_index=True)
    return train, total, len(train.columns)


def _sampled(
    path: Path,
    columns: list[str] | None,
    rows: int,
    seed: int,
    visit: Callable[[Any], None] | None = None,
) -> Any:
    """The seeded sample of ``rows`` rows of a Parquet file (``assemble.sample_positions``:
    the rows ``assemble`` draws; every row of a shorter table), in their order, only
    ``columns`` (None: all), as Arrow, read a row group at a time (``parquet.read_row_groups``);
    ``visit`` sees each group before it is let go."""
    from pipespec.bundle.assemble import sample_positions

    def drawn(count: int) -> Any:
        return sample_positions(count, rows, seed) if count > rows else None

    return read_row_groups(path, columns, drawn, visit)


class _TrainingRows:
    """The training rows of a Parquet file longer than the profile's sample, as ``assemble``
    reads them (``assemble.TableRows``' interface, and its answers), read a row group at a
    time (``_sampled``) so that the stage never holds them all: each float64 column's range
    is found group by group (``inputs.FloatRange``) and the column let go, every other
    column is kept whole (a ``TableRows`` of them), and the profile's sample is drawn on the
    way. At 1M rows of 55 columns that is 330 MB the stage no longer allocates, which on a
    machine whose fresh memory is slow to fault in cost more than the reading itself."""

    def __init__(self, path: Path, columns: list[str] | None, seed: int) -> None:
        import pyarrow as pa

        from pipespec.bundle.assemble import PROFILE_ROWS, TableRows
        from pipespec.bundle.inputs import FloatRange

        self.path, self.seed = path, seed
        self.ranges: dict[str, FloatRange] = {}
        kept: list[Any] = []

        def visit(group: Any) -> None:
            floats = [f.name for f in group.schema if pa.types.is_float64(f.type)]
            for name in floats:
                self.ranges[name] = self.ranges.get(name, FloatRange()).add(group.column(name))
            kept.append(group.drop_columns(floats))

        self.drawn = _sampled(path, columns, PROFILE_ROWS, seed, visit)
        self.schema = self.drawn.schema
        self.columns = list(self.schema.names)
        self.kept = TableRows(pa.concat_tables(kept))  # at least one group: a long table

    def __len__(self) -> int:
        return len(self.kept)

    def __getitem__(self, name: str) -> Any:
        from pipespec.bundle.inputs import FloatColumn

        found = self.ranges.get(name)
        if found is None:
            return self.kept[name]
        return FloatColumn(found, lambda: read_arrow(self.path, [name]).column(0).to_pandas())

    def sample(self, rows: int, seed: int) -> Any:
        from pipespec.bundle.assemble import PROFILE_ROWS

        if (rows, seed) != (PROFILE_ROWS, self.seed):
            raise ValueError(f"drawn {PROFILE_ROWS} rows with seed {self.seed}, not {rows}, {seed}")
        return self.drawn.to_pandas(split_blocks=True)


class _Hashes(Mapping[str, str]):
    """The inputs' SHA-256, computed on the pool while the stage works: the first look
    waits for them (a file that cannot be read raises its ``StageError`` then)."""

    def __init__(self, pending: dict[str, Future[str]]) -> None:
        self._pending = pending
        self._done: dict[str, str] | None = None

    def resolve(self) -> dict[str, str]:
        if self._done is None:
            self._done = {k: future.result() for k, future in self._pending.items()}
        return self._done

    def __getitem__(self, name: str) -> str:
        return self.resolve()[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self.resolve())

    def __len__(self) -> int:
        return len(self._pending)


def _sha(path: Path) -> str:
    """SHA-256 of a file, or of a directory's files (names and contents, in order)."""
    h = hashlib.sha256()
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    try:
        for file in files:
            if path.is_dir():
                h.update(file.relative_to(path).as_posix().encode() + b"\0")
            with open(file, "rb") as fh:
                while block := fh.read(1 << 20):
                    h.update(block)
    except OSError as exc:
        raise StageError(f"cannot read input {path}: {exc}") from None
    return h.hexdigest()


def _without_engine(params: dict[str, Any]) -> dict[str, Any]:
    """The card's params without ``production.engine``: the engine is the host's choice
    (the compile stage's, bundle/engine.py), so the bundle's bytes do not depend on it."""
    production = {k: v for k, v in params.get("production", {}).items() if k != "engine"}
    return {**params, "production": production} if "production" in params else params
