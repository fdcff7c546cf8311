"""The engine that computes a bundle's scores: LightGBM's ``booster.predict``, or the model
compiled to machine code by lleaves (``production.engine: lleaves``, ``pipespec[compiled]``).

The compiled model lives outside the bundle (whose bytes never change): a ``compile`` stage
(``pipespec.stages.compile``) writes a cache directory, by default ``compiled/`` beside the
bundle (``models/compiled``, a DVC output), holding ``model.so`` (lleaves' object file) and
``key.json``: the SHA-256 of the bundle's ``model.txt`` and of ``model.so``, the CPU it was
compiled for and the lleaves and llvmlite versions. ``select`` is the one function the
serving and batch paths call: it loads the compiled object only when that key matches this
host and this bundle, and otherwise falls back to LightGBM and says why (``/health``,
``/metrics``). Nothing here unpickles anything; the object file is native code the project's
own stage produced, loaded only from the cache directory it is given.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np

    from pipespec.bundle.bundle import Bundle

CACHE_ENV = "PIPESPEC_ENGINE_CACHE"  # where the compiled cache is, when not beside the bundle
KEY = "key.json"
OBJECT = "model.so"
TOLERANCE = 1e-9  # the compiled engine's largest allowed difference from booster.predict
EXTRA = "pipespec[compiled]"


def import_lightgbm() -> None:
    """Import LightGBM without its scikit-learn API, which scoring does not use: it only
    predicts with a ``Booster``. LightGBM imports scikit-learn when it is installed, and that
    is about 60% of the time ``import lightgbm`` takes (1.2 of 2 s). Nothing is patched:
    scikit-learn is marked absent while LightGBM's own optional import runs, then unmarked,
    so a later ``import sklearn`` (``evaluation.optimize_threshold``) works. A process that
    already imported either keeps them as they are."""
    import sys

    if "lightgbm" in sys.modules or "sklearn" in sys.modules:
        return
    sys.modules["sklearn"] = None  # type: ignore[assignment]  # its import raises ImportError
    try:
        import lightgbm  # noqa: F401
    finally:
        del sys.modules["sklearn"]


@dataclass(frozen=True)
class Engine:
    """The engine in use for a bundle, the one requested (``lleaves`` when a compiled cache
    exists), and why they differ."""

    name: str  # lightgbm | lleaves
    requested: str
    reason: str  # why `name` is in use ("" when it is the one requested)
    cache: str | None
    predict: Callable[[np.ndarray, int], np.ndarray] | None = None  # None: booster.predict

    @property
    def fallback(self) -> bool:
        return self.name != self.requested

    def status(self) -> dict[str, Any]:
        """What ``/health`` reports."""
        return {
            "name": self.name,
            "requested": self.requested,
            "fallback": self.fallback,
            "reason": self.reason,
        }

    def exposition(self, bundle_sha: str) -> bytes:
        """The Prometheus info series of the engine in use (appended to ``/metrics``)."""
        labels = (
            f'engine="{self.name}",requested="{self.requested}",'
            f'fallback="{str(self.fallback).lower()}",bundle="{bundle_sha}"'
        )
        return (
            "# HELP pipespec_engine_info The engine computing the scores (1), the one requested "
            "and whether the server fell back to LightGBM.\n"
            "# TYPE pipespec_engine_info gauge\n"
            f"pipespec_engine_info{{{labels}}} 1.0\n"
        ).encode()


def default_cache(bundle_path: Path) -> Path:
    """The compiled cache a bundle uses: ``$PIPESPEC_ENGINE_CACHE``, else ``compiled/``
    beside the bundle."""
    configured = os.environ.get(CACHE_ENV)
    return Path(configured) if configured else bundle_path.parent / "compiled"


def model_sha256(bundle: Bundle) -> str:
    from pipespec.bundle.bundle import MODEL

    return hashlib.sha256((bundle.path / MODEL).read_bytes()).hexdigest()


def host_key() -> dict[str, str]:
    """The CPU and library versions a compiled object is valid for (raises ImportError
    without lleaves)."""
    from importlib.metadata import version

    import llvmlite.binding as llvm

    return {
        "cpu": str(llvm.get_host_cpu_name()),
        "cpu_features": hashlib.sha256(
            str(llvm.get_host_cpu_features().flatten()).encode()
        ).hexdigest(),
        "llvmlite": version("llvmlite"),
        "lleaves": version("lleaves"),
    }


def expected_key(bundle: Bundle) -> dict[str, str]:
    return {"model_sha256": model_sha256(bundle), **host_key()}


def select(bundle: Bundle, cache: str | os.PathLike[str] | None = None) -> Engine:
    """Choose and install the engine ``bundle.score`` uses (once per bundle): lleaves when
    the compiled cache's key matches, LightGBM otherwise (with the reason)."""
    if bundle.engine is not None:
        return bundle.engine
    where = Path(cache) if cache is not None else default_cache(bundle.path)
    chosen = _choose(bundle, where)
    bundle.engine = chosen
    return chosen


def _choose(bundle: Bundle, where: Path) -> Engine:
    key_file = where / KEY
    if not key_file.is_file():
        return Engine("lightgbm", "lightgbm", f"no compiled model at {where}", None)

    def fallback(reason: str) -> Engine:
        return Engine("lightgbm", "lleaves", reason, str(where))

    try:
        stored = json.loads(key_file.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        return fallback(f"{key_file} is unreadable: {exc}")
    if not isinstance(stored, dict) or not isinstance(stored.get("key"), dict):
        return fallback(f"{key_file} holds no key")
    try:
        expected = expected_key(bundle)
    except ImportError:
        return fallback(f"lleaves is not installed (pip install '{EXTRA}')")
    differs = sorted(k for k in expected if stored["key"].get(k) != expected[k])
    if differs:
        return fallback(f"the compiled model's key differs in {', '.join(differs)}")
    obj = where / OBJECT
    try:
        data = obj.read_bytes()
    except OSError as exc:
        return fallback(f"cannot read {obj}: {exc.strerror or exc}")
    if hashlib.sha256(data).hexdigest() != stored.get("object_sha256"):
        return fallback(f"{obj} does not match its key (changed after compiling)")
    try:
        model = load(bundle, obj)
    except Exception as exc:  # any failure to load falls back, and says so
        return fallback(f"lleaves cannot load {obj}: {exc}")
    return Engine("lleaves", "lleaves", "", str(where), _predictor(model))


def load(bundle: Bundle, obj: Path) -> Any:
    """The lleaves model of ``bundle``, compiled to ``obj`` (or loaded from it when it
    exists)."""
    import lleaves

    from pipespec.bundle.bundle import MODEL

    model = lleaves.Model(model_file=str(bundle.path / MODEL))
    model.compile(cache=str(obj))
    return model


def _predictor(model: Any) -> Callable[[np.ndarray, int], np.ndarray]:
    import numpy as np

    def predict(features: np.ndarray, threads: int) -> np.ndarray:
        out = model.predict(np.ascontiguousarray(features, dtype=np.float64), n_jobs=threads)
        return np.asarray(out)

    return predict
