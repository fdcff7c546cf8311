"""A bundle that scores through LightGBM's C library without importing the ``lightgbm``
package.

``import lightgbm`` imports scipy.sparse (which, through its array-API layer, imports
``numpy.f2py`` and ``numpy.testing``) and narwhals, whatever the caller predicts: about a
third of a second at every start of a process that only scores numpy matrices with a
loaded model, as the behaviour stage does (``bench/behavior.py``). Prediction itself is the
C library's: ``Booster.predict`` on a float matrix is ``LGBM_BoosterPredictForMat`` with the
parameter string ``num_threads=N``, all iterations of a model loaded from text (its
``best_iteration`` is -1). ``NativeBooster`` makes the same calls on the same library file
(the one the installed ``lightgbm`` package loads), so its numbers are ``Booster.predict``'s
bit for bit (``tests/bundle/behavior/test_native.py``); ``NativeRowPredictor`` is
``bundle/booster.py``'s single-row fast path on it.

``scoring(bundle)`` is the bundle with these in place of ``lgb.Booster`` (a subclass that
overrides ``Bundle.booster`` and ``Bundle.row_predictor``; everything else, the check, the
transforms, ``Bundle.score`` and ``Bundle.predict``, is the bundle's own). When the library
file is not where the package keeps it, or a process already imported ``lightgbm``, the
bundle is returned as it is. (This belongs in ``bundle/booster.py``, where ``Bundle.booster``
could use it on every scoring path; it lives here until that module's owner takes it.)
"""

from __future__ import annotations

import contextlib
import ctypes
import dataclasses
import importlib.util
import sys
import threading
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipespec.bundle.booster import RowPredictor
from pipespec.bundle.bundle import MODEL, Bundle
from pipespec.core.errors import BundleError

if TYPE_CHECKING:
    import numpy as np

_PREDICT_NORMAL = 0  # C_API_PREDICT_NORMAL
_FLOAT32, _FLOAT64 = 0, 1  # C_API_DTYPE_*
_COL_MAJOR, _ROW_MAJOR = 0, 1  # C_API_IS_*_MAJOR
_MAX_INT32 = (1 << 31) - 1
_NAME_BUFFER = 255  # what Booster.feature_name reserves per name first


class NativeError(Exception):
    """An error the C library reported (its LGBM_GetLastError text)."""


def library_path() -> Path | None:
    """The LightGBM library file the installed package loads (``lightgbm/libpath.py``'s
    search on Linux: beside the package, then its ``bin`` and ``lib``), found without
    importing the package; None when there is none."""
    spec = importlib.util.find_spec("lightgbm")
    if spec is None or not spec.submodule_search_locations:
        return None
    here = Path(next(iter(spec.submodule_search_locations))).resolve()
    name = {"darwin": "lib_lightgbm.dylib", "win32": "lib_lightgbm.dll"}.get(
        sys.platform, "lib_lightgbm.so"
    )
    for folder in (here.parent, here / "bin", here / "lib"):
        if (folder / name).is_file():
            return folder / name
    return None


_lock = threading.Lock()
_lib: ctypes.CDLL | None = None


def library() -> ctypes.CDLL:
    """The LightGBM C library, loaded once (the same file, and so the same loaded library,
    as the ``lightgbm`` package's)."""
    global _lib
    with _lock:
        if _lib is None:
            path = library_path()
            if path is None:
                raise NativeError("the LightGBM library file was not found")
            lib = ctypes.cdll.LoadLibrary(str(path))
            lib.LGBM_GetLastError.restype = ctypes.c_char_p
            _lib = lib
        return _lib


def _check(code: int) -> None:
    if code != 0:
        raise NativeError(library().LGBM_GetLastError().decode("utf-8", errors="replace"))


