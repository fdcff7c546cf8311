"""``pipespec export [TARGET]`` and ``export --check``: thin over ``engine.export``."""

from __future__ import annotations

import argparse
from typing import Any

from pipespec.cli.arguments import command, project
from pipespec.core.console import console
from pipespec.core.errors import ConfigError


def add_parsers(sub: Any) -> None:
    """Add ``export`` to the ``pipespec`` parser."""
    p = command(sub, "export", cmd_export)
    p.add_argument(
        "target",
        nargs="?",
        metavar="TARGET",
        help="github-actions, gitlab-ci, airflow, docker, kubernetes or alerts",
    )
    p.add_argument("--check", action="store_true", help="exit 3 naming every stale exported file")
    p.add_argument(
        "--group-by",
        choices=("stage", "file"),
        default=None,
        help="airflow: one task per stage (default) or per pipelines/ file",
    )


def cmd_export(args: argparse.Namespace) -> int:
    """write CI, Airflow, Docker, Kubernetes or alert files (or --check them)

    Generate files for systems that run the pipeline or its model elsewhere, from params.yaml,
    pipelines/ and (docker, alerts) the bundle: github-actions (.github/workflows/pipespec.yml),
    gitlab-ci (.gitlab-ci.yml), airflow (dags/), docker (deploy/docker/), kubernetes
    (deploy/kubernetes/), alerts (deploy/prometheus/). exports.yaml records what was exported;
    without TARGET every recorded target is exported again. With --check, write nothing and exit
    3 naming each exported file that no longer matches."""
    from pipespec.engine import export

    where = project(args)
    if args.check:
        if args.target:
            raise ConfigError("--check takes no TARGET: it checks every target in exports.yaml")
        checked = export.check(where)
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
        jobs = [(t, e.get("options") or {}) for t, e in export.read_record(where).items()]
        if not jobs:
            raise ConfigError(
                "nothing to export again: no target recorded in exports.yaml",
                hint=f"Name a target: {', '.join(export.TARGETS)}.",
            )
    for target, opts in jobs:
        exported = export.render(where, target, opts)
        changed = export.write(where, exported)
        console().print(
            f"[green]{target}:[/] wrote {', '.join(changed)}"
            if changed
            else f"{target}: {', '.join(exported.files)} already up to date"
        )
    return 0
