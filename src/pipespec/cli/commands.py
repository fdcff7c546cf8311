"""The subcommands' bodies: call the engine, render with rich."""

from __future__ import annotations

import argparse
from pathlib import Path

from pipespec.core.console import console, out
from pipespec.engine.project import Project


def _project(args: argparse.Namespace) -> Project:
    return Project.find(args.project)


def cmd_compose(args: argparse.Namespace) -> int:
    from pipespec.engine import generate

    project = _project(args)
    if args.check:
        if args.overrides:
            console().print("[yellow]note:[/] --check uses the overrides recorded in params.yaml")
        generate.check(project, stamp=bool(args.stamp))
        console().print("[green]params.yaml and dvc.yaml are up to date[/]")
        return 0
    changed = generate.write(project, generate.generate(project, tuple(args.overrides)))
    console().print(
        f"[green]wrote[/] {', '.join(changed)}"
        if changed
        else "params.yaml and dvc.yaml already up to date"
    )
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    from rich.syntax import Syntax

    from pipespec.engine.compose import compose

    composition = compose(_project(args), tuple(args.overrides))
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
    from pipespec.cli.render import dag_tree
    from pipespec.engine.pipeline import load_pipeline

    out().print(dag_tree(load_pipeline(_project(args))))
    return 0


def cmd_push_run_cache(args: argparse.Namespace) -> int:
    from pipespec.engine import dvc_repo

    count = dvc_repo.push_run_cache(_project(args), args.remote)
    console().print(f"pushed the run cache and {count} object(s) it names")
    return 0


def cmd_stage(args: argparse.Namespace) -> int:
    from pipespec.engine.runner import delegate

    if args.project is None:  # run by DVC under `pipespec run`: the warm runner, if any
        code = delegate(args.name)
        if code is not None:
            return code
    from pipespec.engine.stage_process import run_stage

    run_stage(_project(args), args.name)
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    from pipespec.cli.render import run_summary
    from pipespec.engine.run import run

    project = _project(args)
    overrides = tuple(args.overrides)
    if any(o.startswith("hparams_search=") for o in overrides):
        return _search(project, overrides)
    if args.multirun:
        from pipespec.cli.render import trials_table
        from pipespec.engine.experiments import sweep

        trials = sweep(project, overrides, jobs=args.jobs)
        console().print(trials_table(trials, title="sweep"))
        bad = [t for t in trials if t.status != "success"]
        return 5 if bad and len(bad) == len(trials) else 0
    result = run(project, overrides, force=args.force)
    console().print(run_summary(result))
    return 0


def _search(project: Project, overrides: tuple[str, ...]) -> int:
    from pipespec.cli.render import trials_table
    from pipespec.core.errors import ConfigError
    from pipespec.engine.compose import compose
    from pipespec.engine.search import search

    params = compose(project, overrides).params
    spec = params.get("hparams_search")
    if not spec:
        raise ConfigError("hparams_search is empty: pick an option, e.g. hparams_search=NAME")
    base = tuple(o for o in overrides if not o.startswith("hparams_search"))
    result = search(project, spec, base, seed=int(params["seed"]))
    console().print(
        trials_table(result.trials, title=f"search: {spec['name']}", metric=result.metric)
    )
    if result.best is None:
        console().print("[red]no trial succeeded[/]")
        return 5
    best = result.best
    console().print(
        f"best: [bold]{best.name}[/] {result.metric}={best.metrics[result.metric]:.6g}\n"
        f"overrides: {' '.join(best.overrides)}\n"
        f"adopt it with: pipespec exp apply {best.name}"
    )
    return 0


def cmd_exp(args: argparse.Namespace) -> int:
    from pipespec.engine import experiments

    project = _project(args)
    if args.exp_command == "apply":
        overrides = experiments.apply_experiment(project, args.name)
        console().print(
            f"[green]applied[/] {args.name}: params.yaml now has its params "
            f"(overrides: {' '.join(overrides) or 'none'}); commit it to make it "
            "the baseline"
        )
        return 0
    from pipespec.cli.render import experiments_table

    rows = experiments.list_experiments(project)
    metrics = args.metrics.split(",") if args.metrics else None
    table = experiments_table(rows, sort=args.sort, metrics=metrics, markdown=args.md)
    if args.md:
        out().file.write(str(table))
    else:
        out().print(table)
    return 0


def cmd_diff(args: argparse.Namespace) -> int:
    from pipespec.cli.render import diff_markdown, diff_tables
    from pipespec.engine.diff import diff

    result = diff(_project(args), args.a_rev, args.b_rev)
    if args.md:
        out().file.write(diff_markdown(result))
    else:
        out().print(diff_tables(result))
    return 0


def cmd_init(args: argparse.Namespace) -> int:
    from pipespec.engine.scaffold import init

    project = init(Path(args.dir))
    console().print(f"[green]created[/] a pipespec project in {project.root}")
    console().print(f"next: cd {args.dir} && pipespec run")
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from pipespec.core.errors import ConfigError
    from pipespec.engine import export

    project = _project(args)
    if args.check:
        if args.target:
            raise ConfigError("--check takes no TARGET: it checks every target in exports.yaml")
        checked = export.check(project)
        console().print(
            f"[green]{len(checked)} exported file(s) up to date[/]"
            if checked
            else f"nothing exported yet ({export.RECORD} is absent)"
        )
        return 0
    options = {"group_by": args.group_by} if args.group_by else {}
    if args.target:
        if options and args.target != "airflow":
            raise ConfigError("--group-by applies to the airflow target only")
        jobs = [(args.target, options)]
    else:
        jobs = [(t, e.get("options") or {}) for t, e in export.read_record(project).items()]
        if not jobs:
            raise ConfigError(
                "nothing to export again: no target recorded in exports.yaml",
                hint=f"Name a target: {', '.join(export.TARGETS)}.",
            )
    for target, opts in jobs:
        exported = export.render(project, target, opts)
        changed = export.write(project, exported)
        console().print(
            f"[green]{target}:[/] wrote {', '.join(changed)}"
            if changed
            else f"{target}: {', '.join(exported.files)} already up to date"
        )
    return 0
