"""Typed schemas for every config group.

They are plain dataclasses (no Hydra import here, so serving never pays for it);
``pipespec.engine.configstore`` registers them in Hydra's ConfigStore as ``pipespec_schema``,
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


class Backend(Enum):
    """Where stages compute."""

    local = "local"
    dask = "dask"
    spark = "spark"


class Encoding(Enum):
    """How categorical features reach the model."""

    native = "native"  # integer codes, LightGBM's categorical splits
    onehot = "onehot"  # one 0/1 column per category


class Source(Enum):
    """Where a dataset's rows come from."""

    embedded = "embedded"  # pipespec's seeded generator: no download, no file
    csv = "csv"
    parquet = "parquet"
    spark = "spark"  # a table (dataset.table) or query (dataset.query) of a Spark catalog


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
    test_path: str | None = None  # a separate test file, read like path (the split keeps it whole)
    target: str = MISSING
    task: Task = MISSING
    rows: int | None = None  # embedded source only: how many rows to generate
    sep: str = ","
    header: bool = True
    columns: list[str] | None = None  # names when header is false (default Column_0, Column_1..)
    na_values: list[str] = field(default_factory=list)  # extra markers of a missing value
    keep_default_na: bool = True  # false: 'NA', 'None', '' ... stay text (House Prices)
    strip: bool = False  # strip spaces around text values and names (Adult's ' State-gov')
    comment: str | None = None  # lines starting with it are skipped (Adult test's '|1x3 ...')
    encoding: str = "utf-8"
    dtypes: dict[str, str] = field(default_factory=dict)  # {column: float|int|str|category|bool}
    # a token that is not a number in a column read as numbers: false stops load naming it
    # (declare it in na_values); true reads it as missing, counted (docs: One reading contract)
    coerce_numeric: bool = False
    drop: list[str] = field(default_factory=list)  # id or leakage columns never used as features
    dedupe: bool = False  # drop exact duplicate rows
    weight: str | None = None  # column of sample weights (not a feature)
    weight_path: str | None = None  # side file, one weight per row of path (LightGBM's .weight)
    sample: SampleConfig = field(default_factory=SampleConfig)
    # source spark: a table of the session's catalog, or a SQL query over it
    table: str | None = None
    query: str | None = None
    snapshot: str | None = None  # the table's files: a DVC dependency, a changed table re-runs load
    warehouse: str | None = None  # spark.sql.warehouse.dir (null: the cluster's own)
    metastore: str | None = None  # a local Derby metastore folder (null: the cluster's catalog)


class SchemaPolicy(Enum):
    """What the validate stage does with rows that break the data schema."""

    fail = "fail"  # the stage fails, naming column, check and count; nothing downstream runs
    quarantine = "quarantine"  # failing rows go to a quarantine file; the others go on


@dataclass
class SchemaConfig:
    """The data schema the loaded table must fit (a pandera YAML file), and its policy."""

    name: str = MISSING
    path: str | None = None  # pandera YAML schema, project-relative; null: basic checks only
    policy: SchemaPolicy = SchemaPolicy.fail
    max_failure_fraction: float = 0.0  # quarantine: go on while failing rows / rows <= this
    coerce: bool = False  # true: convert every column to its declared dtype before checking


@dataclass
class SplitConfig:
    """Seeded train/valid/test split of the loaded table."""

    valid: float = 0.15
    test: float = 0.15
    stratify: bool = True  # keep class balance in every split (classification only)
    group: str | None = None  # rows sharing this column's value stay in one split
    time: str | None = None  # order by this column: oldest rows train, newest test


