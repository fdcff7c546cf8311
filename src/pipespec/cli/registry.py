"""``pipespec release``, ``promote`` and ``registry``: thin commands over ``engine.registry``."""

from __future__ import annotations

import argparse
import json
from typing import Any

from pipespec.cli.arguments import command, project
from pipespec.core.console import console, out


def add_parsers(sub: Any) -> None:
    """Add the registry subcommands to the ``pipespec`` parser."""
    p = command(sub, "release", cmd_release)
    group = p.add_mutually_exclusive_group()
    group.add_argument("--version", metavar="X.Y.Z", help="the version to register")
    group.add_argument(
        "--bump",
        choices=("major", "minor", "patch"),
        help="bump the greatest released version (default: patch; the first is v0.0.1)",
    )
    p.add_argument("-m", "--message", metavar="MSG", help="a line for the tag's message")

    p = command(sub, "promote", cmd_promote)
    p.add_argument("name", metavar="NAME", help="the artifact (registry.artifact)")
    p.add_argument("version", metavar="VERSION", help="a released version, e.g. v1.2.0")
    p.add_argument("--to", required=True, metavar="STAGE", dest="stage", help="the stage")
    p.add_argument(
        "--allow-contract-change",
        action="store_true",
        help="promote even when the version's task, classes, output fields or required "
        "inputs differ from the stage's current holder (the tag records the differences)",
    )

    p = command(sub, "registry", cmd_registry)
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")


def cmd_release(args: argparse.Namespace) -> int:
    """register the committed bundle as a version (a GTO tag NAME@vX.Y.Z)

    Tag HEAD as a new version of the registry's artifact (registry.artifact in params.yaml): an
    annotated git tag NAME@vX.Y.Z in GTO's format, whose message holds the evidence (bundle
    SHA-256, gate report, metrics, behaviour report). Refuses (exit 9, no tag) when the
    workspace is dirty, when dvc.lock does not match the outputs, or when the quality gate did
    not pass. Push the tag (`git push --tags`) and the bundle (`dvc push`) to share it."""
    from pipespec.engine.registry import release

    done = release(project(args), version=args.version, part=args.bump, message=args.message)
    sha = done.evidence["bundle"]["sha256"]
    console().print(
        f"[green]released[/] {done.tag} at {done.commit[:12]} (bundle {sha[:12]})\n"
        f"share it: git push origin {done.tag} && dvc push"
    )
    return 0


def cmd_promote(args: argparse.Namespace) -> int:
    """assign a registry stage to a released version (a GTO tag NAME#STAGE#N)

    Promote VERSION of artifact NAME to STAGE with GTO's stage-assignment tag. registry.stages
    sets the order (from_stage) and the evidence each stage requires (gate, behavior). Refuses
    (exit 9, no tag) out of order, without the evidence, for an unknown version, or when the
    version's output contract differs from the stage's current holder (unless
    --allow-contract-change)."""
    from pipespec.engine.registry import promote

    done = promote(
        project(args),
        args.name,
        args.version,
        args.stage,
        allow_contract_change=args.allow_contract_change,
    )
    console().print(
        f"[green]promoted[/] {done.artifact}@{done.version} to {done.stage} ({done.tag})\n"
        f"share it: git push origin {done.tag}"
    )
    return 0


def cmd_registry(args: argparse.Namespace) -> int:
    """the released versions and their stages

    Every artifact's versions (newest first), the stages each holds, and the evidence of its
    release, read from the git tags as GTO reads them."""
    from pipespec.engine.registry import project_registry

    document = project_registry(project(args)).to_json()
    if args.json:
        out().print_json(json.dumps(document))
        return 0
    from rich.text import Text

    from pipespec.cli.render import registry_tables

    if not document["artifacts"]:
        console().print("no releases yet: `pipespec release` makes one")
    for table, errors in registry_tables(document):
        out().print(table)
        for message in errors:
            console().print(Text(f"evidence error: {message}", "red"))
    return 0
