"""pipespec: declarative pipeline-as-config for tabular machine learning.

YAML configs under ``configs/`` are composed with Hydra into ``params.yaml``; pipelines under
``pipelines/`` are compiled with the params each stage reads into ``dvc.yaml``; ``dvc repro``
then trains, evaluates and packages LightGBM models reproducibly.

The public API is small and importing it is cheap: heavy libraries load only where used.
"""

from __future__ import annotations

__version__ = "0.1.0"

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
