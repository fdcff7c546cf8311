"""Rich renderings of the commands' results: the pipeline tree, the run summary, diffs,
experiments, the registry and drift."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from rich.console import Group
from rich.table import Table
from rich.text import Text
from rich.tree import Tree

from pipespec.core.numbers import number

if TYPE_CHECKING:
    from pipespec.engine.diff import DiffResult
    from pipespec.engine.experiments import ExperimentRow, Trial
    from pipespec.engine.pipeline import Pipeline
    from pipespec.engine.run import RunResult


def dag_tree(pipeline: Pipeline) -> Tree:
    """Stages as a tree under their first upstream; other inputs are named on the line."""
    root = Tree(Text("pipelines/", style="bold"))
    nodes: dict[str, Tree] = {}
    for stage in pipeline.stages:
        label = Text.assemble((stage.name, "bold cyan"), f" ({stage.kind.name})")
        if stage.kind.reads:
            label.append(f"  params: {', '.join(stage.kind.reads)}", style="dim")
        others = stage.upstream[1:]
        if others:
            label.append(f"  also after: {', '.join(others)}", style="yellow")
        for path in stage.outputs.values():
            label.append(f"\n-> {path}", style="green")
        parent = nodes[stage.upstream[0]] if stage.upstream else root
        nodes[stage.name] = parent.add(label)
    return root


def run_summary(result: RunResult) -> Group:
    parts: list[Table | Text] = []
    if result.changed_files:
        parts.append(Text.assemble(("wrote: ", "bold"), ", ".join(result.changed_files)))
    parts.append(
        Text.assemble(
            ("ran: ", "bold"), ", ".join(result.ran) or "nothing", f"  ({result.seconds:.1f}s)"
        )
    )
    if result.restored:
        parts.append(
            Text.assemble(("restored from run cache: ", "bold"), ", ".join(result.restored))
        )
    parts.append(Text.assemble(("up to date: ", "bold"), ", ".join(result.skipped) or "none"))
    for stage, metrics in result.metrics.items():
        checks = metrics.get("behavior")
        if isinstance(checks, dict) and "checks" in checks:
            failed = checks.get("failed", 0)
            parts.append(
                Text.assemble(
                    (f"behaviour ({stage}): ", "bold"),
                    f"{checks['checks']} checks, ",
                    (f"{failed} failed", "red") if failed else ("all passed", "green"),
                )
            )
        splits = {
            k: v
            for k, v in metrics.items()
            if isinstance(v, dict) and all(isinstance(x, int | float) for x in v.values())
        }
        if not splits:
            continue
        names = list(dict.fromkeys(m for v in splits.values() for m in v))
        table = Table(title=f"metrics ({stage})", title_justify="left")
        table.add_column("metric")
        for split in splits:
            table.add_column(split, justify="right")
        for name in names:
            table.add_row(name, *(f"{v[name]:.4f}" if name in v else "" for v in splits.values()))
        parts.append(table)
    return Group(*parts)


def _fmt(value: object) -> str:
    return number(value, 6)


_VERDICT_STYLE = {"better": "green", "worse": "red", "same": "dim"}


def diff_tables(result: DiffResult) -> Group:
    """Terminal tables for ``pipespec diff``."""
    parts: list[Table | Text] = []
    title = f"{result.a_rev} -> {result.b_rev}"
    params = Table(title=f"params ({title})", title_justify="left")
    for col in ("param", "old", "new"):
        params.add_column(col)
    for p in result.params:
        params.add_row(p.key, _fmt(p.old), _fmt(p.new))
    parts.append(params if result.params else Text("params: no change"))
    metrics = Table(title="metrics", title_justify="left")
    for col in ("file", "metric", "old", "new", "delta", ""):
        metrics.add_column(col, justify="right" if col in ("old", "new", "delta") else "left")
    for m in result.metrics:
        style = _VERDICT_STYLE.get(m.verdict, "")
        metrics.add_row(
            m.file, m.key, _fmt(m.old), _fmt(m.new), _fmt(m.delta), Text(m.verdict, style=style)
        )
    parts.append(metrics if result.metrics else Text("metrics: no change"))
    skipped = [s for s in result.stages if s not in result.reruns]
    parts.append(Text.assemble(("re-runs: ", "bold"), ", ".join(result.reruns) or "nothing"))
    parts.append(Text.assemble(("unaffected: ", "bold"), ", ".join(skipped) or "none"))
    return Group(*parts)


def diff_markdown(result: DiffResult) -> str:
    """``pipespec diff --md``: Markdown ready to paste as a pull-request comment."""
    lines = [f"### pipespec diff `{result.a_rev}` → `{result.b_rev}`", ""]
    if result.params:
        lines += ["| param | old | new |", "| --- | --- | --- |"]
        lines += [f"| `{p.key}` | {_fmt(p.old)} | {_fmt(p.new)} |" for p in result.params]
    else:
        lines.append("No params changed.")
    lines.append("")
    if result.metrics:
        verdicts = {"better": "✅ better", "worse": "❌ worse", "same": "same"}
        lines += ["| metric | old | new | delta | |", "| --- | ---: | ---: | ---: | --- |"]
        lines += [
            f"| `{m.file}:{m.key}` | {_fmt(m.old)} | {_fmt(m.new)} | {_fmt(m.delta)} | "
            f"{verdicts.get(m.verdict, '')} |"
            for m in result.metrics
        ]
    else:
        lines.append("No metrics changed.")
    skipped = [s for s in result.stages if s not in result.reruns]
    lines += [
        "",
        f"**Re-runs:** {', '.join(result.reruns) or 'nothing'}  ",
        f"**Unaffected:** {', '.join(skipped) or 'none'}",
        "",
    ]
    return "\n".join(lines)


def trials_table(trials: list[Trial], *, title: str, metric: str | None = None) -> Table:
    """One row per experiment of a sweep or search: status, overrides, headline metric."""
    table = Table(title=title, title_justify="left")
    shown = metric or next(
        (k for t in trials for k in ("valid.auc", "valid.rmse", "valid.logloss") if k in t.metrics),
        "valid metric",
    )
    for col in ("experiment", "status", shown, "reason"):
        table.add_column(col, overflow="fold")
    style = {"success": "green", "failed": "red", "invalid": "yellow"}
    for t in trials:
        key = metric or next(
            (k for k in ("valid.auc", "valid.rmse", "valid.logloss") if k in t.metrics), None
        )
        value = t.metrics.get(key) if key else None
        table.add_row(t.name, Text(t.status, style=style.get(t.status, "")), _fmt(value), t.reason)
    return table


def experiments_table(
    rows: list[ExperimentRow], *, sort: str | None, metrics: list[str] | None, markdown: bool
) -> Table | str:
    """`pipespec exp show`: only the params that differ, and the metrics."""
    from pipespec.engine.diff import MetricChange
    from pipespec.engine.experiments import differing_params

    params = differing_params(rows)
    keys = metrics or _headline_keys(rows)
    if sort:
        lower = MetricChange("", sort, 1.0, 0.0).verdict == "better"
        missing = float("inf") if lower else float("-inf")
        rows = sorted(
            rows,
            key=lambda r: (
                r.metrics.get(sort, missing)
                if isinstance(r.metrics.get(sort), int | float)
                else missing
            ),
            reverse=not lower,
        )
    header = ["experiment", "state", *params, *keys]
    body = [
        [
            r.name,
            r.state,
            *(_fmt(r.params.get(k)) for k in params),
            *(_fmt(r.metrics.get(k)) for k in keys),
        ]
        for r in rows
    ]
    if markdown:
        lines = ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
        lines += ["| " + " | ".join(row) + " |" for row in body]
        return "\n".join(lines) + "\n"
    table = Table(title="experiments", title_justify="left")
    for col in header:
        table.add_column(col, overflow="fold")
    for row in body:
        table.add_row(*row)
    return table


def _headline_keys(rows: list[ExperimentRow]) -> list[str]:
    """valid/test of the first headline metric the experiments have (auc, rmse, logloss)."""
    present = {k for r in rows for k in r.metrics}
    for name in ("auc", "rmse", "logloss", "accuracy"):
        keys = [f"{split}.{name}" for split in ("valid", "test") if f"{split}.{name}" in present]
        if keys:
            return keys
    return sorted(k for k in present if "." in k)[:4]


def registry_tables(document: dict[str, Any]) -> Iterator[tuple[Table, list[str]]]:
    """``pipespec registry``'s screen: per artifact, a table of its versions and the evidence
    errors of their tags."""
    for artifact in document["artifacts"]:
        table = Table(title=f"artifact {artifact['name']}", title_justify="left")
        for name in ("version", "stages", "commit", "bundle", "gate", "behaviour",
                     "headline metrics", "contract"):  # fmt: skip
            table.add_column(name)
        errors = []
        for v in artifact["versions"]:
            evidence = v["evidence"]
            if v["evidence_error"]:
                errors.append(v["evidence_error"])
            table.add_row(
                v["version"],
                ", ".join(v["stages"]) or "-",
                v["commit"][:12],
                (evidence.get("bundle") or {}).get("sha256", "")[:12]
                or Text("INVALID" if v["evidence_error"] else "none", "bold red"),
                _gate(evidence.get("gate")),
                _behavior(evidence.get("behavior")),
                _headline(evidence.get("metrics") or {}),
                Text(v["contract"]),
            )
        yield table, errors


def _gate(gate: dict[str, Any] | None) -> str:
    if not gate:
        return "-"
    passed = sum(int(r.get("gates_passed", 0)) for r in gate.values())
    failed = sum(int(r.get("gates_failed", 0)) for r in gate.values())
    if not passed and not failed:
        return "none set"
    return f"{passed} passed" if not failed else f"{failed} FAILED"


def _behavior(summary: dict[str, Any] | None) -> str:
    """'2 of 2 passed' from the release evidence's behaviour counts."""
    if not summary:
        return "-"
    checks, passed = summary.get("checks"), summary.get("passed")
    if checks is None or passed is None:
        return "passed" if summary.get("all_passed") else "FAILED"
    return f"{passed} of {checks} passed"