@dataclass
class FeaturesConfig:
    """Feature handling fitted on the training split and reused as-is downstream."""

    name: str = MISSING
    select: list[str] | None = None  # keep only these input columns (null: all)
    drop: list[str] = field(default_factory=list)
    rename: dict[str, str] = field(default_factory=dict)  # {old: new}
    categorical: list[str] | None = None  # numeric columns to treat as categories (text always is)
    dates: dict[str, list[str]] = field(default_factory=dict)  # {column: [year, month, ...]}
    infer_dates: bool = True  # text columns that parse as dates become date parts
    derived: dict[str, str] = field(default_factory=dict)  # {new: "a / b"}: arithmetic on columns
    transforms: dict[str, dict[str, Any]] = field(default_factory=dict)  # {col: {log1p: true}}
    impute: dict[str, Any] = field(default_factory=dict)  # {col: median|most_frequent|constant:V}
    missing_indicators: bool = False  # add COL_missing (0/1) for every imputed column
    encoding: Encoding = Encoding.native  # categorical encoding: native (LightGBM) or onehot
    max_categories: int = 1000  # at most the N most frequent categories get their own code
    min_frequency: int = 1  # categories seen fewer times in training are rare
    other_bucket: bool = True  # rare and unseen categories share one code (else: missing)
    target_map: dict[str, Any] = field(default_factory=dict)  # {raw label: label}
    custom: list[str] = field(default_factory=list)  # ["package.module:Class", ...]


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
    class_weight: Any = None  # null, "balanced", or {class label: weight}
    cv_folds: int = 0  # >= 2: k-fold cross-validation on train, out-of-fold metrics reported
    params: dict[str, Any] = field(default_factory=dict)


@dataclass
class EvaluationConfig:
    """How the evaluate stage scores its inputs (the pipeline names which splits)."""

    name: str = MISSING
    threshold: float = 0.5  # binary: probability at which a row counts as positive
    optimize_threshold: bool = False  # binary: pick the F1-best threshold on 'valid' instead
    headline: str | None = None  # metric shown in run summaries; null: the task's default
    plots_on: str = "test"  # the input whose curves are written for `dvc plots`
    gates: dict[str, Any] = field(default_factory=dict)  # {"test.auc": ">= 0.80"}


@dataclass
class EnvConfig:
    """The experiment-to-production switch; the values it changes live in their own groups."""

    name: str = MISSING


@dataclass
class ComputeConfig:
    """Where stages run. ``num_threads`` is fixed so that results are reproducible.

    With ``backend: dask`` the data stages work partition by partition and training uses
    ``lightgbm.dask``: on the cluster at ``address``, or on a ``LocalCluster`` of ``workers``
    processes started for the run. With ``backend: spark`` the same stage bodies run on
    the executors of a Spark session at ``master`` (``stages.cluster``) and training is
    LightGBM's data-parallel mode in one barrier stage (``stages.train_spark``).
    """

    name: str = MISSING
    backend: Backend = Backend.local
    num_threads: int = 2  # LightGBM threads (local); under dask each worker uses its threads
    address: str | None = None  # an existing scheduler, "tcp://host:8786"; null: LocalCluster
    workers: int = 2  # LocalCluster worker processes
    threads_per_worker: int = 1
    memory_limit: str = "4GiB"  # per LocalCluster worker; it spills to disk beyond 60% of it
    partition_rows: int = 500_000  # rows per partition when pipespec partitions a table
    # backend spark: the master (local[N], spark://host:port, yarn, k8s://...), how many
    # executors (one LightGBM machine each), their cores and memory
    master: str = "local[2]"
    executors: int = 2
    executor_cores: int = 1
    executor_memory: str = "2g"
    driver_memory: str = "2g"
    start_timeout: int = 300  # seconds to wait for the session and its executors


class Engine(Enum):
    """What computes the model's scores when serving and predicting (``production.engine``)."""

    lightgbm = "lightgbm"  # LightGBM's own booster.predict
    lleaves = "lleaves"  # the model compiled to machine code by a `compile` stage (lleaves)


class OnInvalid(Enum):
    """What batch prediction does with rows that break the bundle's input schema."""

    fail = "fail"  # stop and name the rows and columns at fault; write nothing
    skip = "skip"  # predict the valid rows; report (and optionally save) the others


@dataclass
class MonitorConfig:
    """Drift thresholds: crossing any of them makes ``pipespec monitor`` exit non-zero."""

    psi: float = 0.2  # population stability index of any feature
    pvalue: float | None = None  # KS (numeric) / chi-square (categorical); null: reported only
    missing_rate: float = 0.1  # absolute change of a feature's missing rate
    violation_rate: float = 0.05  # share of rows with a malformed value (what serving refuses)
    # an unusual value's rate (out of range, unseen category, unexpected null) per feature may
    # rise this much above the rate the reference's held-out rows show before it alerts
    unusual_margin: float = 0.05
    prediction_psi: float = 0.2  # PSI of the model's predictions


@dataclass
class StrictConfig:
    """Unusual input to refuse (a 4xx, a refused row) instead of predicting with a warning."""

    out_of_range: bool = False  # a number outside training's [min, max] widened by range_margin
    unseen_category: bool = False  # a category training never saw
    unexpected_null: bool = False  # a null in a column that had none in training


