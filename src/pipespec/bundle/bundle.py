"""The production bundle: one directory, every file listed with its SHA-256 in
``manifest.json``, nothing pickled.

``write`` builds the directory next to its target and swaps it in, so a reader never sees a
half-written bundle. ``Bundle.load`` checks the format version and every file's hash before
it parses anything, and parses exactly the bytes it hashed; a tampered, truncated or
incompatible bundle is refused with the file at fault named.

A bundle is data: loading it runs no code its files name. Every file must be a regular file
directly in the bundle directory (no symbolic link, no other file type, no odd name); the
derive expressions are parsed into a fixed grammar (``pipespec.core.expression``); a custom
transform's module is imported only when the caller allows it by name and its source
matches the SHA-256 the manifest recorded when the bundle was packaged (``admit_custom``);
and ``expect_sha256`` ties a host to one exact bundle (the manifest's hash).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import stat
import tempfile
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipespec.bundle.booster import ROWS, RowPredictor, row_predictor
from pipespec.bundle.inputs import Checked, check
from pipespec.bundle.transforms import load as load_transforms
from pipespec.bundle.transforms import matrix
from pipespec.core.documents import (
    Contract,
    CustomStep,
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
CUSTOM = "custom"  # manifest key: {module: SHA-256 of its source} of the custom transforms
EXPECT_ENV = "PIPESPEC_EXPECT_SHA256"  # the server's --expect-sha256, from the environment
ALLOW_ENV = "PIPESPEC_ALLOW_CUSTOM"  # the server's --allow-custom modules, comma-separated
_FILE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,99}")
_SHA256 = re.compile(r"[0-9a-f]{64}")


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def manifest_for(
    files: dict[str, bytes], custom: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """The manifest of ``files``; ``custom``: the recorded source hashes of the custom
    transforms' modules (the key is left out when there are none, as before it existed)."""
    manifest: dict[str, Any] = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "files": {name: sha256(data) for name, data in sorted(files.items())},
    }
    if custom:
        manifest[CUSTOM] = dict(sorted(custom.items()))
    return manifest


def write(
    target: str | os.PathLike[str],
    files: dict[str, bytes],
    custom: Mapping[str, str] | None = None,
) -> str:
    """Write ``files`` and their manifest as the directory ``target``, atomically.

    The directory is built beside ``target`` and renamed into place; a previous bundle is
    renamed away first and removed after. Returns the manifest's SHA-256 (the bundle's id).
    """
    target = Path(target)
    missing = [name for name in FILES if name not in files]
    if missing:
        raise BundleError(f"cannot write a bundle without {', '.join(missing)}")
    bad = [name for name in files if not _FILE_NAME.fullmatch(name) or name == MANIFEST]
    if bad:
        raise BundleError(f"cannot write a bundle file named {bad[0]!r}")
    target.parent.mkdir(parents=True, exist_ok=True)
    clean_leftovers(target)
    manifest = dumps(manifest_for(files, custom))
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


