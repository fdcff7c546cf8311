"""``pipespec run``: compose + compile + ``dvc repro`` (thin over ``engine.run``), a sweep
(``-m``, over ``engine.experiments``) or an Optuna search (``hparams_search=``)."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

from pipespec.cli.arguments import command, overrides, project
from pipespec.core.console import console
from pipespec.core.errors import StageError

if TYPE_CHECKING:
    from pipespec.engine.project import Project


def add_parsers(sub: Any) -> None:
    """Add ``run`` to the ``pipespec`` parser."""
    p = command(sub, "run", cmd_run)
    overrides(p)
    p.add_argument("-f", "--force", action="store_true", help="re-run every stage (dvc repro -f)")
    p.add_argument(
        "-m", "--multirun", action="store_true",
        help="sweep: run every combination (a,b  range()  choice()  glob()  +key) as a named "
        "DVC experiment; the workspace is left as it was",
    )  # fmt: skip
    p.add_argument("-j", "--jobs", type=int, default=1, metavar="N",
                   help="with -m: experiments run in parallel (DVC queue workers)")  # fmt: skip


def cmd_run(args: argparse.Namespace) -> int:
    """compose + compile + dvc repro, with a summary

    Write params.yaml and dvc.yaml from configs/ and pipelines/ with the overrides, then `dvc
    repro`: only stages whose params, code or inputs changed run. Ends with the stages
    run/skipped and the metrics."""
    from pipespec.cli.render import run_summary
    from pipespec.engine.run import run

    where = project(args)
    chosen = tuple(args.overrides)
    if any(o.startswith("hparams_search=") for o in chosen):
        return _search(where, chosen)
    if args.multirun:
        from pipespec.cli.render import trials_table
        from pipespec.engine.experiments import sweep

        trials = sweep(where, chosen, jobs=args.jobs)
        console().print(trials_table(trials, title="sweep"))
        bad = [t for t in trials if t.status != "success"]
        return StageError.exit_code if bad and len(bad) == len(trials) else 0
    result = run(where, chosen, force=args.force)
    console().print(run_summary(result))
    return 0


def _search(where: Project, chosen: tuple[str, ...]) -> int:
    from pipespec.cli.render import trials_table
    from pipespec.core.errors import ConfigError
    from pipespec.engine.compose import compose
    from pipespec.engine.search import search

    params = compose(where, chosen).params
    spec = params.get("hparams_search")
    if not spec:
        raise ConfigError("hparams_search is empty: pick an option, e.g. hparams_search=NAME")
    base = tuple(o for o in chosen if not o.startswith("hparams_search"))
    result = search(where, spec, base, seed=int(params["seed"]))
    console().print(
        trials_table(result.trials, title=f"search: {spec['name']}", metric=result.metric)
    )
    if result.best is None:
        console().print("[red]no trial succeeded[/]")
        return StageError.exit_code
    best = result.best
    console().print(
        f"best: [bold]{best.name}[/] {result.metric}={best.metrics[result.metric]:.6g}\n"
        f"overrides: {' '.join(best.overrides)}\n"
        f"adopt it with: pipespec exp apply {best.name}"
    )
    return 0
