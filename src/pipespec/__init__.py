"""pipespec: declarative pipeline-as-config for tabular machine learning.

YAML configs under ``configs/`` are composed with Hydra into ``params.yaml``; pipelines under
``pipelines/`` are compiled with the params each stage reads into ``dvc.yaml``; ``dvc repro``
then trains, evaluates and packages LightGBM models reproducibly.

The public API is small and importing it is cheap: ``__version__``, the errors a caller may
catch (``PipespecError`` and the subclasses whose exit codes scripts see most), and
``Bundle``, the production artifact, which loads its heavy libraries on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pipespec.core.errors import (
    BundleError,
    ConfigError,
    DataError,
    DriftError,
    PipelineError,
    PipespecError,
    StageError,
    StaleError,
)
from pipespec.core.version import __version__

__all__ = [
    "Bundle",
    "BundleError",
    "ConfigError",
    "DataError",
    "DriftError",
    "PipelineError",
    "PipespecError",
    "StageError",
    "StaleError",
    "__version__",
]


if TYPE_CHECKING:
    from pipespec.bundle.bundle import Bundle


def __getattr__(name: str) -> Any:
    """``pipespec.Bundle`` on first use, so that ``import pipespec`` stays cheap."""
    if name == "Bundle":
        from pipespec.bundle.bundle import Bundle

        return Bundle
    raise AttributeError(f"module 'pipespec' has no attribute '{name}'")
