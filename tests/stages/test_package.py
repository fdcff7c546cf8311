"""The package stage's own work beyond `bundle.assemble` (tested in tests/bundle)."""

from __future__ import annotations

import subprocess
import sys


def test_lightgbm_is_imported_without_scikit_learn_which_stays_importable() -> None:
    """The stage imports LightGBM without its scikit-learn API (most of its import time);
    scikit-learn itself still imports afterwards (evaluation.optimize_threshold uses it)."""
    code = (
        "import sys\n"
        "from pipespec.stages.package import _import_lightgbm\n"
        "_import_lightgbm()\n"
        "import lightgbm\n"
        "print('sklearn' in sys.modules, lightgbm.compat.SKLEARN_INSTALLED)\n"
        "from sklearn.metrics import precision_recall_curve\n"
        "print(callable(precision_recall_curve))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert proc.stdout.split() == ["False", "False", "True"]
