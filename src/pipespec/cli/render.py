"""Rich renderings: the pipeline tree and the run summary."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.console import Group
from rich.table import Table
from rich.text import Text
from rich.tree import Tree

if TYPE_CHECKING:
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
        splits = {k: v for k, v in metrics.items() if isinstance(v, dict)}
        if not splits:
            continue
        names = list(dict.fromkeys(m for v in splits.values() for m in v))
        table = Table(title=f"metrics ({stage})", title_justify="left")
        table.add_column("split")
        for name in names:
            table.add_column(name, justify="right")
        for split, values in splits.items():
            table.add_row(split, *(f"{values[n]:.4f}" if n in values else "" for n in names))
        parts.append(table)
    return Group(*parts)
