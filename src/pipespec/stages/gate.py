"""The ``gate`` stage: check ``evaluation.gates`` (e.g. ``test.auc: ">= 0.80"``, or a
behaviour metric such as ``behavior.slices.female.auc``) against the metrics files it takes as
inputs. A failed gate fails the stage, and so the run, naming the metric, its value and the
bound. The report is a DVC metrics file."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from pipespec.core.atomic import write_json
from pipespec.core.bounds import OPERATORS, parse_bound
from pipespec.core.console import console
from pipespec.core.errors import ConfigError, StageError
from pipespec.stages.context import StageContext

# The kind's contract (docs/architecture.md, "Stage kinds")
READS = ("evaluation.gates",)
INPUTS = ("metrics",)
ANY_INPUTS = True  # every input is a metrics file the gates may name
OUTPUTS = {"report": ("metrics/{stage}.json", "metrics")}


def parse_gate(key: str, expr: Any) -> tuple[str, float]:
    """``">= 0.8"`` -> (">=", 0.8); a ConfigError naming ``evaluation.gates.KEY`` otherwise."""
    return parse_bound(f"evaluation.gates.{key}", expr)


def flatten(tree: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in tree.items():
        path = f"{prefix}.{key}" if prefix else str(key)
        if isinstance(value, Mapping):
            out.update(flatten(value, path))
        else:
            out[path] = value
    return out


def run(ctx: StageContext) -> None:
    gates = flatten(ctx.params["evaluation"]["gates"])
    metrics: dict[str, Any] = {}
    for path in ctx.inputs.values():
        for key, value in flatten(json.loads(path.read_text(encoding="utf-8"))).items():
            metrics.setdefault(key, value)
    results, failures = [], []
    for key, expr in sorted(gates.items()):
        op, bound = parse_gate(key, expr)
        if key not in metrics:
            raise ConfigError(
                f"evaluation.gates.{key}: no metric '{key}' in "
                f"{', '.join(p.name for p in ctx.inputs.values())}",
                hint=f"Metrics: {', '.join(sorted(metrics))}",
            )
        value = float(metrics[key])
        passed = OPERATORS[op](value, bound)
        results.append({"metric": key, "value": value, "op": op, "bound": bound, "passed": passed})
        mark = "[green]pass[/]" if passed else "[red]FAIL[/]"
        console().print(f"  {mark} {key} = {value:.6g} (required {op} {bound:g})")
        if not passed:
            failures.append(f"{key} = {value:.6g}, required {op} {bound:g}")
    write_json(
        ctx.output("report"),
        {
            "gates_passed": sum(r["passed"] for r in results),
            "gates_failed": len(failures),
            "gates": results,
        },
    )
    if failures:
        raise StageError(
            f"quality gate{'s' if len(failures) > 1 else ''} failed: " + "; ".join(failures),
            hint="The run fails here and its bundle is not to be released. Improve the model, "
            "or change evaluation.gates if the bound is wrong.",
        )
    if not results:
        console().print("  no gates configured (evaluation.gates is empty)")
