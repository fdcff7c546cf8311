"""The monitoring history: one row per ``pipespec monitor --history DIR`` run, with the PSI of
every feature and of the predictions, in ``DIR/psi.csv``; and ``DIR/dvc.yaml``, a plots-only
DVC file that makes ``dvc plots show`` (and ``dvc plots diff``) draw PSI per feature over time.
DVC reads every ``dvc.yaml`` in a repository, so the history needs no edit of the project's own.
"""

from __future__ import annotations

import csv
import io
import os
import time
from pathlib import Path
from typing import Any

from pipespec.core.atomic import write_text
from pipespec.core.errors import ConfigError
from pipespec.core.numbers import number

HISTORY_FILE = "psi.csv"
PLOTS_FILE = "dvc.yaml"
MARK = "# Written by `pipespec monitor --history`: PSI over time for `dvc plots show`.\n"
META = ("run", "time", "status", "rows", "prediction")


def append(report: dict[str, Any], folder: str | os.PathLike[str]) -> Path:
    """Add the report's run to ``folder``'s history (rewritten whole, atomically) and
    refresh its plots definition; returns the history file."""
    folder = check_folder(folder)
    plots = folder / PLOTS_FILE
    path = folder / HISTORY_FILE
    rows: list[dict[str, str]] = []
    columns: list[str] = list(META)
    if path.exists():
        with open(path, newline="", encoding="utf-8") as fh:
            reader = csv.DictReader(fh)
            columns = list(reader.fieldnames or META)
            rows = list(reader)
    row: dict[str, Any] = {
        "run": len(rows) + 1,
        "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "status": report["status"],
        "rows": report["rows"],
        "prediction": _number(report["prediction"].get("psi")),
    }
    for feature in report["features"]:
        row[column(feature["name"])] = _number(feature.get("psi"))
    columns += sorted(c for c in row if c not in columns)
    rows.append(row)
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, restval="", lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    write_text(path, buffer.getvalue())
    write_text(plots, plots_yaml([c for c in columns if c not in META]))
    return path


def check_folder(folder: str | os.PathLike[str]) -> Path:
    """``folder`` as a Path; a ConfigError when its ``dvc.yaml`` is someone else's."""
    folder = Path(folder)
    plots = folder / PLOTS_FILE
    if plots.exists() and not plots.read_text(encoding="utf-8").startswith(MARK):
        raise ConfigError(
            f"--history {folder}: {plots} exists and was not written by pipespec monitor",
            hint="Give the history a folder of its own, e.g. --history monitoring/.",
        )
    return folder


def column(feature: str) -> str:
    """A feature's column: its name, unless that is one of the run's own columns."""
    return f"feature:{feature}" if feature in META else feature


def plots_yaml(features: list[str]) -> str:
    """The plots-only ``dvc.yaml``: PSI per feature, and PSI of the predictions, by run."""
    import yaml

    def plot(title: str, columns: list[str], line: str) -> dict[str, Any]:
        return {title: {"x": "run", "y": {HISTORY_FILE: columns}, "template": "simple",
                        "title": line, "y_label": "PSI"}}  # fmt: skip

    plots = [
        plot("PSI per feature", features, "PSI per feature (one line a feature)"),
        plot("PSI of the predictions", ["prediction"], "PSI of the predictions"),
    ]
    return MARK + yaml.safe_dump({"plots": plots}, sort_keys=False, allow_unicode=True)


def _number(value: float | None) -> str:
    return number(value, 6, notation="f", missing="")