def read_verified(
    path: Path, expect_sha256: str | None = None
) -> tuple[dict[str, Any], dict[str, bytes], str]:
    """The manifest, every file's verified bytes, and the manifest's SHA-256.

    ``expect_sha256``: the manifest's hash the caller trusts; any other bundle is refused
    before anything but the manifest's bytes is read."""
    where = str(path)
    if path.is_symlink():
        raise BundleError(
            f"bundle {where} is a symbolic link: a bundle is read only from a real directory",
            hint=f"Point --bundle at the directory itself ({os.path.realpath(path)}), after "
            "checking it is the bundle you mean.",
        )
    if not path.is_dir():
        raise BundleError(
            f"no bundle at {where}: not a directory",
            hint="Build one with `pipespec run` (the package stage writes models/bundle/), "
            "or fetch one with `dvc get REPO models/bundle --rev REV`.",
        )
    entries = _entries(path)
    if MANIFEST not in entries:
        raise BundleError(
            f"{where} is not a pipespec bundle: {MANIFEST} is missing",
            hint="Point --bundle at the directory the package stage writes (models/bundle).",
        )
    raw = _read_regular(path, MANIFEST)
    digest = sha256(raw)
    if expect_sha256 is not None:
        expected = expect_sha256.strip().lower()
        if not _SHA256.fullmatch(expected):
            raise BundleError(
                f"--expect-sha256 '{expect_sha256}' is not a SHA-256 (64 hexadecimal digits)"
            )
        if digest != expected:
            raise BundleError(
                f"bundle {where} is not the expected one: its {MANIFEST} has SHA-256 "
                f"{digest}, not {expected}",
                hint="Refusing to load it. Fetch the bundle you expect, or check the hash "
                f"(--expect-sha256 / {EXPECT_ENV}).",
            )
    manifest = _json(raw, f"{where}/{MANIFEST}")
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
    unknown = sorted(set(manifest) - {"format", "format_version", "files", CUSTOM})
    if unknown:
        raise BundleError(f"{where}/{MANIFEST}: unknown key {unknown[0]!r}")
    listed = manifest.get("files")
    if not isinstance(listed, dict):
        raise BundleError(f"{where}/{MANIFEST}: 'files' must map file names to SHA-256 hashes")
    for name, expected in listed.items():
        if not _FILE_NAME.fullmatch(name) or name == MANIFEST:
            raise BundleError(
                f"{where}/{MANIFEST} lists an invalid file name {name!r}: a bundle file is a "
                "plain name (letters, digits, '.', '_', '-'), directly in the bundle directory"
            )
        if not isinstance(expected, str) or not _SHA256.fullmatch(expected):
            raise BundleError(f"{where}/{MANIFEST}: the hash of {name} is not a SHA-256")
    recorded = manifest.get(CUSTOM, {})
    if not isinstance(recorded, dict) or not all(
        isinstance(k, str) and _is_module_name(k) and isinstance(v, str) and _SHA256.fullmatch(v)
        for k, v in recorded.items()
    ):
        raise BundleError(f"{where}/{MANIFEST}: '{CUSTOM}' must map module names to SHA-256s")
    for name in FILES:
        if name not in listed:
            raise BundleError(f"{where}/{MANIFEST} does not list {name}: the bundle is incomplete")
    extra = sorted(set(entries) - set(listed) - {MANIFEST})
    if extra:
        raise BundleError(
            f"bundle {where} holds {extra[0]}, which {MANIFEST} does not list: it was "
            "modified after it was built",
            hint="Fetch or rebuild the bundle; do not add files to it.",
        )
    contents: dict[str, bytes] = {}
    for name, expected in sorted(listed.items()):
        if name not in entries:
            raise BundleError(
                f"bundle {where} is missing {name}, which {MANIFEST} lists",
                hint="Fetch or rebuild the bundle.",
            )
        data = _read_regular(path, name)
        if sha256(data) != expected:
            raise BundleError(
                f"bundle {where}: {name} does not match its SHA-256 in {MANIFEST}: the file was "
                "modified or corrupted after the bundle was built",
                hint="Refusing to load it. Fetch or rebuild the bundle "
                "(`dvc get REPO models/bundle --rev REV`, or `pipespec run`).",
            )
        contents[name] = data
    return manifest, contents, digest


