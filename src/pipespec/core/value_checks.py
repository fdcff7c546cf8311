"""Checks of config values that the typed schema (``core/config.py``) cannot express.

The schema refuses an unknown key, a wrong type or a value outside an enum. What it cannot
say (a fraction in a range, a size, a bound, a LightGBM parameter name, a strategy) is in
one table here, ``RULES``: a key and the function that checks the value there (with the
other keys it depends on, such as what ``compute=dask`` does not support).
``check_values(params)`` runs every rule on a composed config (plain data, as in
``params.yaml``) and returns every problem at once, so ``pipespec compose`` and ``pipespec
run`` refuse a bad value before any stage starts; ``engine/compose.py`` names the file or
override each key came from. Checks that need the data (a column's type, the class labels)
stay in the stages.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import fields
from typing import Any

from pipespec.core import grammar
from pipespec.core.bounds import HINT as BOUND_HINT
from pipespec.core.bounds import read_bound
from pipespec.core.config import ModelConfig
from pipespec.core.value_rule import KeyPath, Problem, Rule


def _whole_number(path: KeyPath, value: Any, params: Mapping[str, Any]) -> Iterator[Problem]:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        yield Problem((path,), f"must be a whole number >= 1, got {value!r}")


def _split(path: KeyPath, split: Any, params: Mapping[str, Any]) -> Iterator[Problem]:
    """Fractions of all rows; with ``dataset.test_path`` the test file is the test set and
    ``split.test`` is not used (as in the split stage)."""
    valid, test = split.get("valid"), split.get("test")
    fixed_test = bool(_get(params, ("dataset", "test_path")))
    if fixed_test:
        test = 0.0
    for name, fraction in (("valid", valid), ("test", test)):
        if fraction < 0:
            yield Problem(((*path, name),), f"must be >= 0, got {fraction}")
    if valid >= 0 and test >= 0 and valid + test >= 1:
        if fixed_test:
            yield Problem(
                ((*path, "valid"),),
                f"must leave rows to train on, got {valid}",
                hint="dataset.test_path is the test set: split.valid is the share of the "
                "other rows to hold out for validation, below 1.",
            )
        else:
            yield Problem(
                ((*path, "valid"), (*path, "test")),
                f"split.valid + split.test must leave rows to train on, got {valid} + {test}",
                hint="They are shares of all rows: keep their sum below 1, e.g. 0.15 and 0.15.",
            )


def _sample(path: KeyPath, sample: Any, params: Mapping[str, Any]) -> Iterator[Problem]:
    fraction, rows = sample.get("fraction"), sample.get("rows")
    if fraction is not None and rows is not None:
        yield Problem(
            ((*path, "fraction"), (*path, "rows")),
            "set dataset.sample.fraction or dataset.sample.rows, not both",
            hint="Set the other one to null.",
        )
    if fraction is not None and not 0 < fraction <= 1:
        yield Problem(((*path, "fraction"),), f"must be in (0, 1], got {fraction}")
    if rows is not None:
        yield from _whole_number((*path, "rows"), rows, params)


def byte_size(value: Any) -> int | None:
    """The number of bytes in a size such as ``4GiB``, ``500 MB``, ``1e9`` or ``MB`` (the
    grammar of ``dask.utils.parse_bytes``, which Dask reads ``compute.memory_limit`` with),
    or None if ``value`` is not a size (or is negative). No Dask import."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        number, unit = float(value), ""
    else:
        text = str(value).replace(" ", "")
        if not any(char.isdigit() for char in text):
            text = "1" + text
        cut = len(text)
        while cut > 0 and text[cut - 1].isalpha():
            cut -= 1
        try:
            number = float(text[:cut])
        except ValueError:
            return None
        unit = text[cut:].lower()
    if unit not in _BYTE_UNITS:
        return None
    size = number * _BYTE_UNITS[unit]
    return int(size) if math.isfinite(size) and size >= 0 else None


_BYTE_UNITS = {
    **{"": 1, "b": 1},
    **{p + s: 1000**i for i, p in enumerate("kmgtp", 1) for s in ("", "b")},
    **{p + s: 1024**i for i, p in enumerate("kmgtp", 1) for s in ("i", "ib")},
}


