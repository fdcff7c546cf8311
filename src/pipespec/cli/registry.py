"""``pipespec release``, ``promote`` and ``registry``: thin commands over ``engine.registry``."""

from __future__ import annotations

import argparse
import json
from typing import Any

from pipespec.cli.arguments import project
from pipespec.core.console import console, out


def add_parsers(sub: Any) -> None:
    """Add the registry subcommands to the ``pipespec`` parser."""
    p = sub.add_parser(
        "release",
        help="register the committed bundle as a version (a GTO tag NAME@vX.Y.Z)",
        description="Tag HEAD as a new version of the registry's artifact (registry.artifact "
        "in params.yaml): an annotated git tag NAME@vX.Y.Z in GTO's format, whose message "
        "holds the evidence (bundle SHA-256, gate report, metrics, behaviour report). "
        "Refuses (exit 9, no tag) when the workspace is dirty, when dvc.lock does not match "
        "the outputs, or when the quality gate did not pass. Push the tag (`git push --tags`) "
        "and the bundle (`dvc push`) to share it.",
    )
    group = p.add_mutually_exclusive_group()
    group.add_argument("--version", metavar="X.Y.Z", help="the version to register")
    group.add_argument(
        "--bump",
        choices=("major", "minor", "patch"),
        help="bump the greatest released version (default: patch; the first is v0.0.1)",
    )
    p.add_argument("-m", "--message", metavar="MSG", help="a line for the tag's message")
    p.set_defaults(func=cmd_release)

    p = sub.add_parser(
        "promote",
        help="assign a registry stage to a released version (a GTO tag NAME#STAGE#N)",
        description="Promote VERSION of artifact NAME to STAGE with GTO's stage-assignment "
        "tag. registry.stages sets the order (from_stage) and the evidence each stage "
        "requires (gate, behavior). Refuses (exit 9, no tag) out of order, without the "
        "evidence, for an unknown version, or when the version's output contract differs "
        "from the stage's current holder (unless --allow-contract-change).",
    )
    p.add_argument("name", metavar="NAME", help="the artifact (registry.artifact)")
    p.add_argument("version", metavar="VERSION", help="a released version, e.g. v1.2.0")
    p.add_argument("--to", required=True, metavar="STAGE", dest="stage", help="the stage")
    p.add_argument(
        "--allow-contract-change",
        action="store_true",
        help="promote even when the version's task, classes, output fields or required "
        "inputs differ from the stage's current holder (the tag records the differences)",
    )
    p.set_defaults(func=cmd_promote)

    p = sub.add_parser(
        "registry",
        help="the released versions and their stages",
        description="Every artifact's versions (newest first), the stages each holds, and "
        "the evidence of its release, read from the git tags as GTO reads them.",
    )
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.set_defaults(func=cmd_registry)


def cmd_release(args: argparse.Namespace) -> int:
    from pipespec.engine.registry import release

    done = release(project(args), version=args.version, part=args.bump, message=args.message)
    sha = done.evidence["bundle"]["sha256"]
    console().print(
        f"[green]released[/] {done.tag} at {done.commit[:12]} (bundle {sha[:12]})\n"
        f"share it: git push origin {done.tag} && dvc push"
    )
    return 0


def cmd_promote(args: argparse.Namespace) -> int:
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
    from pipespec.engine.registry import project_registry

    document = project_registry(project(args)).to_json()
    if args.json:
        out().print_json(json.dumps(document))
        return 0
    from rich.table import Table
    from rich.text import Text

    if not document["artifacts"]:
        console().print("no releases yet: `pipespec release` makes one")
    for artifact in document["artifacts"]:
        table = Table(title=f"artifact {artifact['name']}", title_justify="left")
        for name, justify in (
            ("version", "left"),
            ("stages", "left"),
            ("commit", "left"),
            ("bundle", "left"),
            ("gate", "left"),
            ("behaviour", "left"),
            ("headline metrics", "left"),
            ("contract", "left"),
        ):
            table.add_column(name, justify=justify)  # type: ignore[arg-type]
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
        out().print(table)
        for message in errors:
            console().print(Text(f"evidence error: {message}", "red"))
    return 0


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
