"""``pipespec predict``, ``serve``, ``monitor`` and ``test``: thin commands over
``pipespec.bundle``.

They need a bundle and nothing else: no project, no Hydra, no DVC, so a serving host runs
them from a bundle fetched with ``dvc get``. The server's runtime (the socket, worker
processes, signals, the shadow) is ``bundle.server.serve``; ``serve`` here only parses,
resolves the bundle references and prints where it listens.
"""

from __future__ import annotations

import argparse
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipespec.cli.arguments import command, port, positive, seconds
from pipespec.core.console import console, error, out
from pipespec.core.errors import ConfigError, DriftError
from pipespec.core.progress import reporter

if TYPE_CHECKING:
    from pipespec.bundle.bundle import Bundle

DEFAULT_BUNDLE = "models/bundle"


def add_parsers(sub: Any) -> None:
    """Add the production subcommands to the ``pipespec`` parser."""
    p = command(sub, "predict", cmd_predict)
    _bundle_arg(p)
    p.add_argument("input", metavar="INPUT", help="CSV, Parquet or JSON-lines file")
    p.add_argument("output", metavar="OUTPUT", help="CSV or Parquet file to write")
    p.add_argument(
        "--on-invalid",
        choices=("fail", "skip"),
        default=None,
        help="refused rows: stop (fail) or leave out and report (skip)",
    )
    p.add_argument(
        "--rejects",
        metavar="FILE",
        help="write every refused or flagged value to FILE (CSV: row, column, kind, reason, value)",
    )
    p.add_argument(
        "--keep",
        metavar="COL",
        action="append",
        default=[],
        help="copy input column COL to the output (repeat, or comma-separate), e.g. an id",
    )
    _chunk_args(p)
    p.add_argument("--threads", type=positive, default=None, help="LightGBM threads")

    p = command(sub, "serve", cmd_serve)
    _bundle_arg(p)
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    p.add_argument("--port", type=port, default=8000, help="port (default 8000; 0: any free)")
    p.add_argument(
        "--log", metavar="FILE", help="append each prediction (input and output) as a JSON line"
    )
    p.add_argument("--access-log", action="store_true", help="uvicorn's access log on stderr")
    p.add_argument(
        "--workers",
        type=positive,
        default=1,
        help="worker processes sharing the port (default 1); /metrics adds up all of them",
    )
    p.add_argument(
        "--request-timeout",
        type=seconds,
        default=10.0,
        metavar="S",
        help="seconds a request's head and body may take to arrive (default 10); a slower "
        "client is disconnected",
    )
    p.add_argument(
        "--keep-alive",
        type=seconds,
        default=5.0,
        metavar="S",
        help="seconds an idle keep-alive connection stays open (default 5)",
    )
    p.add_argument(
        "--max-connections",
        type=positive,
        default=1000,
        metavar="N",
        help="open connections per worker before it answers 503 (default 1000)",
    )
    p.add_argument(
        "--shadow",
        metavar="REF",
        help="a second bundle (directory or reference, like --bundle) that scores every "
        "request off the response path, in its own process; see `pipespec shadow report`",
    )
    p.add_argument(
        "--shadow-log",
        metavar="FILE",
        default="shadow.jsonl",
        help="where both predictions of each record go, as JSON lines (default shadow.jsonl)",
    )

    p = command(sub, "monitor", cmd_monitor)
    _bundle_arg(p)
    p.add_argument("--current", metavar="DATA", required=True, help="the data to check")
    p.add_argument(
        "--report",
        metavar="FILE",
        help="write FILE.json and FILE.html (a .json or .html suffix is replaced)",
    )
    p.add_argument(
        "--threshold",
        metavar="NAME=VALUE",
        action="append",
        default=[],
        help="override a threshold: psi, pvalue, missing_rate, violation_rate, "
        "unusual_margin, prediction_psi (VALUE 'null' turns pvalue off)",
    )
    p.add_argument(
        "--notify",
        metavar="URL",
        help="when a threshold is crossed, POST the alerts as JSON to this webhook",
    )
    p.add_argument(
        "--history",
        metavar="DIR",
        help="append this run's PSI per feature to DIR/psi.csv, drawn over time by "
        "`dvc plots show` (DIR/dvc.yaml holds the plot definitions)",
    )
    _chunk_args(p)

    p = command(sub, "test", cmd_test)
    _bundle_arg(p)
    p.add_argument("data", metavar="DATA", help="the rows to check the model on")
    p.add_argument(
        "--checks", metavar="FILE", help="the checks (default: the behavior section of params.yaml)"
    )
    p.add_argument(
        "--report",
        metavar="FILE",
        help="write FILE.json and FILE.html (a .json or .html suffix is replaced)",
    )
    p.add_argument("--seed", type=int, default=None, help="override the checks' seed")