def _memory_limit(path: KeyPath, value: Any, params: Mapping[str, Any]) -> Iterator[Problem]:
    if value in (None, "", "auto"):
        return
    if byte_size(value) is None:
        yield Problem(
            (path,),
            f"'{value}' is not a size",
            hint="Write a size per worker such as 4GiB, 500MB or 2e9 (bytes), or auto.",
        )


def _gates(path: KeyPath, gates: Any, params: Mapping[str, Any]) -> Iterator[Problem]:
    for key, expr in _leaves(gates, path):
        if read_bound(expr) is None:
            yield Problem((key,), f"cannot read bound '{expr}'", hint=BOUND_HINT)


_MODEL_KEYS = frozenset(f.name for f in fields(ModelConfig))


def _lightgbm_names(path: KeyPath, model: Any, params: Mapping[str, Any]) -> Iterator[Problem]:
    """``model.params`` keys, and keys added to ``model`` with ``+model.KEY=...``, go to
    LightGBM as parameters: each must be a name LightGBM knows."""
    from pipespec.core import lightgbm_params

    given = {name: (*path, "params", name) for name in model.get("params") or {}}
    given.update({name: (*path, name) for name in model if name not in _MODEL_KEYS})
    for name in lightgbm_params.unknown(list(given)):
        close = lightgbm_params.close_names(name)
        yield Problem(
            (given[name],),
            f"'{name}' is not a LightGBM parameter",
            hint=(f"Did you mean {', '.join(close)}? " if close else "")
            + f"See {lightgbm_params.DOCS}",
        )


def _class_weight(path: KeyPath, value: Any, params: Mapping[str, Any]) -> Iterator[Problem]:
    if value is None:
        return
    task = _get(params, ("dataset", "task"))
    if task == "regression":
        yield Problem(
            (path,),
            "applies to classification tasks only (dataset.task is regression)",
            hint="Set model.class_weight to null, or use dataset.weight for row weights.",
        )
    elif isinstance(value, Mapping):
        for label, weight in value.items():
            if _number(weight) is None:
                yield Problem(((*path, str(label)),), f"must be a number, got {weight!r}")
    elif value != "balanced":
        yield Problem(
            (path,),
            f"must be null, 'balanced' or a mapping {{class label: weight}}, got {value!r}",
        )


def _impute(path: KeyPath, impute: Any, params: Mapping[str, Any]) -> Iterator[Problem]:
    for column, strategy in impute.items():
        text = str(strategy)
        if text in ("median", "most_frequent") or text.startswith("constant:"):
            continue
        if isinstance(strategy, int | float):
            continue
        yield Problem(
            ((*path, str(column)),),
            f"unknown strategy '{strategy}'",
            hint="Use median, most_frequent, constant:VALUE or a number.",
        )


def _test_path(path: KeyPath, value: Any, params: Mapping[str, Any]) -> Iterator[Problem]:
    if value and _get(params, ("dataset", "source")) == "embedded":
        yield Problem(
            (path, ("dataset", "source")),
            "dataset.test_path needs a file source (csv or parquet), not embedded",
            hint="Set dataset.test_path to null, or pick a file dataset (dataset=csv).",
        )


# What compute=dask does not do, as (key, whether the config asks for it, hint).
_NOT_ON_DASK: tuple[tuple[KeyPath, Callable[[Any], bool], str], ...] = (
    (
        ("dataset", "weight_path"),
        bool,
        "Put the weights in a column of the data and name it in dataset.weight.",
    ),
    (
        ("model", "cv_folds"),
        lambda folds: int(folds or 0) >= 2,
        "Run cross-validation with compute=local on a sample (dataset.sample).",
    ),
    (
        ("features", "custom"),
        bool,
        "Fit the features with compute=local, or express them with the built-in options "
        "(derived, transforms, impute): a custom transform's fit takes the whole training "
        "table in memory.",
    ),
)


def _dask_limits(path: KeyPath, backend: Any, params: Mapping[str, Any]) -> Iterator[Problem]:
    if backend not in ("dask", "spark"):
        return
    for key, asks, hint in _NOT_ON_DASK:
        if asks(_get(params, key)):
            yield Problem(
                (key, path), f"{'.'.join(key)} is not supported with compute={backend}", hint=hint
            )