@dataclass
class ProductionConfig:
    """The bundle the ``package`` stage writes, and how predict, serve and monitor use it."""

    on_invalid: OnInvalid = OnInvalid.fail
    range_margin: float | None = 0.5  # usual: observed [min, max] widened by this x range
    strict: StrictConfig = field(default_factory=StrictConfig)
    profile_bins: int = 10  # quantile bins per numeric feature in the reference profile
    max_records: int = 1000  # serve: records per request
    max_body_bytes: int = 1048576  # serve: request body size
    git_commit: bool = False  # record git HEAD in the card (then bundles differ per commit)
    monitor: MonitorConfig = field(default_factory=MonitorConfig)
    # modules whose custom transforms a host may import from a bundle (predict, serve,
    # monitor, test; as --allow-custom): a bundle naming any other module is refused
    allow_custom: list[str] = field(default_factory=list)
    # lleaves: a `compile` stage compiles the model (pipespec[compiled]); serve and predict
    # use it when its cache key matches, else fall back to LightGBM (docs/architecture.md)
    engine: Engine = Engine.lightgbm


class Evidence(Enum):
    """What a registry stage requires of a version before it is promoted to it."""

    gate = "gate"  # the quality gates passed (metrics/gate.json); release already demands it
    behavior = "behavior"  # the behaviour checks passed, when the version has a report of them


@dataclass
class RegistryStageConfig:
    """One registry stage: where a version must come from, and the evidence it needs."""

    from_stage: str | None = None  # null: straight from a release; else the stage before this
    requires: list[Evidence] = field(default_factory=list)


@dataclass
class RegistryConfig:
    """The model registry in git (GTO's tag format): the artifact name and its stages."""

    name: str = MISSING
    artifact: str = "model"  # GTO/DVC artifact name: lower-case letters, digits, '-', '/'
    path: str = "models/bundle"  # the bundle the artifact points to (dvc.yaml `artifacts:`)
    type: str = "model"
    description: str = ""
    stages: dict[str, RegistryStageConfig] = field(default_factory=dict)


class Goal(Enum):
    """Which way a search drives its metric."""

    maximize = "maximize"
    minimize = "minimize"


class Sampler(Enum):
    """How a search picks the next trial's values (seeded with the root seed)."""

    tpe = "tpe"  # Optuna's tree-structured Parzen estimator
    random = "random"


@dataclass
class HparamsSearchConfig:
    """An Optuna search; every trial is a DVC experiment (``pipespec run hparams_search=NAME``)."""

    name: str = MISSING
    metric: str = MISSING  # a key of the metrics files, e.g. valid.auc
    direction: Goal = Goal.maximize
    n_trials: int = 20
    jobs: int = 1  # trials run in parallel (DVC queue workers)
    sampler: Sampler = Sampler.tpe
    params: dict[str, str] = field(default_factory=dict)  # {key: "interval(0.01, 0.3)", ...}


class Direction(Enum):
    """The way a directional expectation lets the prediction move (or stay)."""

    up = "up"  # the prediction must not go down
    down = "down"  # the prediction must not go up


@dataclass
class SliceConfig:
    """A named row filter and what the model must achieve on it.

    The rows: ``values`` (the column's value is one of them), or ``min``/``max`` (``min <=
    value < max``), or ``bins`` (one slice per quantile bin of the column). The checks:
    ``bounds`` (``{auc: ">= 0.85"}``), ``max_gap`` (``{auc: 0.03}``: at most this much worse
    than on all rows), or both.
    """

    column: str = MISSING
    values: list[Any] | None = None
    min: float | None = None
    max: float | None = None
    bins: int | None = None
    bounds: dict[str, str] = field(default_factory=dict)
    max_gap: dict[str, float] = field(default_factory=dict)
    min_rows: int = 30  # a slice with fewer rows fails: its metrics would mean little


@dataclass
class SliceSearchConfig:
    """The automatic search for the weakest segments (one or two columns' values or bins)."""

    enabled: bool = True
    columns: list[str] | None = None  # null: every input column
    max_columns: int = 2  # 1: single columns; 2: also pairs of columns
    bins: int = 4  # numeric columns are cut into this many quantile bins
    min_rows: int = 100  # smaller segments are not reported
    top: int = 5  # how many of the weakest segments the report lists
    metric: str | None = None  # null: auc (binary), accuracy (multiclass), rmse (regression)
    max_gap: float | None = None  # a segment this much worse than overall fails; null: report