def _headline(metrics: dict[str, Any]) -> str:
    """The test split's numbers of the evaluate metrics, short."""
    for data in metrics.values():
        test = data.get("test") if isinstance(data, dict) else None
        if isinstance(test, dict):
            items = [(k, v) for k, v in test.items() if isinstance(v, int | float)][:2]
            return ", ".join(f"test.{k} {v:.4g}" for k, v in items)
    return "-"


def monitor_table(report: dict[str, Any]) -> Group:
    """``pipespec monitor``'s screen: a row per feature, then predictions, violations, alerts."""

    def num(value: Any, digits: int = 3) -> str:
        if value is None:
            return "-"
        if value != 0 and abs(value) < 10**-digits:
            return f"{value:.1e}"
        return f"{value:.{digits}f}"

    table = Table(
        title=f"drift of {report['current']} ({report['rows']:,} rows)", title_justify="left"
    )
    for name, justify in (
        ("feature", "left"),
        ("kind", "left"),
        ("PSI", "right"),
        ("test", "left"),
        ("stat", "right"),
        ("p", "right"),
        ("missing", "right"),
        ("bad", "right"),
        ("unusual (ref)", "right"),
        ("", "left"),
    ):
        table.add_column(name, justify=justify)  # type: ignore[arg-type]
    for f in sorted(report["features"], key=lambda f: -(f.get("psi") or 0)):
        table.add_row(
            f["name"],
            "num" if f["type"] == "numeric" else "cat",
            num(f.get("psi")),
            f.get("test") or "",
            num(f.get("statistic")),
            num(f.get("pvalue")),
            f"{f['missing_reference']:.1%}→{f['missing_current']:.1%}",
            f"{f['violations']:,}",
            "; ".join(
                f"{u['rate']:.1%} ({u['reference_rate']:.1%})"
                for u in (f.get("unusual") or {}).values()
            )
            or "-",
            Text("DRIFT", style="bold red") if f["drift"] else Text("ok", style="green"),
        )
    pred = report["prediction"]
    lines: list[Any] = [
        table,
        Text.assemble(
            ("predictions: ", "bold"),
            f"PSI {num(pred.get('psi'))}, {pred.get('test')} {num(pred.get('statistic'))} "
            f"(p {num(pred.get('pvalue'))})  ",
            ("DRIFT", "bold red") if pred["drift"] else ("ok", "green"),
        ),
        Text.assemble(
            ("schema violations: ", "bold"),
            f"{report['violations']['rows']:,} malformed rows ({report['violations']['rate']:.2%})",
        ),
    ]
    unusual = report.get("unusual")
    if unusual:
        reference = unusual.get("reference") or {}
        lines.append(
            Text.assemble(
                ("unusual values: ", "bold"),
                f"{unusual['rows']:,} rows ({unusual['rate']:.2%}), against "
                + (
                    f"{reference['rows']:,} held-out reference rows"
                    if reference.get("rows")
                    else "no reference rows (rates compared with zero)"
                ),
            )
        )
    if report.get("missing_columns"):
        lines.append(Text(f"missing columns: {', '.join(report['missing_columns'])}", "red"))
    for alert in report["alerts"]:
        lines.append(Text(f"alert: {alert}", style="red"))
    return Group(*lines)