def _derived(path: KeyPath, derived: Any, params: Mapping[str, Any]) -> Iterator[Problem]:
    """Each expression in the grammar of ``core.expression`` (data, never code)."""
    from pipespec.core.expression import FUNCTIONS, ExpressionError, parse

    for name, expr in derived.items():
        try:
            parse(str(expr))
        except ExpressionError as exc:
            yield Problem(
                ((*path, str(name)),),
                exc.message,
                hint="An expression holds column names, numbers, + - * / // % **, "
                "comparisons, and/or/not (& | ~) and the functions "
                + ", ".join(sorted(FUNCTIONS))
                + ".",
            )


def _module_names(path: KeyPath, names: Any, params: Mapping[str, Any]) -> Iterator[Problem]:
    for i, name in enumerate(names):
        parts = str(name).split(".")
        if not all(p.isidentifier() and not p.startswith("__") for p in parts):
            yield Problem(
                ((*path, str(i)),),
                f"'{name}' is not a module name",
                hint="Name the module (package.module), not a file or a class.",
            )


def _monitor(path: KeyPath, monitor: Any, params: Mapping[str, Any]) -> Iterator[Problem]:
    """Drift thresholds: rates are shares in [0, 1]; PSI thresholds are positive."""
    for name, low, high in (
        ("violation_rate", 0.0, 1.0),
        ("missing_rate", 0.0, 1.0),
        ("unusual_margin", 0.0, 1.0),
        ("psi", 0.0, math.inf),
        ("prediction_psi", 0.0, math.inf),
    ):
        value = monitor.get(name)
        if value is None or not low < float(value) <= high or math.isnan(float(value)):
            shown = "a share in (0, 1]" if high == 1.0 else "a number > 0"
            yield Problem(((*path, name),), f"must be {shown}, got {value!r}")
    pvalue = monitor.get("pvalue")
    if pvalue is not None and not 0 < float(pvalue) < 1:
        yield Problem(((*path, "pvalue"),), f"must be in (0, 1) or null, got {pvalue!r}")


_MASTER = re.compile(r"local(\[(\d+|\*)\])?|spark://[A-Za-z0-9.\-]+:\d+(,[A-Za-z0-9.\-]+:\d+)*"
                     r"|yarn|k8s://https?://[A-Za-z0-9.\-]+(:\d+)?")  # fmt: skip


def _spark_master(path: KeyPath, value: Any, params: Mapping[str, Any]) -> Iterator[Problem]:
    if _get(params, ("compute", "backend")) != "spark":
        return
    if not isinstance(value, str) or not _MASTER.fullmatch(value):
        yield Problem(
            (path,),
            f"'{value}' is not a Spark master",
            hint="Write local[N], spark://host:port, yarn or k8s://https://host:port.",
        )


def _jvm_memory(path: KeyPath, value: Any, params: Mapping[str, Any]) -> Iterator[Problem]:
    if _get(params, ("compute", "backend")) != "spark":
        return
    if not isinstance(value, str) or not re.fullmatch(r"\d+[kmgt]?", value.lower()):
        yield Problem(
            (path,), f"'{value}' is not a JVM memory size", hint="Write a size such as 2g or 512m."
        )


def _spark_source(path: KeyPath, source: Any, params: Mapping[str, Any]) -> Iterator[Problem]:
    if source != "spark":
        return
    table, query = _get(params, ("dataset", "table")), _get(params, ("dataset", "query"))
    if bool(table) == bool(query):
        yield Problem(
            (("dataset", "table"), ("dataset", "query")),
            "dataset.source=spark reads dataset.table or dataset.query: set exactly one",
            hint="`dataset.table=db.name` reads a table of the catalog; `dataset.query='SELECT "
            "...'` runs a query.",
        )
    elif table and not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)?", table):
        yield Problem((("dataset", "table"),), f"'{table}' is not a table name (name or db.name)")
    if _get(params, ("dataset", "test_path")):
        yield Problem(
            (("dataset", "test_path"), path),
            "dataset.test_path is not read with dataset.source=spark",
            hint="Mark the test rows in the query, or set dataset.test_path to null.",
        )