def _bundle_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--bundle",
        metavar="REF",
        default=DEFAULT_BUNDLE,
        help=f"bundle directory (default {DEFAULT_BUNDLE}), or a released version NAME@vX.Y.Z "
        "or registry stage NAME#STAGE of --repo, fetched through DVC",
    )
    p.add_argument(
        "--repo",
        metavar="URL_OR_PATH",
        default=None,
        help="the git repository whose tags resolve a --bundle reference (default: this one)",
    )
    p.add_argument(
        "--allow-custom",
        metavar="MODULE",
        action="append",
        default=[],
        help="allow the bundle's custom transforms from MODULE (and its submodules) to be "
        "imported, once its source matches the hash the bundle recorded (repeat for several); "
        "a bundle with custom transforms from any other module is refused"
        + ("; serve adds those of $PIPESPEC_ALLOW_CUSTOM" if p.prog.endswith(" serve") else ""),
    )
    p.add_argument(
        "--expect-sha256",
        metavar="SHA",
        default=None,
        help="refuse any bundle but the one whose manifest.json has this SHA-256 (the bundle "
        "id `pipespec serve` and /health show)"
        + ("; default: $PIPESPEC_EXPECT_SHA256" if p.prog.endswith(" serve") else ""),
    )


def _chunk_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--chunk-rows", type=positive, default=65_536, help="rows per chunk (default 65536)"
    )
    p.add_argument("--sep", default=None, help="CSV separator (default: the training data's)")
    p.add_argument(
        "--format",
        choices=("csv", "parquet", "jsonl"),
        default=None,
        help="how to read the file (default: from its extension, else the training files')",
    )


@contextmanager
def _loaded(
    ref: str, repo: str | None, args: argparse.Namespace | None = None
) -> Iterator[tuple[Bundle, dict[str, Any] | None]]:
    """The bundle a --bundle names and, for a registry reference, its release: a directory
    loads directly; a reference is fetched by the engine (DVC) into a temporary directory
    that lives as long as the context. ``args``: --allow-custom and --expect-sha256."""
    from pipespec.bundle.bundle import Bundle

    allow, expect = _trust(args)
    with _resolved(ref, repo) as (path, release):
        yield Bundle.load(path, allow_custom=allow, expect_sha256=expect), release


def _trust(args: argparse.Namespace | None) -> tuple[list[str], str | None]:
    """(--allow-custom modules, --expect-sha256); serve also allows the modules of
    ``PIPESPEC_ALLOW_CUSTOM`` and takes the hash from ``PIPESPEC_EXPECT_SHA256`` when the flag
    is absent (the Docker export sets both from the config and the bundle)."""
    import os

    from pipespec.bundle.bundle import ALLOW_ENV, EXPECT_ENV

    if args is None:
        return [], None
    items = list(args.allow_custom)
    expect = args.expect_sha256
    if args.command == "serve":
        items.append(os.environ.get(ALLOW_ENV, ""))
        if expect is None:
            expect = os.environ.get(EXPECT_ENV) or None
    allow = [m.strip() for item in items for m in item.split(",") if m.strip()]
    return allow, expect


@contextmanager
def _resolved(ref: str, repo: str | None) -> Iterator[tuple[Path, dict[str, Any] | None]]:
    """The directory a --bundle names (a reference fetched for the context's lifetime)."""
    if Path(ref).exists() and not repo:
        yield Path(ref), None
        return
    from pipespec.engine.reference import resolve

    with resolve(ref, repo) as resolved:
        yield resolved.path, resolved.release


