"""``pipespec exp show`` and ``exp apply``: thin over ``engine.experiments``."""

from __future__ import annotations

import argparse
from typing import Any

from pipespec.cli.arguments import command, project
from pipespec.core.console import console, out


def add_parsers(sub: Any) -> None:
    """Add ``exp`` (with its ``show`` and ``apply`` actions) to the ``pipespec`` parser."""
    p = sub.add_parser(
        "exp",
        help="compare experiments, or adopt one",
        description="`exp show`: the baseline and its DVC experiments, with the params that "
        "differ and the metrics. `exp apply NAME`: bring an experiment's params.yaml (and "
        "results) into the workspace; commit it to make it the new baseline.",
    )
    exp = p.add_subparsers(dest="exp_command", metavar="ACTION", required=True)
    q = command(exp, "show", cmd_show)
    q.add_argument("--sort", metavar="METRIC", help="sort by this metric (best first)")
    q.add_argument("--metrics", metavar="KEYS", help="comma-separated metric keys to show")
    q.add_argument("--md", action="store_true", help="print Markdown")
    q = command(exp, "apply", cmd_apply)
    q.add_argument("name", help="experiment name (see `pipespec exp show`)")


def cmd_show(args: argparse.Namespace) -> int:
    """table of experiments: differing params and metrics"""
    from pipespec.cli.render import experiments_table
    from pipespec.engine.experiments import list_experiments

    rows = list_experiments(project(args))
    metrics = args.metrics.split(",") if args.metrics else None
    table = experiments_table(rows, sort=args.sort, metrics=metrics, markdown=args.md)
    if args.md:
        out().file.write(str(table))
    else:
        out().print(table)
    return 0


def cmd_apply(args: argparse.Namespace) -> int:
    """bring an experiment into the workspace"""
    from pipespec.engine.experiments import apply_experiment

    overrides = apply_experiment(project(args), args.name)
    console().print(
        f"[green]applied[/] {args.name}: params.yaml now has its params "
        f"(overrides: {' '.join(overrides) or 'none'}); commit it to make it "
        "the baseline"
    )
    return 0
