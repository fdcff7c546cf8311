"""The project's generated files and stages: ``compose``, ``show``, ``dag``, ``stage``,
``push-run-cache``, ``diff`` and ``init``, each thin over one ``engine`` function."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from pipespec.cli.arguments import command, overrides, project
from pipespec.core.console import console, out


def add_parsers(sub: Any) -> None:
    """Add the pipeline subcommands to the ``pipespec`` parser."""
    p = command(sub, "compose", cmd_compose)
    overrides(p)
    p.add_argument(
        "--check",
        action="store_true",
        help="exit 3 naming the stale file when params.yaml or dvc.yaml would change",
    )
    p.add_argument("--stamp", metavar="PATH", help=argparse.SUPPRESS)

    p = command(sub, "show", cmd_show)
    overrides(p)

    p = command(sub, "dag", cmd_dag)

    p = command(sub, "stage", cmd_stage)
    p.add_argument("name", help="stage name from pipelines/")

    p = command(sub, "push-run-cache", cmd_push_run_cache)
    p.add_argument("-r", "--remote", default=None, help="DVC remote (default: the default)")

    p = command(sub, "diff", cmd_diff)
    p.add_argument("a_rev", nargs="?", default="HEAD", metavar="REV_A", help="default: HEAD")
    p.add_argument(
        "b_rev", nargs="?", default="workspace", metavar="REV_B", help="default: the workspace"
    )
    p.add_argument("--md", action="store_true", help="print Markdown instead of tables")

    p = command(sub, "init", cmd_init)
    p.add_argument("dir", help="folder to create (or complete)")


def cmd_compose(args: argparse.Namespace) -> int:
    """write params.yaml and dvc.yaml (or --check them)

    Compose configs/ with the overrides into params.yaml (fully resolved, overrides recorded in
    its header) and compile pipelines/ into dvc.yaml. With --check, write nothing and exit 3 if
    either is stale."""
    from pipespec.engine import generate

    where = project(args)
    if args.check:
        if args.overrides:
            console().print("[yellow]note:[/] --check uses the overrides recorded in params.yaml")
        if args.stamp:
            generate.check_and_stamp(where)
        else:
            generate.check(where)
            console().print(f"[green]{generate.UP_TO_DATE}[/]")
        return 0
    changed = generate.write(where, generate.generate(where, tuple(args.overrides)))
    console().print(
        f"[green]wrote[/] {', '.join(changed)}"
        if changed
        else "params.yaml and dvc.yaml already up to date"
    )
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    """print the composition as YAML; write nothing

    Print what `pipespec compose` would write to params.yaml."""
    from rich.syntax import Syntax

    from pipespec.engine.compose import compose

    composition = compose(project(args), tuple(args.overrides))
    if not out().is_terminal:  # piped: the exact bytes `pipespec compose` would write
        out().file.write(composition.text)
        return 0
    out().print(
        Syntax(
            composition.text.rstrip("\n"), "yaml", theme="ansi_dark", background_color="default"
        ),
        soft_wrap=True,
    )
    return 0


def cmd_dag(args: argparse.Namespace) -> int:
    """draw the pipeline as a tree

    Draw pipelines/ as a tree: each stage, its kind, the params it reads and the files it
    writes."""
    from pipespec.cli.render import dag_tree
    from pipespec.engine.pipeline import load_pipeline

    out().print(dag_tree(load_pipeline(project(args))))
    return 0


def cmd_push_run_cache(args: argparse.Namespace) -> int:
    """push DVC's run cache with every object it names (exported tasks run this)

    `dvc push --run-cache` pushes the run-cache entries but not the copies of `cache: false`
    outputs (metrics, plots) they name; this pushes both, so a task in another checkout restores
    the stage from the remote (`dvc repro --pull`)."""
    from pipespec.engine import dvc_repo

    count = dvc_repo.push_run_cache(project(args), args.remote)
    console().print(f"pushed the run cache and {count} object(s) it names")
    return 0


def cmd_stage(args: argparse.Namespace) -> int:
    """run one stage from params.yaml (what dvc.yaml calls)

    Run one stage with the params in params.yaml. DVC calls this; run it by hand to debug a
    stage."""
    from pipespec.engine.stage_process import run_stage

    run_stage(project(args), args.name)
    return 0


def cmd_diff(args: argparse.Namespace) -> int:
    """params, metrics and re-run stages between two git revisions

    Compare two git revisions (default: HEAD against the workspace): the params that changed
    (old, new), the metrics (old, new, delta, better or worse) and the stages the change
    re-runs. --md prints Markdown for a pull-request comment."""
    from pipespec.cli.render import diff_markdown, diff_tables
    from pipespec.engine.diff import diff

    result = diff(project(args), args.a_rev, args.b_rev)
    if args.md:
        out().file.write(diff_markdown(result))
    else:
        out().print(diff_tables(result))
    return 0


def cmd_init(args: argparse.Namespace) -> int:
    """create a new project

    Scaffold a project in DIR: git init, dvc init, configs/, pipelines/, params.yaml, dvc.yaml
    and .gitignore; `pipespec run` runs it at once on the embedded example data."""
    from pipespec.engine.scaffold import init

    created = init(Path(args.dir))
    console().print(f"[green]created[/] a pipespec project in {created.root}")
    console().print(f"next: cd {args.dir} && pipespec run")
    return 0
