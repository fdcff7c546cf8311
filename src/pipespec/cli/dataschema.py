"""``pipespec schema infer``: a starting pandera YAML schema from a data file.

Registering the parser costs nothing; pandas and the inference code load only when the
command runs, so that other commands (``pipespec stage`` above all) do not pay for them.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipespec.cli.arguments import count

if TYPE_CHECKING:
    from pipespec.core.documents import ReadOptions

COMMAND = "schema"


def add_parsers(sub: Any) -> None:
    """Add ``schema`` (with its ``infer`` action) to the ``pipespec`` parser."""
    p = sub.add_parser(
        COMMAND,
        help="data schemas: `schema infer DATA` writes a starting pandera YAML schema",
        description="Data schemas for the validate stage (pandera's YAML format).",
    )
    actions = p.add_subparsers(dest="schema_command", metavar="ACTION", required=True)
    infer = actions.add_parser(
        "infer",
        help="write a starting schema from a CSV/TSV or Parquet file",
        description="Infer a pandera YAML schema from DATA: each column's dtype and "
        "nullability, the observed range of numbers, the allowed values of text columns with "
        "few distinct values, and `unique` for text ids. DATA passes it as is; review it, then "
        "use it with `pipespec run schema.path=FILE`. Read CSV with the same options as "
        "the project's dataset config (params.yaml's dataset: sep, header, names, na_values, "
        "strip, comment, encoding, dtypes) when run in a project; the flags override it.",
    )
    infer.add_argument("data", metavar="DATA", help="CSV/TSV file, or Parquet file or folder")
    infer.add_argument("--out", metavar="FILE", help="write the schema here (default: stdout)")
    infer.add_argument("--force", action="store_true", help="overwrite FILE if it exists")
    infer.add_argument("--sep", help="CSV separator (default ','; '\\t' or tab: TSV)")
    infer.add_argument(
        "--no-header",
        dest="header",
        action="store_false",
        default=None,
        help="the CSV has no header row: columns are Column_0, Column_1, ...",
    )
    infer.add_argument(
        "--na-values",
        metavar="MARKER",
        action="append",
        default=None,
        help="a string that marks a missing value, e.g. '?' (repeat for several)",
    )
    infer.add_argument("--encoding", help="CSV text encoding (default utf-8)")
    infer.add_argument(
        "--max-categories",
        type=count,
        default=20,
        metavar="N",
        help="text columns with at most N distinct values get an `isin` check (default 20)",
    )
    infer.set_defaults(func=cmd_infer)


def cmd_infer(args: argparse.Namespace) -> int:
    """``schema infer``: write the inferred schema to --out, or print it."""
    from pipespec.bundle.reader import read_rows
    from pipespec.core.atomic import write_text
    from pipespec.core.console import console, out
    from pipespec.core.errors import ConfigError, DataError
    from pipespec.stages.dataschema import dump, infer

    data = Path(args.data)
    target = Path(args.out) if args.out else None
    if target is not None and target.exists() and not args.force:
        raise ConfigError(
            f"{args.out} exists (--out): refusing to overwrite it",
            hint="Pass --force to replace it, or pick another file.",
        )
    if not data.exists():
        raise DataError(f"data file not found: {data}")
    options = _read_options(args)
    frame = read_rows(data, options, where=str(data))
    _propose_na_values(frame, options)
    doc = infer(frame, max_categories=args.max_categories)
    text = dump(doc, source=data.name, rows=len(frame))
    if target is None:
        out().file.write(text)
        return 0
    write_text(target, text)
    columns = doc["columns"].values()
    console().print(
        f"[green]wrote[/] {args.out}: {len(frame.columns)} columns "
        f"({sum('isin' in c for c in columns)} with allowed values, "
        f"{sum('in_range' in c for c in columns)} with ranges, "
        f"{sum(bool(c.get('unique')) for c in columns)} unique) from {len(frame):,} rows"
    )
    console().print(f"next: review it, then `pipespec run schema.path={args.out}`")
    return 0


def _propose_na_values(frame: Any, options: ReadOptions) -> None:
    """Name the marker-like tokens ('?', '-', 'n/a', ...) the data holds as values, and the
    ``dataset.na_values`` that would read them as missing."""
    import shlex

    from pipespec.core.console import console
    from pipespec.stages.dataschema import marker_tokens

    found = marker_tokens(frame, options.missing_markers)
    if not found:
        return
    where = "; ".join(
        f"'{token}' in " + ", ".join(f"{c} ({n:,})" for c, n in columns.items())
        for token, columns in found.items()
    )
    listed = ", ".join(f"'{t}'" for t in found)
    typed = shlex.quote("dataset.na_values=[" + ",".join(f'"{t}"' for t in found) + "]")
    console().print(
        f"[yellow]note[/]: the data holds tokens that look like missing-value markers: {where}. "
        f"If they mean 'missing', add `na_values: [{listed}]` to the dataset's YAML (or "
        f"{typed} on the command line, or --na-values here), then infer the schema again.",
        markup=True,
        highlight=False,
    )


def _read_options(args: argparse.Namespace) -> ReadOptions:
    """The project's dataset reading options (when run in a project), then the flags."""
    import dataclasses

    import yaml

    from pipespec.core.documents import SEPARATORS, ReadOptions
    from pipespec.core.errors import ConfigError
    from pipespec.engine.project import Project

    options = ReadOptions()
    try:
        project: Project | None = Project.find()
    except ConfigError:
        project = None
    if project is not None and project.params_file.is_file():
        params = yaml.safe_load(project.params_file.read_text(encoding="utf-8")) or {}
        if isinstance(params.get("dataset"), dict):
            options = ReadOptions.from_dataset(params["dataset"])
    changes: dict[str, Any] = {}
    if args.sep is not None:
        changes["sep"] = SEPARATORS.get(args.sep, args.sep)
    if args.header is not None:
        changes.update(header=args.header, columns=None)
    if args.na_values is not None:
        changes["na_values"] = tuple(args.na_values)
    if args.encoding is not None:
        changes["encoding"] = args.encoding
    return dataclasses.replace(options, **changes)