@dataclass
class InvarianceConfig:
    """A perturbation that must not change the prediction: the column set to ``value``, or
    Gaussian noise of ``noise`` times the column's standard deviation added to it."""

    column: str = MISSING
    value: Any = None
    noise: float | None = None
    tolerance: float = 0.01  # largest change of a prediction (probability or value) allowed
    max_violation_rate: float = 0.0  # share of rows allowed to change by more than tolerance


@dataclass
class DirectionalConfig:
    """Adding ``shift`` to a numeric column must move the prediction only ``direction``."""

    column: str = MISSING
    shift: float = MISSING
    direction: Direction = MISSING
    output: str | None = None  # null: prediction; multiclass: p_<label>, a class's probability
    tolerance: float = 0.0  # a move the wrong way up to this size is not a violation
    max_violation_rate: float = 0.0


@dataclass
class MonotoneConfig:
    """Directional checks derived from ``monotone_constraints`` in ``model.params``."""

    enabled: bool = True
    shift: float = 1.0  # in standard deviations of the column
    tolerance: float = 1e-9
    max_violation_rate: float = 0.0


@dataclass
class CasesConfig:
    """Minimum-functionality cases: a CSV of input fields plus ``expected_label`` and/or
    ``expected_min``/``expected_max`` (the prediction's range), and an optional ``case`` name."""

    path: str | None = None  # project-relative (a DVC dependency of the behavior stage)
    max_failure_rate: float = 0.0


@dataclass
class LatencyConfig:
    """A latency budget for ``Bundle.predict``: p50/p99 in milliseconds, for one record and
    for a batch; null bounds are measured and reported only."""

    enabled: bool = True
    records: int = 50  # single-record calls timed
    batch_rows: int = 1000
    batches: int = 10
    single_p50_ms: float | None = None
    single_p99_ms: float | None = None
    batch_p50_ms: float | None = None
    batch_p99_ms: float | None = None


@dataclass
class BehaviorConfig:
    """Behaviour checks of the packaged model (the ``behavior`` stage, ``pipespec test``)."""

    name: str = MISSING
    seed: int = 42  # perturbations and sampling: the same bundle and data give the same report
    rows: int | None = 20000  # at most this many rows of the data (a seeded sample)
    enforce: bool = True  # a failed check fails the stage (exit 10); false: report, gate decides
    slices: dict[str, SliceConfig] = field(default_factory=dict)
    search: SliceSearchConfig = field(default_factory=SliceSearchConfig)
    invariance: dict[str, InvarianceConfig] = field(default_factory=dict)
    directional: dict[str, DirectionalConfig] = field(default_factory=dict)
    monotone: MonotoneConfig = field(default_factory=MonotoneConfig)
    cases: CasesConfig = field(default_factory=CasesConfig)
    latency: LatencyConfig = field(default_factory=LatencyConfig)


@dataclass
class CiConfig:
    """The CI workflow ``pipespec export github-actions`` / ``gitlab-ci`` writes."""

    name: str = MISSING
    python: str = "3.11"  # Python version the job installs the project with
    runner: str = "ubuntu-latest"  # GitHub's runs-on
    image: str = "python:3.11-slim"  # GitLab: the job's container image
    # the project's install command; null: pip install of this pipespec version
    install: str | None = None
    remote: str | None = None  # DVC remote to pull from and push to; null: the default remote
    cache: bool = True  # cache pip downloads and DVC's cache between runs
    # PRs into these run it; null: the repository's default branch (origin's, else HEAD's)
    branches: list[str] | None = None


@dataclass
class OrchestratorConfig:
    """The Airflow DAGs ``pipespec export airflow`` writes."""

    name: str = MISSING
    dag_id: str = "pipespec"  # the training DAG; a monitoring pipeline's DAG gets `_<file>`
    schedule: str | None = None  # cron or preset of the training DAG; null: triggered only
    monitor_schedule: str = "@daily"  # schedule of a monitoring pipeline's DAG
    retries: int = 1
    retry_delay_seconds: int = 300
    timeout_minutes: int = 120  # a task running longer fails
    pool: str | None = None  # Airflow pool the tasks take slots from
    share: bool = True  # pull each task's inputs from the DVC remote, push its outputs after
    remote: str | None = None  # DVC remote for share; null: the default remote
    env: dict[str, str] = field(default_factory=dict)  # extra environment of every task
    # an image holding the project's checkout: one KubernetesPodOperator per task (settings
    # from the kubernetes group) instead of a BashOperator; null: BashOperator
    image: str | None = None