def _entries(path: Path) -> set[str]:
    """The names in the bundle directory, each a regular file with a plain name (not
    followed if it is a link); anything else is refused, named."""
    names: set[str] = set()
    try:
        scanned = list(os.scandir(path))
    except OSError as exc:
        raise BundleError(f"cannot read bundle {path}: {exc.strerror or exc}") from None
    for entry in scanned:
        shown = repr(entry.name)
        if not _FILE_NAME.fullmatch(entry.name):
            raise BundleError(
                f"bundle {path} holds a file with an odd name {shown}: a bundle holds only "
                "plain names (letters, digits, '.', '_', '-')",
                hint="Fetch or rebuild the bundle; do not add files to it.",
            )
        if entry.is_symlink():
            raise BundleError(
                f"bundle {path}: {entry.name} is a symbolic link; a bundle holds regular files "
                "only",
                hint="Fetch or rebuild the bundle (DVC outputs must be copies, not links).",
            )
        if not entry.is_file(follow_symlinks=False):
            raise BundleError(
                f"bundle {path}: {entry.name} is not a regular file; a bundle holds regular "
                "files only"
            )
        names.add(entry.name)
    return names


def _read_regular(path: Path, name: str) -> bytes:
    """The bytes of the regular file ``path/name``, opened without following a link and
    without blocking on a FIFO (a file swapped after the directory was listed is refused)."""
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
    try:
        fd = os.open(path / name, flags | getattr(os, "O_CLOEXEC", 0))
    except OSError as exc:
        raise BundleError(
            f"bundle {path}: cannot open {name} as a regular file: {exc.strerror or exc}"
        ) from None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise BundleError(f"bundle {path}: {name} is not a regular file")
        with os.fdopen(fd, "rb", closefd=False) as fh:
            return fh.read()
    except OSError as exc:
        raise BundleError(f"bundle {path}: cannot read {name}: {exc.strerror or exc}") from None
    finally:
        os.close(fd)


def _json(data: bytes, where: str) -> Any:
    """Parsed JSON; malformed or too deeply nested text is a BundleError naming the file."""
    try:
        return json.loads(data)
    except RecursionError:
        raise BundleError(f"{where} is nested too deeply to be a bundle document") from None
    except ValueError as exc:
        raise BundleError(f"{where} is not valid JSON: {exc}") from None


def _is_module_name(name: str) -> bool:
    parts = name.split(".")
    return all(p.isidentifier() and not p.startswith("__") for p in parts)


# --- custom transforms -------------------------------------------------------------------


def module_files(module: str) -> list[tuple[str, Path | None]]:
    """The files that importing ``module`` runs: each package on the way, then the module
    (None for a namespace package, which has none). Found on ``sys.path`` by the import
    system's path finder alone: nothing is imported or run."""
    from importlib.machinery import PathFinder

    found: list[tuple[str, Path | None]] = []
    search: Any = None  # sys.path
    parts = module.split(".")
    for i in range(len(parts)):
        name = ".".join(parts[: i + 1])
        try:
            spec = PathFinder.find_spec(name, search)
        except (ImportError, ValueError, OSError):
            spec = None
        if spec is None:
            raise BundleError(f"custom transform module '{module}': cannot find '{name}'")
        origin = spec.origin if spec.has_location else None
        found.append((name, Path(origin) if origin else None))
        search = spec.submodule_search_locations
        if search is None and i < len(parts) - 1:
            raise BundleError(f"custom transform module '{module}': '{name}' is not a package")
    return found


def source_hashes(modules: Collection[str]) -> dict[str, str]:
    """``{module: SHA-256 of its source}`` for ``modules`` and the packages they are in:
    what the package stage records in the manifest. Nothing is imported."""
    hashes: dict[str, str] = {}
    for module in sorted(modules):
        for name, file in module_files(module):
            if file is not None:
                hashes[name] = _file_hash(file, module)
    return hashes


def _file_hash(file: Path, module: str) -> str:
    try:
        return sha256(file.read_bytes())
    except OSError as exc:
        raise BundleError(
            f"custom transform module '{module}': cannot read {file}: {exc.strerror or exc}"
        ) from None


def _allowed(module: str, allow: Collection[str]) -> bool:
    """``module`` or a package it is in is named in ``allow``."""
    parts = module.split(".")
    return any(".".join(parts[: i + 1]) in allow for i in range(len(parts)))