def cmd_predict(args: argparse.Namespace) -> int:
    """batch predictions of a file with a bundle

    Predict every row of INPUT with the bundle into OUTPUT (CSV or Parquet), in chunks, so files
    larger than memory work. INPUT is read as the training config read its files (separator,
    header, column names, strip, comment, encoding, missing-value markers, dtypes: stored in the
    bundle), whatever its extension: an unknown one is read in the training files' format,
    --format says it outright. Malformed rows (a value of the wrong type or unreadable) are
    refused: with --on-invalid fail (default: the bundle's production.on_invalid) the run stops
    and nothing is written; with skip, they are left out and reported. Unusual values (out of
    the training range, an unseen category, a null where training had none) are predicted as
    training treats them and named in the `warnings` column, unless production.strict refuses
    them. OUTPUT has `row` (0-based input row), any --keep columns, then `prediction`
    (probability of the second class, or the value), `p_<class>` per class label (multiclass),
    `label` (classification) and `warnings`."""
    from rich.table import Table

    from pipespec.bundle.predict import predict_file

    keep = [c.strip() for item in args.keep for c in item.split(",") if c.strip()]
    with (
        _loaded(args.bundle, args.repo, args) as (bundle, _),
        reporter("predicting") as progress,
    ):
        result = predict_file(
            bundle,
            args.input,
            args.output,
            on_invalid=args.on_invalid,
            chunk_rows=args.chunk_rows,
            keep=keep,
            sep=args.sep,
            format=args.format,
            rejects=args.rejects,
            threads=args.threads,
            progress=progress,
        )
    rate = result.rows / result.seconds if result.seconds else float("inf")
    console().print(
        f"[green]predicted[/] {result.predicted:,} of {result.rows:,} rows in "
        f"{result.seconds:.2f}s ({rate:,.0f} rows/s) -> {args.output}"
    )
    if result.skipped:
        table = Table(title=f"{result.skipped:,} rows left out (--on-invalid skip)")
        table.add_column("column")
        table.add_column("reason")
        table.add_column("values", justify="right")
        for (column, reason), count in sorted(result.problems.items()):
            table.add_row(column, reason, f"{count:,}")
        console().print(table)
        for p in result.examples[:5]:
            console().print(f"  row {p.row}: {p.message()}", markup=False)
    if result.warned:
        table = Table(
            title=f"{result.warned:,} rows predicted with warnings (column `warnings`)",
            title_justify="left",
        )
        table.add_column("column")
        table.add_column("reason")
        table.add_column("values", justify="right")
        for (column, reason), count in sorted(result.warnings.items()):
            table.add_row(column, reason, f"{count:,}")
        console().print(table)
    if result.rejects and (result.skipped or result.warned):
        console().print(f"every refused or flagged value: {result.rejects}")
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    """serve a bundle over HTTP (FastAPI + uvicorn)

    Serve the bundle: POST /predict (one JSON record or a list), GET /health, GET /metadata
    (model card and the train/serve contract), GET /metrics (Prometheus: requests, latency,
    records, refusals and warnings by field and reason, per-feature missing/out-of-range/unseen
    counts, predictions on the profile's bins; summed over --workers). A malformed request gets
    a 4xx naming the record and field; unusual values (out of range, unseen category, unexpected
    null) are predicted and named in the answer's `warnings`, unless production.strict refuses
    them. Binds 127.0.0.1 unless --host says otherwise; --port 0 picks a free port (printed)."""
    from rich.markup import escape

    from pipespec.bundle.server import Limits, serve

    with ExitStack() as stack:
        bundle, release = stack.enter_context(_loaded(args.bundle, args.repo, args))
        shadow = None
        if args.shadow:
            from pipespec.bundle.bundle import Bundle

            shadow, _ = stack.enter_context(_resolved(args.shadow, args.repo))
            shadow_sha = Bundle.load(shadow, allow_custom=_trust(args)[0]).sha  # verified first
            console().print(
                f"shadow: {args.shadow} (bundle {shadow_sha[:12]}) scores every request off "
                f"the response path; both predictions -> {args.shadow_log}"
            )

        def ready(host: str, port: int) -> None:
            shown = f"[{host}]" if ":" in host else host
            served = f"{release['artifact']}@{release['version']}, " if release else ""
            if release and release.get("stage"):
                served = f"{release['artifact']}#{release['stage']} = {served}"
            workers = f", {args.workers} workers" if args.workers > 1 else ""
            console().print(
                f"serving [bold]{escape(str(bundle.card.get('name')))}[/] "
                f"({escape(served)}bundle {bundle.sha[:12]}) on "
                f"http://{shown}:{port}  (POST /predict, GET /health, GET /metadata, "
                f"GET /metrics{workers})"
            )
            if args.log:
                console().print(f"logging predictions to {args.log}")

        serve(
            bundle,
            host=args.host,
            port=args.port,
            workers=args.workers,
            log=args.log,
            access_log=args.access_log,
            release=release,
            shadow=shadow,
            shadow_log=args.shadow_log,
            limits=Limits(
                request_timeout=args.request_timeout,
                keep_alive=args.keep_alive,
                max_connections=args.max_connections,
            ),
            on_ready=ready,
        )
    return 0