class NativeBooster:
    """The part of ``lgb.Booster`` that scoring uses (``predict`` on a float matrix,
    ``feature_name``, ``num_feature``, ``num_model_per_iteration``, ``best_iteration``),
    for a model given as text, on the C library alone."""

    best_iteration = -1  # a model loaded from text: predict with every iteration

    def __init__(self, model_text: str) -> None:
        self._lib = library()
        self._handle = ctypes.c_void_p()
        iterations = ctypes.c_int(0)
        _check(
            self._lib.LGBM_BoosterLoadModelFromString(
                ctypes.c_char_p(model_text.encode("utf-8")),
                ctypes.byref(iterations),
                ctypes.byref(self._handle),
            )
        )
        self._features = self._int("LGBM_BoosterGetNumFeature")
        self._per_iteration = self._int("LGBM_BoosterNumModelPerIteration")

    def _int(self, function: str) -> int:
        out = ctypes.c_int(0)
        _check(getattr(self._lib, function)(self._handle, ctypes.byref(out)))
        return out.value

    def num_feature(self) -> int:
        return self._features

    def num_model_per_iteration(self) -> int:
        return self._per_iteration

    def feature_name(self) -> list[str]:
        """The model's feature names (``Booster.feature_name``)."""
        n = self._features
        needed = ctypes.c_size_t(0)
        got = ctypes.c_int(0)
        size = _NAME_BUFFER
        for _ in range(2):  # a second time with buffers as long as the longest name
            buffers = [ctypes.create_string_buffer(size) for _ in range(n)]
            pointers = (ctypes.c_char_p * n)(*map(ctypes.addressof, buffers))  # type: ignore[misc]
            _check(
                self._lib.LGBM_BoosterGetFeatureNames(
                    self._handle,
                    ctypes.c_int(n),
                    ctypes.byref(got),
                    ctypes.c_size_t(size),
                    ctypes.byref(needed),
                    pointers,
                )
            )
            if needed.value <= size:
                break
            size = needed.value
        if got.value != n:
            raise NativeError("the number of feature names is not the number of features")
        return [b.value.decode("utf-8") for b in buffers]

    def predict(self, data: np.ndarray, *, num_threads: int) -> np.ndarray:
        """``lgb.Booster.predict(data, num_threads=num_threads)`` for a 2-D float matrix."""
        import numpy as np

        if data.ndim != 2:
            raise ValueError("expected a 2-dimensional matrix")
        nrow, ncol = data.shape
        if nrow > _MAX_INT32:
            raise ValueError(f"LightGBM predicts at most {_MAX_INT32} rows at once")
        # lightgbm's _np2d_to_np1d: float32 or float64 kept, a column-major matrix as it is
        dtype = data.dtype if data.dtype in (np.float32, np.float64) else np.dtype(np.float32)
        if data.flags["F_CONTIGUOUS"]:
            flat, layout = np.asarray(data, dtype=dtype, order="F").ravel(order="F"), _COL_MAJOR
        else:
            flat, layout = np.asarray(data, dtype=dtype, order="C").ravel(order="C"), _ROW_MAJOR
        kind = _FLOAT64 if flat.dtype == np.float64 else _FLOAT32
        iterations = ctypes.c_int(self.best_iteration)
        expected = ctypes.c_int64(0)
        _check(
            self._lib.LGBM_BoosterCalcNumPredict(
                self._handle,
                ctypes.c_int(nrow),
                ctypes.c_int(_PREDICT_NORMAL),
                ctypes.c_int(0),
                iterations,
                ctypes.byref(expected),
            )
        )
        out = np.empty(expected.value, dtype=np.float64)
        written = ctypes.c_int64(0)
        _check(
            self._lib.LGBM_BoosterPredictForMat(
                self._handle,
                flat.ctypes.data_as(ctypes.c_void_p),
                ctypes.c_int(kind),
                ctypes.c_int32(nrow),
                ctypes.c_int32(ncol),
                ctypes.c_int(layout),
                ctypes.c_int(_PREDICT_NORMAL),
                ctypes.c_int(0),
                iterations,
                ctypes.c_char_p(f"num_threads={num_threads}".encode()),
                ctypes.byref(written),
                out.ctypes.data_as(ctypes.POINTER(ctypes.c_double)),
            )
        )
        if written.value != expected.value:
            raise NativeError("LightGBM wrote another number of predictions than it said")
        return out if out.size == nrow else out.reshape(nrow, -1)

    def __del__(self) -> None:
        handle = getattr(self, "_handle", None)
        if handle is not None and handle.value:
            with contextlib.suppress(Exception):  # at interpreter shutdown, nothing to free
                self._lib.LGBM_BoosterFree(handle)
            handle.value = None


class NativeRowPredictor(RowPredictor):
    """``bundle/booster.py``'s ``RowPredictor`` (LightGBM's single-row fast API, its
    predictor made once) on a ``NativeBooster``: the same calls, the library loaded here."""

    def __init__(self, booster: NativeBooster) -> None:  # RowPredictor's, on this library
        self._lib = booster._lib
        self._check = _check  # type: ignore[assignment]
        self._booster = booster  # type: ignore[assignment]
        self.columns = booster.num_feature()
        self.outputs = booster.num_model_per_iteration()
        self._config = ctypes.c_void_p()
        self._check(
            self._lib.LGBM_BoosterPredictForMatSingleRowFastInit(
                booster._handle,
                ctypes.c_int(_PREDICT_NORMAL),
                ctypes.c_int(0),
                ctypes.c_int(booster.best_iteration),
                ctypes.c_int(_FLOAT64),
                ctypes.c_int32(self.columns),
                ctypes.c_char_p(b"num_threads=1"),
                ctypes.byref(self._config),
            )
        )
        self._predict_row = self._lib.LGBM_BoosterPredictForMatSingleRowFast
        self._length = ctypes.c_int64()
        self._length_ref = ctypes.byref(self._length)
        self._lock = threading.Lock()


@dataclasses.dataclass
class NativeBundle(Bundle):
    """A ``Bundle`` whose model is a ``NativeBooster``."""

    @cached_property
    def booster(self) -> Any:
        try:
            return NativeBooster(self.model_text)
        except NativeError as exc:
            raise BundleError(f"bundle {self.path}: LightGBM cannot read {MODEL}: {exc}") from None

    @cached_property
    def row_predictor(self) -> Any:
        lib = self.booster._lib
        names = ("LGBM_BoosterPredictForMatSingleRowFastInit", "LGBM_FastConfigFree")
        return NativeRowPredictor(self.booster) if all(hasattr(lib, n) for n in names) else None


def scoring(bundle: Bundle) -> Bundle:
    """``bundle`` scoring through the C library without importing ``lightgbm``; the bundle
    itself when that package is imported already (nothing to save) or its library file is
    not found."""
    if "lightgbm" in sys.modules or library_path() is None:
        return bundle
    values = {f.name: getattr(bundle, f.name) for f in dataclasses.fields(bundle)}
    return NativeBundle(**values)
