"""``pipespec shadow report``: compare the two bundles of a shadow log (thin over
``pipespec.bundle.shadow``)."""

from __future__ import annotations

import argparse
import json
from typing import Any

from pipespec.cli.arguments import command
from pipespec.core.console import out


def add_parsers(sub: Any) -> None:
    """Add ``shadow report`` to the ``pipespec`` parser."""
    p = sub.add_parser(
        "shadow",
        help="compare the served bundle with its shadow (`serve --shadow`)",
        description="`shadow report LOG`: from the log `pipespec serve --shadow` writes, the "
        "share of records on which the two bundles agree (same label; regression: within "
        "--tolerance), the PSI between their predictions, and each bundle's latency per "
        "request (p50, p90, p99).",
    )
    actions = p.add_subparsers(dest="shadow_command", metavar="ACTION", required=True)
    q = command(actions, "report", cmd_report)
    q.add_argument("log", metavar="LOG", help="the --shadow-log file (JSON lines)")
    q.add_argument("--json", action="store_true", help="print JSON instead of a table")
    q.add_argument("--bins", type=int, default=10, help="quantile bins for the PSI (default 10)")
    q.add_argument(
        "--tolerance",
        type=float,
        default=0.01,
        help="regression: relative difference still counted as agreement (default 0.01)",
    )


def cmd_report(args: argparse.Namespace) -> int:
    """agreement, PSI and latencies of a shadow log"""
    from rich.table import Table

    from pipespec.bundle.shadow import report

    result = report(args.log, bins=args.bins, tolerance=args.tolerance)
    if args.json:
        out().print_json(json.dumps(result))
        return 0
    table = Table(
        title=f"shadow {result['bundles']['shadow']} against {result['bundles']['primary']}: "
        f"{result['compared']:,} records in {result['requests']:,} requests",
        title_justify="left",
    )
    table.add_column("measure")
    table.add_column("value", justify="right")
    psi = result["psi"]
    table.add_row(f"agreement ({result['agreement_on']})", f"{result['agreement']:.2%}")
    table.add_row(f"PSI ({result['psi_on']})", "-" if psi is None else f"{psi:.4f}")
    table.add_row("refused by the shadow", f"{result['refused_by_shadow']:,}")
    for who in ("primary", "shadow"):
        q = result["latency_ms"][who]
        spread = f"{q['p50']:.3f} / {q['p90']:.3f} / {q['p99']:.3f}"
        table.add_row(f"{who} latency ms (p50 / p90 / p99)", spread)
    out().print(table)
    return 0
