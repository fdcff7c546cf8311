"""The production bundle: one directory, every file listed with its SHA-256 in
``manifest.json``, nothing pickled.

``write`` builds the directory next to its target and swaps it in, so a reader never sees a
half-written bundle. ``Bundle.load`` checks the format version and every file's hash before
it parses anything, and parses exactly the bytes it hashed; a tampered, truncated or
incompatible bundle is refused with the file at fault named.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipespec.bundle.inputs import Checked, check
from pipespec.bundle.transforms import load as load_transforms
from pipespec.core.documents import (
    Contract,
    InputSchema,
    Output,
    ReadOptions,
    ServingPolicy,
    Transforms,
    dumps,
    from_json,
)
from pipespec.core.errors import BundleError, DataError, DocumentError

if TYPE_CHECKING:
    import lightgbm as lgb
    import numpy as np
    import pandas as pd


FORMAT = "pipespec-bundle"
FORMAT_VERSION = 2  # 2: schema.json is the train/serve contract (reading options, policy)
MANIFEST = "manifest.json"
MODEL = "model.txt"
TRANSFORMS = "transforms.json"
SCHEMA = "schema.json"
PROFILE = "profile.json"
CARD = "card.json"
CARD_MD = "card.md"
FILES = (MODEL, TRANSFORMS, SCHEMA, PROFILE, CARD, CARD_MD)
DEFAULT_DIR = "models/bundle"


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def manifest_for(files: dict[str, bytes]) -> dict[str, Any]:
    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "files": {name: sha256(data) for name, data in sorted(files.items())},
    }


def write(target: str | os.PathLike[str], files: dict[str, bytes]) -> str:
    """Write ``files`` and their manifest as the directory ``target``, atomically.

    The directory is built beside ``target`` and renamed into place; a previous bundle is
    renamed away first and removed after. Returns the manifest's SHA-256 (the bundle's id).
    """
    target = Path(target)
    missing = [name for name in FILES if name not in files]
    if missing:
        raise BundleError(f"cannot write a bundle without {', '.join(missing)}")
    target.parent.mkdir(parents=True, exist_ok=True)
    clean_leftovers(target)
    manifest = dumps(manifest_for(files))
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.build-", dir=target.parent))
    try:
        for name, data in sorted(files.items()):
            (tmp / name).write_bytes(data)
        (tmp / MANIFEST).write_bytes(manifest)
        umask = os.umask(0)
        os.umask(umask)
        tmp.chmod(0o777 & ~umask)
        old = None
        if target.exists() or target.is_symlink():
            old = Path(tempfile.mkdtemp(prefix=f".{target.name}.old-", dir=target.parent))
            os.replace(target, old / "bundle")
        os.replace(tmp, target)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return sha256(manifest)


def clean_leftovers(target: Path) -> None:
    """Remove build and swap directories that a killed ``write`` left beside ``target``."""
    for pattern in (f".{target.name}.build-*", f".{target.name}.old-*"):
        for leftover in target.parent.glob(pattern):
            shutil.rmtree(leftover, ignore_errors=True)


def read_verified(path: Path) -> tuple[dict[str, Any], dict[str, bytes], str]:
    """The manifest, every file's verified bytes, and the manifest's SHA-256."""
    where = str(path)
    if not path.is_dir():
        raise BundleError(
            f"no bundle at {where}: not a directory",
            hint="Build one with `pipespec run` (the package stage writes models/bundle/), "
            "or fetch one with `dvc get REPO models/bundle --rev REV`.",
        )
    try:
        raw = (path / MANIFEST).read_bytes()
    except FileNotFoundError:
        raise BundleError(
            f"{where} is not a pipespec bundle: {MANIFEST} is missing",
            hint="Point --bundle at the directory the package stage writes (models/bundle).",
        ) from None
    try:
        manifest = json.loads(raw)
    except ValueError as exc:
        raise BundleError(f"{where}/{MANIFEST} is not valid JSON: {exc}") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise BundleError(f"{where}/{MANIFEST}: 'format' is not '{FORMAT}'")
    version = manifest.get("format_version")
    if not isinstance(version, int) or isinstance(version, bool):
        raise BundleError(f"{where}/{MANIFEST}: 'format_version' must be an integer")
    if version > FORMAT_VERSION:
        raise BundleError(
            f"bundle {where} has format version {version}; this pipespec reads version "
            f"{FORMAT_VERSION} only",
            hint="Upgrade pipespec on this host, or rebuild the bundle with this version.",
        )
    if version < FORMAT_VERSION:
        raise BundleError(
            f"bundle {where} has format version {version}, which this pipespec no longer reads "
            f"(it reads {FORMAT_VERSION})",
            hint="Rebuild it: `pipespec run -f` re-runs the package stage.",
        )
    listed = manifest.get("files")
    if not isinstance(listed, dict):
        raise BundleError(f"{where}/{MANIFEST}: 'files' must map file names to SHA-256 hashes")
    for name in FILES:
        if name not in listed:
            raise BundleError(f"{where}/{MANIFEST} does not list {name}: the bundle is incomplete")
    on_disk = {p.name for p in path.iterdir()} - {MANIFEST}
    extra = sorted(on_disk - set(listed))
    if extra:
        raise BundleError(
            f"bundle {where} holds {extra[0]}, which {MANIFEST} does not list: it was modified "
            "after it was built",
            hint="Fetch or rebuild the bundle; do not add files to it.",
        )
    contents: dict[str, bytes] = {}
    for name, expected in sorted(listed.items()):
        if "/" in name or name.startswith("."):
            raise BundleError(f"{where}/{MANIFEST} lists an invalid file name '{name}'")
        try:
            data = (path / name).read_bytes()
        except FileNotFoundError:
            raise BundleError(
                f"bundle {where} is missing {name}, which {MANIFEST} lists",
                hint="Fetch or rebuild the bundle.",
            ) from None
        if sha256(data) != expected:
            raise BundleError(
                f"bundle {where}: {name} does not match its SHA-256 in {MANIFEST}: the file was "
                "modified or corrupted after the bundle was built",
                hint="Refusing to load it. Fetch or rebuild the bundle "
                "(`dvc get REPO models/bundle --rev REV`, or `pipespec run`).",
            )
        contents[name] = data
    return manifest, contents, sha256(raw)


@dataclass
class Bundle:
    """A verified bundle, ready to check inputs and predict in-process.

    Every path that predicts (``predict`` here, batch prediction, the HTTP service, the
    evaluate stage, monitoring) goes ``check`` -> ``score``: the input schema's one check,
    then the transforms' one interpreter, then the model.
    """

    path: Path
    sha: str  # SHA-256 of manifest.json: names this exact bundle
    manifest: dict[str, Any]
    transforms: Transforms
    contract: Contract
    profile: dict[str, Any]
    card: dict[str, Any]
    model_text: str

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Bundle:
        """Load the bundle at ``path``, refusing it unless every file matches the manifest."""
        root = Path(path)
        manifest, files, sha = read_verified(root)
        docs: dict[str, Any] = {}
        for name in (TRANSFORMS, SCHEMA, PROFILE, CARD):
            try:
                docs[name] = json.loads(files[name])
            except ValueError as exc:
                raise BundleError(f"bundle {root}: {name} is not valid JSON: {exc}") from None
            if not isinstance(docs[name], dict):
                raise BundleError(f"bundle {root}: {name} must hold a JSON object")
        try:
            contract = from_json(Contract, docs[SCHEMA], SCHEMA)
        except DocumentError as exc:
            raise BundleError(f"bundle {root}: {exc}") from None
        try:
            transforms = load_transforms(docs[TRANSFORMS], f"bundle {root}: {TRANSFORMS}")
        except DataError as exc:
            raise BundleError(exc.message) from None
        if [c.name for c in transforms.inputs] != contract.schema.names:
            raise BundleError(
                f"bundle {root}: {SCHEMA} and {TRANSFORMS} disagree on the input columns"
            )
        model_text = files[MODEL].decode("utf-8", errors="replace")
        if not any(line.startswith("version=v") for line in model_text.splitlines()[:5]):
            raise BundleError(f"bundle {root}: {MODEL} is not a LightGBM text model")
        return cls(
            path=root,
            sha=sha,
            manifest=manifest,
            transforms=transforms,
            contract=contract,
            profile=docs[PROFILE],
            card=docs[CARD],
            model_text=model_text,
        )

    @property
    def schema(self) -> InputSchema:
        return self.contract.schema

    @property
    def policy(self) -> ServingPolicy:
        return self.contract.policy

    @property
    def reading(self) -> ReadOptions:
        return self.contract.reading

    @property
    def output(self) -> Output:
        return self.contract.output

    @cached_property
    def booster(self) -> lgb.Booster:
        import lightgbm as lgb

        try:
            return lgb.Booster(model_str=self.model_text)
        except lgb.basic.LightGBMError as exc:
            raise BundleError(f"bundle {self.path}: LightGBM cannot read {MODEL}: {exc}") from None

    @property
    def task(self) -> str:
        return self.output.task

    @property
    def classes(self) -> list[Any]:
        return list(self.output.classes or [])

    @property
    def threshold(self) -> float:
        return 0.5 if self.output.threshold is None else float(self.output.threshold)

    def check(
        self,
        rows: pd.DataFrame | Sequence[Mapping[str, Any]],
        *,
        typed: bool = False,
        first_row: int = 0,
    ) -> Checked:
        """Check raw rows (a frame, or JSON records with ``typed``) against the input schema
        under this bundle's serving policy (``pipespec.bundle.inputs.check``)."""
        return check(self.schema, rows, typed=typed, strict=self.policy.strict, first_row=first_row)

    def score(
        self, checked: Checked, rows: np.ndarray | None = None, *, threads: int = 1
    ) -> np.ndarray:
        """The model's raw output for ``rows`` of checked input (default: every row)."""
        import numpy as np

        from pipespec.bundle.transforms import matrix

        work = checked.take(rows) if rows is not None else dict(checked.work)
        n = checked.rows if rows is None else len(rows)
        if n == 0:
            width = len(self.classes) if self.task == "multiclass" else 0
            return np.zeros((0, width)) if width else np.zeros(0)
        features = matrix(self.transforms, work, self.feature_names)
        return np.asarray(self.booster.predict(features, num_threads=threads))

    @cached_property
    def feature_names(self) -> list[str]:
        """The model's input columns (the transforms' names), in the order it was trained on."""
        from pipespec.bundle.transforms import model_columns

        return model_columns(self.transforms.feature_names, list(self.booster.feature_name()))

    def columns(self, scores: np.ndarray) -> dict[str, np.ndarray]:
        """Output columns for a table: ``prediction`` (probability of the second class, or
        the value), ``p_<class label>`` for multiclass (``class_columns``), and ``label`` for
        classification."""
        import numpy as np

        if self.task == "regression":
            return {"prediction": scores}
        labels = np.asarray(self.classes)
        if self.task == "binary":
            return {"prediction": scores, "label": labels[(scores >= self.threshold).astype(int)]}
        from pipespec.core.documents import class_columns

        out = dict(zip(class_columns(list(self.classes)), scores.T, strict=True))
        out["label"] = labels[scores.argmax(axis=1)] if len(scores) else labels[:0]
        return out

    def records(self, scores: np.ndarray) -> list[dict[str, Any]]:
        """One JSON-able answer per row: label and class probabilities, or the value."""
        if self.task == "regression":
            return [{"value": float(v)} for v in scores]
        classes = self.classes
        keys = [str(c) for c in classes]
        out: list[dict[str, Any]] = []
        if self.task == "binary":
            threshold = self.threshold
            for p in scores.tolist():
                out.append(
                    {
                        "label": classes[1] if p >= threshold else classes[0],
                        "probability": p,
                        "probabilities": {keys[0]: 1.0 - p, keys[1]: p},
                    }
                )
            return out
        for row in scores.tolist():
            best = max(range(len(row)), key=row.__getitem__)
            out.append({"label": classes[best], "probabilities": dict(zip(keys, row, strict=True))})
        return out

    def predict(
        self, frame: pd.DataFrame, *, on_invalid: str = "fail", threads: int = 1
    ) -> pd.DataFrame:
        """Predict raw rows in-process. Refused rows raise ``DataError`` (``on_invalid="fail"``)
        or are left out (``"skip"``; the index says which remain). Unusual rows are
        predicted; ``warnings`` on the result's ``attrs`` counts them by (column, reason)."""
        import pandas as pd

        checked = self.check(frame)
        if checked.n_invalid and on_invalid == "fail":
            raise invalid_rows_error(checked, "the input frame")
        rows = None if not checked.n_invalid else checked.valid.nonzero()[0]
        scores = self.score(checked, rows, threads=threads)
        index = frame.index if rows is None else frame.index[rows]
        out = pd.DataFrame(self.columns(scores), index=index)
        out.attrs["warnings"] = checked.counts("warning")
        return out


def invalid_rows_error(checked: Checked, where: str, total: int | None = None) -> DataError:
    """A DataError listing the first problems of ``checked`` (``total``: bad rows in all)."""
    shown = [
        f"  row {p.row}: {p.message()}" for p in checked.iter_problems(limit=10, kind="refused")
    ]
    bad = total if total is not None else checked.n_invalid
    return DataError(
        f"{bad} row(s) of {where} break the bundle's input schema:\n" + "\n".join(shown),
        hint="Fix those rows, or predict the others with --on-invalid skip "
        "(production.on_invalid) and get the refused rows reported (--rejects FILE).",
    )
