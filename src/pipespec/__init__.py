"""pipespec: declarative pipeline-as-config for tabular machine learning.

YAML configs under ``configs/`` are composed with Hydra into ``params.yaml``; pipelines under
``pipelines/`` are compiled with the params each stage reads into ``dvc.yaml``; ``dvc repro``
then trains, evaluates and packages LightGBM models reproducibly.

The public API is small and importing it is cheap: heavy libraries load only where used.
"""

from __future__ import annotations

__version__ = "0.1.0"

from pipespec.core.errors import (
    ConfigError,
    DataError,
    PipelineError,
    PipespecError,
    StageError,
    StaleError,
)

__all__ = [
    "ConfigError",
    "DataError",
    "PipelineError",
    "PipespecError",
    "StageError",
    "StaleError",
    "__version__",
]