def _engine(path: KeyPath, engine: Any, params: Mapping[str, Any]) -> Iterator[Problem]:
    """``lleaves`` needs the optional extra installed where the pipeline runs."""
    import importlib.util

    def absent(name: str) -> bool:
        try:
            return importlib.util.find_spec(name) is None
        except (ImportError, ValueError):
            return True

    if engine == "lleaves" and (absent("lleaves") or absent("llvmlite")):
        yield Problem(
            (path,),
            "'lleaves' needs the lleaves package, which is not installed",
            hint="Install the extra: pip install 'pipespec[compiled]' (lleaves and llvmlite), "
            "or set production.engine=lightgbm.",
        )


RULES: dict[str, Rule] = {
    "features.derived": _derived,
    "production.allow_custom": _module_names,
    "split": _split,
    "dataset.sample": _sample,
    "compute.workers": _whole_number,
    "compute.threads_per_worker": _whole_number,
    "compute.memory_limit": _memory_limit,
    "compute.master": _spark_master,
    "compute.executors": _whole_number,
    "compute.executor_cores": _whole_number,
    "compute.start_timeout": _whole_number,
    "compute.executor_memory": _jvm_memory,
    "compute.driver_memory": _jvm_memory,
    "dataset.source": _spark_source,
    "evaluation.gates": _gates,
    "model": _lightgbm_names,
    "model.class_weight": _class_weight,
    "features.impute": _impute,
    "dataset.test_path": _test_path,
    "compute.backend": _dask_limits,
    "production.monitor": _monitor,
    "production.engine": _engine,
}
"""Each key and its check. A key absent from the config (an empty optional group) is
skipped; ``hparams_search.direction`` and ``.sampler`` are enums of the schema itself."""


def _grammar(check: Callable[[str], str | None], hint: str | None = None) -> Rule:
    """A rule from a ``core/grammar.py`` check of one text value (null is left to the schema)."""

    def rule(path: KeyPath, value: Any, params: Mapping[str, Any]) -> Iterator[Problem]:
        if value is None:
            return
        problem = check(str(value))
        if problem:
            yield Problem((path,), problem, hint=hint)

    return rule


def _pattern(pattern: re.Pattern[str], what: str, max_length: int = 0, hint: str = "") -> Rule:
    return _grammar(lambda v: grammar.match(pattern, v, what, max_length), hint or None)


def _image(path: KeyPath, value: Any, params: Mapping[str, Any]) -> Iterator[Problem]:
    """An image name without tag; its last part names the Kubernetes objects."""
    text = str(value)
    problem = grammar.match(
        grammar.IMAGE_NAME, text, "an image name (lower-case [host/]path, no tag)", 255
    )
    if problem is None:
        problem = grammar.dns_label(text.rsplit("/", 1)[-1])
        if problem:
            problem = f"its last part names the Kubernetes objects: {problem}"
    if problem:
        yield Problem((path,), problem, hint="For example 'registry.example.com/churn-model'.")


def _env_names(path: KeyPath, env: Any, params: Mapping[str, Any]) -> Iterator[Problem]:
    for name in env or {}:
        problem = grammar.match(grammar.ENV_NAME, str(name), "an environment variable name")
        if problem:
            yield Problem(((*path, str(name)),), problem, hint="Use letters, digits and '_'.")


def _port(path: KeyPath, value: Any, params: Mapping[str, Any]) -> Iterator[Problem]:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 65535:
        yield Problem((path,), f"must be a port number in 1..65535, got {value!r}")


def _at_least_zero(path: KeyPath, value: Any, params: Mapping[str, Any]) -> Iterator[Problem]:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        yield Problem((path,), f"must be a whole number >= 0, got {value!r}")


def _quantities(path: KeyPath, resources: Any, params: Mapping[str, Any]) -> Iterator[Problem]:
    for key, value in (resources or {}).items():
        problem = grammar.match(grammar.QUANTITY, str(value), "a Kubernetes quantity")
        if problem:
            yield Problem(((*path, str(key)),), problem, hint="For example 250m, 1, 512Mi, 2Gi.")


