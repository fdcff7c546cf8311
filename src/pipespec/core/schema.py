"""Typed schemas for every config group.

They are plain dataclasses (no Hydra import here, so serving never pays for it);
``pipespec.engine.schemas`` registers them in Hydra's ConfigStore as ``pipespec_schema``,
which ``configs/config.yaml`` lists first in its defaults. Composition then rejects an unknown
key, a wrong type or an unknown enum value before anything runs.

``"???"`` is OmegaConf's marker for a required value: composition fails if it is left unset.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import Any

MISSING: Any = "???"


class Task(Enum):
    """What the model predicts; picks the objective, metrics and output format."""

    binary = "binary"
    multiclass = "multiclass"
    regression = "regression"


class Source(Enum):
    """Where a dataset's rows come from."""

    embedded = "embedded"  # pipespec's seeded generator: no download, no file
    csv = "csv"
    parquet = "parquet"


@dataclass
class SampleConfig:
    """Seeded sampling of the loaded rows (``env=dev`` uses it to iterate fast)."""

    fraction: float | None = None
    rows: int | None = None


@dataclass
class DatasetConfig:
    """One table: where it is, how to read it, what to predict."""

    name: str = MISSING
    source: Source = MISSING
    path: str | None = None
    target: str = MISSING
    task: Task = MISSING
    rows: int | None = None  # embedded source only: how many rows to generate
    sep: str = ","
    header: bool = True
    columns: list[str] | None = None  # column names when header is false
    na_values: list[str] = field(default_factory=list)
    drop: list[str] = field(default_factory=list)  # id or leakage columns never used as features
    sample: SampleConfig = field(default_factory=SampleConfig)


@dataclass
class SplitConfig:
    """Seeded train/valid/test split of the loaded table."""

    valid: float = 0.15
    test: float = 0.15
    stratify: bool = True  # keep class balance in every split (classification only)


@dataclass
class FeaturesConfig:
    """Feature handling fitted on the training split and reused as-is downstream."""

    name: str = MISSING
    drop: list[str] = field(default_factory=list)
    categorical: list[str] | None = None  # null: every text column is categorical
    max_categories: int = 1000  # categories beyond the most frequent N go to 'other'


@dataclass
class ModelConfig:
    """A LightGBM model. Named fields are the usual knobs; ``params`` takes any other."""

    name: str = MISSING
    objective: str | None = None  # null: from dataset.task
    num_boost_round: int = 500
    early_stopping_rounds: int | None = 50
    learning_rate: float = 0.05
    num_leaves: int = 31
    max_depth: int = -1
    min_data_in_leaf: int = 20
    feature_fraction: float = 1.0
    bagging_fraction: float = 1.0
    bagging_freq: int = 0
    lambda_l1: float = 0.0
    lambda_l2: float = 0.0
    params: dict[str, Any] = field(default_factory=dict)


@dataclass
class EvaluationConfig:
    """How the evaluate stage scores its inputs (the pipeline names which splits)."""

    name: str = MISSING
    threshold: float = 0.5  # binary: probability at which a row counts as positive
    headline: str | None = None  # metric shown in run summaries; null: the task's default


@dataclass
class EnvConfig:
    """The experiment-to-production switch; the values it changes live in their own groups."""

    name: str = MISSING


@dataclass
class ComputeConfig:
    """Where stages run. ``num_threads`` is fixed so that results are reproducible."""

    name: str = MISSING
    backend: str = "local"
    num_threads: int = 2


@dataclass
class RootConfig:
    """The whole composition, as written to ``params.yaml``."""

    seed: int = 42
    dataset: DatasetConfig = field(default_factory=DatasetConfig)
    split: SplitConfig = field(default_factory=SplitConfig)
    features: FeaturesConfig = field(default_factory=FeaturesConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    evaluation: EvaluationConfig = field(default_factory=EvaluationConfig)
    env: EnvConfig = field(default_factory=EnvConfig)
    compute: ComputeConfig = field(default_factory=ComputeConfig)


SCHEMA_NAME = "pipespec_schema"