@dataclass
class ResourcesConfig:
    """Kubernetes resource requests and limits of a container: these defaults are the serving
    container's (``deploy.resources``); ``kubernetes.resources`` (each training stage's
    container) sets its own."""

    cpu_request: str = "250m"
    cpu_limit: str = "1"
    memory_request: str = "512Mi"
    memory_limit: str = "1Gi"


@dataclass
class KubernetesConfig:
    """Training on Kubernetes (``pipespec export kubernetes-training``, and the Airflow
    export's pods with ``orchestrator.image``): one container per stage, sharing artifacts
    only through the DVC remote."""

    name: str = MISSING
    prefix: str = "pipespec"  # Job names are <prefix>-<stage>; the clusters <prefix>-dask|spark
    image: str = "pipespec-project:latest"  # an image holding the project's checkout at workdir
    image_pull_policy: str = "IfNotPresent"  # Always, IfNotPresent or Never
    workdir: str = "/project"  # the checkout inside the image
    namespace: str | None = None  # null: the namespace kubectl applies to
    service_account: str | None = None  # null: the namespace's default service account
    secrets: list[str] = field(default_factory=list)  # Secrets whose keys become env variables
    remote: str | None = None  # DVC remote the stages share artifacts through; null: default
    backoff_limit: int = 0  # Job retries of a failed stage pod
    ttl_seconds: int = 86400  # a finished Job is deleted after this long
    resources: ResourcesConfig = field(  # of each training stage's container
        default_factory=lambda: ResourcesConfig(
            cpu_request="1", cpu_limit="2", memory_request="2Gi", memory_limit="4Gi"
        )
    )


@dataclass
class AutoscalingConfig:
    """HorizontalPodAutoscaler bounds."""

    min_replicas: int = 2
    max_replicas: int = 5
    cpu_utilization: int = 70  # target average CPU, % of the request


@dataclass
class AlertsConfig:
    """Prometheus alert thresholds beyond ``production.monitor``'s drift thresholds."""

    window: str = "10m"  # rates and drift are computed over this range
    hold: str = "5m"  # how long a condition holds before the alert fires
    error_rate: float = 0.01  # share of requests answered 5xx
    latency_p99_seconds: float = 0.5  # p99 of /predict


@dataclass
class DeployConfig:
    """The serving image and its Kubernetes deployment (``pipespec export docker|kubernetes``)."""

    name: str = MISSING
    version: str = "0.1.0"  # the model's release version, in labels and the image tag
    image: str = "pipespec-model"  # image name (without tag) the manifests run
    python: str = "3.11"  # base image python:<python>-slim
    port: int = 8000
    replicas: int = 2
    bundle: str = "models/bundle"  # the bundle copied into the image
    resources: ResourcesConfig = field(default_factory=ResourcesConfig)
    autoscaling: AutoscalingConfig = field(default_factory=AutoscalingConfig)
    alerts: AlertsConfig = field(default_factory=AlertsConfig)


@dataclass
class RootConfig:
    """The whole composition, as written to ``params.yaml``."""

    seed: int = 42
    dataset: DatasetConfig = field(default_factory=DatasetConfig)
    schema: SchemaConfig = field(default_factory=SchemaConfig)
    split: SplitConfig = field(default_factory=SplitConfig)
    features: FeaturesConfig = field(default_factory=FeaturesConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    evaluation: EvaluationConfig = field(default_factory=EvaluationConfig)
    env: EnvConfig = field(default_factory=EnvConfig)
    compute: ComputeConfig = field(default_factory=ComputeConfig)
    production: ProductionConfig = field(default_factory=ProductionConfig)
    registry: RegistryConfig = field(default_factory=RegistryConfig)
    behavior: BehaviorConfig = field(default_factory=BehaviorConfig)
    hparams_search: HparamsSearchConfig | None = None
    ci: CiConfig = field(default_factory=CiConfig)
    orchestrator: OrchestratorConfig = field(default_factory=OrchestratorConfig)
    kubernetes: KubernetesConfig = field(default_factory=KubernetesConfig)
    deploy: DeployConfig = field(default_factory=DeployConfig)


SCHEMA_NAME = "pipespec_schema"