def cmd_monitor(args: argparse.Namespace) -> int:
    """drift of current data against a bundle's reference profile

    Compare DATA (CSV, Parquet, or the JSON lines `pipespec serve --log` writes) with the
    bundle's profile of its training data: PSI for every feature, KS (numeric) or chi-square
    (categorical), change of missing rate, malformed-row (violation) rate, unusual-value rates
    against the reference's own, and drift of the predictions. Exits 8 when a threshold is
    crossed (production.monitor.*, or --threshold), so a scheduler can alert."""
    with _loaded(args.bundle, args.repo, args) as (bundle, _):
        return _monitor(args, bundle)


def _monitor(args: argparse.Namespace, bundle: Bundle) -> int:
    from pipespec.bundle import monitor
    from pipespec.cli.render import monitor_table

    with reporter("monitoring") as progress:
        done = monitor.run(
            bundle,
            args.current,
            thresholds=_thresholds(args.threshold),
            report=args.report,
            history=args.history,
            notify=args.notify,
            chunk_rows=args.chunk_rows,
            sep=args.sep,
            format=args.format,
            progress=progress,
        )
    out().print(monitor_table(done.report))
    if done.written:
        console().print(f"report: {', '.join(map(str, done.written))}")
    if done.history:
        console().print(f"history: {done.history} (`dvc plots show`)")
    if done.notified:
        url, status, failure = done.notified
        if failure:
            error(f"--notify {url}: the webhook failed: {failure}")
        else:
            console().print(f"notified {url} (HTTP {status})")
    if done.alerts:
        raise DriftError(
            f"drift: {len(done.alerts)} threshold(s) crossed:\n  " + "\n  ".join(done.alerts)
        )
    console().print("[green]no drift[/] beyond the thresholds")
    return 0


def cmd_test(args: argparse.Namespace) -> int:
    """behaviour checks of a bundle on a data file (exit 10 when one fails)

    Run the behaviour checks (slices, weakest segments, invariance, directional expectations,
    minimum-functionality cases, latency) against DATA (CSV, Parquet or JSON lines; with the
    target column for slices) through the bundle's own predict path. The checks come from
    --checks FILE (YAML or JSON: a `behavior:` mapping, or the mapping itself, as in
    params.yaml), or else from the `behavior` section of ./params.yaml. Relative case-file paths
    start from that file's folder. Exits 10 when a check fails, naming the check, the slice or
    feature, the value and the bound."""
    with _loaded(args.bundle, args.repo, args) as (bundle, _):
        return _test(args, bundle)


def _test(args: argparse.Namespace, bundle: Bundle) -> int:
    from pipespec.bundle import behavior

    found, page = behavior.check_bundle(
        bundle, args.data, checks=args.checks, seed=args.seed, report=args.report
    )
    out().print(behavior.table(found))
    if page:
        console().print(f"report: {page.with_suffix('.json')}, {page}")
    if found["checks_failed"]:
        raise behavior.failure_error(found, str(page) if page else None)
    return 0


def _thresholds(items: list[str]) -> dict[str, Any]:
    parsed: dict[str, Any] = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise ConfigError(f"--threshold expects NAME=VALUE, got '{item}'")
        if value.strip().lower() in ("null", "none", ""):
            parsed[name.strip()] = None
            continue
        try:
            parsed[name.strip()] = float(value)
        except ValueError:
            raise ConfigError(f"--threshold {name}: '{value}' is not a number") from None
    if any(v is None for k, v in parsed.items() if k != "pvalue"):
        raise ConfigError("--threshold: only pvalue can be turned off (null)")
    return parsed