def _project_module(module: str, project: Path) -> bool:
    """Every file importing ``module`` runs is the project's own: inside ``project`` and not
    in an environment installed there (a ``.venv`` in the project holds others' code)."""
    import sys

    root = project.resolve()
    installed = {Path(p).resolve() for p in (sys.prefix, sys.exec_prefix, sys.base_prefix)}
    files = [f.resolve() for _, f in module_files(module) if f is not None]
    return bool(files) and all(
        f.is_relative_to(root)
        and not any(f.is_relative_to(env) for env in installed)
        and "site-packages" not in f.parts
        for f in files
    )


def admit_custom(
    where: str,
    transforms: Transforms,
    recorded: Mapping[str, str],
    allow: Collection[str] = (),
    project: Path | None = None,
) -> dict[str, Any]:
    """The classes of ``transforms``' custom steps, imported only once each module is
    allowed (named in ``allow``, or, for a pipeline stage, a file inside its ``project``) and
    every file the import runs matches the SHA-256 in ``recorded`` (the manifest's). The
    name is checked before anything is looked up, the hashes before anything is imported."""
    from pipespec.bundle.transforms import load_custom

    steps = [s for s in transforms.steps if isinstance(s, CustomStep)]
    for step in steps:
        if _allowed(step.module, allow):
            continue
        inside = False
        if project is not None:
            inside = _project_module(step.module, project)
        if not inside:
            raise BundleError(
                f"bundle {where}: {TRANSFORMS} has a custom transform '{step.fn}' from module "
                f"'{step.module}', which this host does not allow: nothing was imported",
                hint=f"If you trust that module, allow it: --allow-custom {step.module} (or "
                "production.allow_custom in the config the exports carry).",
            )
    for step in steps:
        for name, file in module_files(step.module):
            if file is None:
                continue
            expected = recorded.get(name)
            if expected is None:
                raise BundleError(
                    f"bundle {where}: {MANIFEST} records no SHA-256 for module '{name}' of "
                    f"custom transform '{step.fn}': refusing to import it",
                    hint="Rebuild the bundle with this pipespec (the package stage records it).",
                )
            if _file_hash(file, step.module) != expected:
                raise BundleError(
                    f"bundle {where}: the source of module '{name}' ({file}) does not match "
                    f"the SHA-256 {MANIFEST} recorded for custom transform '{step.fn}': it "
                    "changed since the bundle was packaged; nothing was imported",
                    hint="Install the module's version the bundle was built with, or rebuild "
                    "the bundle.",
                )
    classes: dict[str, Any] = {}
    for step in steps:
        try:
            classes[step.fn] = load_custom(step.fn)
        except DataError as exc:
            raise BundleError(f"bundle {where}: {exc.message}") from None
    return classes


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
    custom: dict[str, Any] = field(default_factory=dict)  # admitted custom transform classes
    engine: Any = field(default=None, compare=False, repr=False)  # bundle/engine.py's select

    @classmethod
    def load(
        cls,
        path: str | os.PathLike[str],
        *,
        allow_custom: Collection[str] = (),
        project: str | os.PathLike[str] | None = None,
        expect_sha256: str | None = None,
    ) -> Bundle:
        """Load the bundle at ``path``, refusing it unless every file matches the manifest.

        ``expect_sha256``: the manifest's SHA-256 this host trusts (any other bundle is
        refused). ``allow_custom``: the modules whose custom transforms may be imported (a
        bundle with others is refused); ``project``: a pipeline stage's project root, whose
        own modules are allowed too."""
        root = Path(path)
        manifest, files, sha = read_verified(root, expect_sha256)
        docs: dict[str, Any] = {}
        for name in (TRANSFORMS, SCHEMA, PROFILE, CARD):
            docs[name] = _json(files[name], f"bundle {root}: {name}")
            if not isinstance(docs[name], dict):
                raise BundleError(f"bundle {root}: {name} must hold a JSON object")
        try:
            contract = from_json(Contract, docs[SCHEMA], SCHEMA)
        except DocumentError as exc:
            raise BundleError(f"bundle {root}: {exc}") from None
        except RecursionError:
            raise BundleError(f"bundle {root}: {SCHEMA} is nested too deeply") from None
        try:
            transforms = load_transforms(docs[TRANSFORMS], f"bundle {root}: {TRANSFORMS}")
        except DataError as exc:
            raise BundleError(exc.message) from None
        except RecursionError:
            raise BundleError(f"bundle {root}: {TRANSFORMS} is nested too deeply") from None
        if [c.name for c in transforms.inputs] != contract.schema.names:
            raise BundleError(
                f"bundle {root}: {SCHEMA} and {TRANSFORMS} disagree on the input columns"
            )
        model_text = files[MODEL].decode("utf-8", errors="replace")
        if not any(line.startswith("version=v") for line in model_text.splitlines()[:5]):
            raise BundleError(f"bundle {root}: {MODEL} is not a LightGBM text model")
        custom = admit_custom(
            str(root),
            transforms,
            manifest.get(CUSTOM, {}),
            allow_custom,
            None if project is None else Path(project),
        )
        return cls(
            path=root,
            sha=sha,
            manifest=manifest,
            transforms=transforms,
            contract=contract,
            profile=docs[PROFILE],
            card=docs[CARD],
            model_text=model_text,
            custom=custom,
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

        work = checked.take(rows) if rows is not None else dict(checked.work)
        n = checked.rows if rows is None else len(rows)
        if n == 0:
            width = len(self.classes) if self.task == "multiclass" else 0
            return np.zeros((0, width)) if width else np.zeros(0)
        codes = checked.codes_of(work, rows)
        features = matrix(self.transforms, work, self.feature_names, self.custom, codes)
        if self.engine is not None and self.engine.predict is not None:  # compiled engine
            return np.asarray(self.engine.predict(features, threads))
        if n <= ROWS and self.row_predictor is not None:  # a few rows: no per-call set-up
            scores = self.row_predictor.predict(features)
            if scores is not None:  # (None: another thread holds it)
                return scores
        return np.asarray(self.booster.predict(features, num_threads=threads))

    @cached_property
    def row_predictor(self) -> RowPredictor | None:
        """``booster.predict`` for a few rows, its predictor made once (``bundle/booster.py``)."""
        return row_predictor(self.booster)

    @cached_property
    def feature_names(self) -> list[str]:
        """The model's input columns (the transforms' names), in the order it was trained on."""
        from pipespec.bundle.transforms import model_columns

        return model_columns(self.transforms.feature_names, list(self.booster.feature_name()))

    def columns(self, scores: np.ndarray, *, kind: str = "numpy") -> dict[str, Any]:
        """Output columns for a table: ``prediction`` (probability of the second class, or
        the value), ``p_<class label>`` for multiclass (``class_columns``), and ``label`` for
        classification. ``kind``: the label as a numpy array, a pandas array (``"pandas"``)
        or an Arrow array (``"arrow"``), each taken from the class list (no text is made
        per row: the same values and types as the numpy array gives its table)."""
        import numpy as np

        if self.task == "regression":
            return {"prediction": scores}
        labels = np.asarray(self.classes)
        if self.task == "binary":
            out: dict[str, Any] = {"prediction": scores}
            chosen = (scores >= self.threshold).astype(np.intp)
        else:
            from pipespec.core.documents import class_columns

            out = dict(zip(class_columns(list(self.classes)), scores.T, strict=True))
            chosen = scores.argmax(axis=1) if len(scores) else np.zeros(0, dtype=np.intp)
        if kind == "arrow":
            import pyarrow as pa

            out["label"] = pa.array(labels).take(pa.array(chosen))
        elif kind == "pandas":
            import pandas as pd

            out["label"] = pd.Index(labels).take(chosen).array
        else:
            out["label"] = labels[chosen]
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
        out = pd.DataFrame(self.columns(scores, kind="pandas"), index=index)
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
