"""Behaviour checks of a bundle: slices, the weakest-segment search, invariance, directional
expectations (declared, and derived from monotone constraints), minimum-functionality cases
and a latency budget.

Every check goes through ``Bundle.predict`` on raw rows, so what is measured is what ships.
The checks are the ``behavior`` section of ``params.yaml`` (typed by
``pipespec.core.config.BehaviorConfig``); ``spec_from`` reads that section, or the same
mapping from a checks file, without Hydra, so the ``behavior`` stage and ``pipespec test`` on
a serving host run one implementation. Sampling and perturbations are seeded per check: the
same bundle, data and checks give the same report (latency timings aside, which
``stable`` leaves out of what DVC tracks).

The package: ``spec`` (the checks as typed data), ``rows`` (the data, its predictions and
metrics), one module per check kind (``slices``, ``search``, ``invariance``,
``directional``, ``cases``, ``latency``; ``perturb`` holds what invariance and directional
share), ``run`` (the order they run in) and ``report`` (the verdicts and their renderings).
"""

from pipespec.bundle.behavior.directional import MONOTONE_KEYS, monotone_constraints
from pipespec.bundle.behavior.report import (
    Check,
    Report,
    as_report,
    failure_error,
    render_html,
    stable,
    summary,
    table,
)
from pipespec.bundle.behavior.rows import METRICS, metrics
from pipespec.bundle.behavior.run import check_bundle, read_data, run_checks, sample
from pipespec.bundle.behavior.spec import SECTION, columns_read, load_checks, spec_from

__all__ = [
    "METRICS",
    "MONOTONE_KEYS",
    "SECTION",
    "Check",
    "Report",
    "as_report",
    "check_bundle",
    "columns_read",
    "failure_error",
    "load_checks",
    "metrics",
    "monotone_constraints",
    "read_data",
    "render_html",
    "run_checks",
    "sample",
    "spec_from",
    "stable",
    "summary",
    "table",
]
