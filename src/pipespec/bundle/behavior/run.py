"""Running the checks: the rows sampled, predicted once, then each check kind in turn
(slices and the search on the labelled rows, invariance, directional, cases, latency)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipespec.bundle.behavior.cases import Cases
from pipespec.bundle.behavior.directional import Directional
from pipespec.bundle.behavior.invariance import Invariance
from pipespec.bundle.behavior.latency import Latency
from pipespec.bundle.behavior.report import Report
from pipespec.bundle.behavior.rows import Rows, metrics
from pipespec.bundle.behavior.search import Search
from pipespec.bundle.behavior.slices import Slices
from pipespec.core.config import BehaviorConfig
from pipespec.core.errors import DataError

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

    from pipespec.bundle.bundle import Bundle


def sample(total: int, spec: BehaviorConfig) -> np.ndarray | None:
    """The rows the checks run on, of ``total``: a seeded sample of ``behavior.rows`` of
    them in file order, or None for all."""
    import numpy as np

    if spec.rows is None or total <= spec.rows:
        return None
    rng = np.random.default_rng(spec.seed)
    return np.sort(rng.choice(total, size=spec.rows, replace=False))


def run_checks(
    bundle: Bundle,
    frame: pd.DataFrame,
    spec: BehaviorConfig,
    *,
    base: Path,
    source: str,
    total_rows: int | None = None,
) -> Report:
    """Run every check of ``spec`` on ``frame`` (raw rows, with the target column when there
    are labels). ``base`` is the folder relative case-file paths start from. With
    ``total_rows``, ``frame`` is already the sample (``sample(total_rows, spec)``) of a table
    of that many rows: a caller that can read only those rows saves reading the others."""
    total = len(frame) if total_rows is None else total_rows
    if total_rows is None and (index := sample(total, spec)) is not None:
        frame = frame.iloc[index]
    frame = frame.reset_index(drop=True)
    report = Report(
        bundle={"name": bundle.card.get("name"), "sha256": bundle.sha},
        data={"source": source, "rows": len(frame), "total_rows": total},
        task=bundle.task,
        seed=spec.seed,
    )
    if not len(frame):
        raise DataError(f"{source} has no rows: nothing to check the model's behaviour on")
    rows = Rows(bundle, frame, spec, report)
    labelled = rows.labelled()
    if labelled is None:
        if spec.slices:
            raise DataError(
                f"the data has no target column '{rows.target}': slices need labels",
                hint="Give a file with the labels, or remove behavior.slices.",
            )
        report.notes.append(f"no target column '{rows.target}': slices not checked")
    else:
        report.overall = {"rows": len(labelled.y), **metrics(bundle, labelled.y, labelled.s)}
        Slices(rows, labelled).run()
        if spec.search.enabled:
            Search(rows, labelled).run()
    Invariance(rows).run()
    Directional(rows).run()
    Cases(rows, base).run()
    Latency(rows).run()
    return report


def read_data(bundle: Bundle, path: Path) -> pd.DataFrame:
    """A file of raw rows (the bundle's inputs and the target), read as the training config
    read its files (the bundle's reading options; any extension)."""
    from pipespec.bundle.reader import read_rows

    if not path.exists():
        raise DataError(f"data file not found: {path}")
    return read_rows(path, bundle.reading, where=str(path))


def check_bundle(
    bundle: Bundle,
    data: str | Path,
    *,
    checks: str | Path | None = None,
    seed: int | None = None,
    report: str | Path | None = None,
) -> tuple[dict[str, Any], Path | None]:
    """``pipespec test``: the checks of ``checks`` (a YAML or JSON file holding a
    ``behavior:`` mapping, or the mapping itself), else of ``./params.yaml``, run on
    ``data`` through the bundle's predict path; relative case files start from the checks
    file's folder. The report as JSON data, and the HTML page written with it to ``report``
    (``.json`` and ``.html``) when given."""
    from pipespec.bundle.behavior.report import render_html
    from pipespec.bundle.behavior.spec import load_checks, spec_from
    from pipespec.bundle.engine import import_lightgbm
    from pipespec.core.atomic import write_json, write_text
    from pipespec.core.errors import ConfigError

    import_lightgbm()  # a Booster only, as predict and serve: without scikit-learn

    source = Path(checks) if checks else Path("params.yaml")
    if not checks and not source.is_file():
        raise ConfigError(
            "no checks: give --checks FILE, or run in a project folder with params.yaml",
            hint="A checks file holds a `behavior:` mapping, as in params.yaml.",
        )
    document = load_checks(source)
    if seed is not None:
        document["seed"] = seed
    spec = spec_from(document, where=str(source))
    frame = read_data(bundle, Path(data))
    found = run_checks(bundle, frame, spec, base=source.resolve().parent, source=str(data))
    result = found.to_json()
    if not report:
        return result, None
    from pipespec.bundle.pages import report_paths

    json_path, html_path = report_paths(report)
    write_json(json_path, result)
    write_text(html_path, render_html(result))
    return result, html_path