def _no_expressions(path: KeyPath, ci: Any, params: Mapping[str, Any]) -> Iterator[Problem]:
    """GitHub evaluates ``${{ }}`` anywhere in a workflow, before any shell or quoting."""
    for key, value in _leaves(ci, path):
        items = value if isinstance(value, list) else [value]
        for item in items:
            if isinstance(item, str) and grammar.GITHUB_EXPRESSION in item:
                yield Problem(
                    (key,),
                    f"{item!r} holds a GitHub expression '${{{{': the workflow would evaluate it",
                    hint="Write the value itself; pipespec's workflow passes event fields "
                    "through env.",
                )


def _branches(path: KeyPath, branches: Any, params: Mapping[str, Any]) -> Iterator[Problem]:
    for i, branch in enumerate(branches or []):
        problem = grammar.single_line(str(branch))
        if problem:
            yield Problem((path,), f"item {i}: {problem}")


_WORD = "(letters, digits, '_', '.', '+', '-'; not starting with '-')"
GENERATED: dict[str, Rule] = {
    "deploy.image": _image,
    "deploy.version": _pattern(
        re.compile(r"[A-Za-z0-9]([A-Za-z0-9_.-]*[A-Za-z0-9])?"),
        "a version that is both an image tag and a Kubernetes label value "
        "(letters, digits, '.', '_', '-')",
        63,
        "For example 1.4.0.",
    ),
    "deploy.python": _pattern(
        grammar.PYTHON_VERSION, "a Python version such as 3.11", 0, "For example 3.11 or 3.12.4."
    ),
    "deploy.bundle": _grammar(grammar.project_path),
    "deploy.port": _port,
    "deploy.replicas": _at_least_zero,
    "deploy.resources": _quantities,
    "deploy.alerts.window": _pattern(grammar.DURATION, "a Prometheus duration such as 10m"),
    "deploy.alerts.hold": _pattern(grammar.DURATION, "a Prometheus duration such as 5m"),
    "registry.path": _grammar(grammar.project_path),
    "orchestrator.dag_id": _pattern(
        grammar.IDENTIFIER,
        "an identifier (letters, digits and '_', not starting with a digit)",
        200,
        "It names the DAG and its file dags/DAG_ID.py.",
    ),
    "orchestrator.env": _env_names,
    "orchestrator.remote": _pattern(grammar.WORD, f"a DVC remote name {_WORD}"),
    "ci.remote": _pattern(grammar.WORD, f"a DVC remote name {_WORD}"),
    "ci.runner": _pattern(grammar.WORD, f"a runner label {_WORD}"),
    "ci.image": _pattern(grammar.IMAGE_REFERENCE, "an image reference such as python:3.11-slim"),
    "ci.python": _pattern(grammar.WORD, f"a Python version {_WORD}"),
    "ci.branches": _branches,
    "ci": _no_expressions,
}
"""The values that reach generated files (exports, ``dvc.yaml``): each checked against the
grammar of what it stands for there (``core/grammar.py``), so none can add a line, an
option or code to a file; the exporters write them through the target's own quoting too."""


def check_values(params: Mapping[str, Any]) -> list[Problem]:
    """Every problem with the values of a composed config, in ``RULES``, ``GENERATED`` then
    Kubernetes order."""
    from pipespec.core.kubernetes_values import RULES as KUBERNETES_RULES

    problems: list[Problem] = []
    for key, rule in {**RULES, **GENERATED, **KUBERNETES_RULES}.items():
        path = tuple(key.split("."))
        value = _get(params, path, default=_ABSENT)
        if value is not _ABSENT:
            problems.extend(rule(path, value, params))
    return problems


_ABSENT = object()


def _get(params: Mapping[str, Any], path: KeyPath, default: Any = None) -> Any:
    node: Any = params
    for part in path:
        if not isinstance(node, Mapping) or part not in node:
            return default
        node = node[part]
    return node


def _leaves(tree: Any, path: KeyPath) -> Iterator[tuple[KeyPath, Any]]:
    """(path, value) of every non-mapping value under ``tree``."""
    if not isinstance(tree, Mapping):
        yield path, tree
        return
    for key, value in tree.items():
        yield from _leaves(value, (*path, str(key)))


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None
