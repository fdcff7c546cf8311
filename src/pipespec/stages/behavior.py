"""The ``behavior`` stage: the behaviour checks of ``params.yaml``'s ``behavior`` section run
against the packaged bundle (``package.bundle``) on raw rows (``split.test``), through
``Bundle.predict``, so what is tested is what ships.

The checks themselves live in ``pipespec.bundle.behavior``, which ``pipespec test`` runs on a
serving host too. This stage writes the DVC metrics file the gate and ``dvc metrics diff``
read, the JSON and HTML reports, and the model card with a behaviour section; then, with
``behavior.enforce``, fails with exit code 10 when a check failed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pipespec.core.atomic import write_json, write_text
from pipespec.core.console import console
from pipespec.stages.context import StageContext
from pipespec.stages.parquet import part_files, read_arrow, table_columns

# The kind's contract (docs/architecture.md, "Stage kinds")
READS = ("behavior",)
INPUTS = ("bundle", "data")
OUTPUTS = {
    "metrics": ("metrics/{stage}.json", "metrics"),
    "report": ("reports/{stage}/report.json", "out"),
    "html": ("reports/{stage}/report.html", "out"),
    "card": ("reports/{stage}/card.md", "out"),
}
PATH_PARAMS = ("behavior.cases.path",)  # editing the cases re-runs the checks


def run(ctx: StageContext) -> None:
    from pipespec.bundle import behavior
    from pipespec.bundle.bundle import Bundle
    from pipespec.bundle.card import markdown, with_behavior
    from pipespec.bundle.engine import import_lightgbm

    bundle = Bundle.load(ctx.input("bundle"), project=ctx.root)
    spec = behavior.spec_from(ctx.params["behavior"].to_dict(), where="params.yaml")
    # only the columns the checks read (all of them when one is not there: the check that
    # names it then says which columns the data has), read while pandas and LightGBM are
    # imported: Arrow decodes without the GIL, so the read takes the other core
    available, _ = table_columns(ctx.input("data"))
    wanted = behavior.columns_read(bundle, spec)
    subset = [c for c in available if c in wanted] if wanted <= set(available) else None
    data = _ReadAhead(ctx.input("data"), subset)
    import pandas  # noqa: F401

    import_lightgbm()  # without its scikit-learn API, which the checks do not use

    frame, total = _sampled(data.table(), spec)
    source = ctx.input("data").relative_to(ctx.root).as_posix()
    found = behavior.run_checks(bundle, frame, spec, base=ctx.root, source=source, total_rows=total)
    console().print(behavior.table(found))
    report = behavior.stable(found)
    write_json(ctx.output("report"), report.to_json())
    write_text(ctx.output("html"), behavior.render_html(report))
    write_text(ctx.output("card"), with_behavior(markdown(bundle.card), report.to_json()))
    write_json(ctx.output("metrics"), behavior.summary(report))
    if found.failures:
        error = behavior.failure_error(found, str(ctx.output("html").relative_to(ctx.root)))
        if spec.enforce:
            raise error
        console().print(f"[yellow]{error.message}[/] (behavior.enforce is false: going on)")


class _ReadAhead:
    """A table (file or directory of parts; only ``columns`` if given) read by a thread of
    its own, with one decoding thread (the caller's work has the other core); ``table()``
    waits for it and raises what the read raised. The parts are found first, so a missing
    file is this stage's DataError at once."""

    def __init__(self, path: Path, columns: list[str] | None = None) -> None:
        import threading

        import pyarrow.dataset  # imported here, not by the reading thread
        import pyarrow.parquet  # noqa: F401

        part_files(path)  # a missing table: this stage's DataError, at once
        self._result: Any = None
        self._error: BaseException | None = None

        def read() -> None:
            try:
                self._result = read_arrow(path, columns, threads=False)
            except BaseException as exc:  # handed to the caller of table()
                self._error = exc

        self._thread = threading.Thread(target=read, name="behavior-read", daemon=True)
        self._thread.start()

    def table(self) -> Any:
        self._thread.join()
        if self._error is not None:
            raise self._error
        return self._result


def _sampled(table: Any, spec: Any) -> tuple[Any, int | None]:
    """The rows the checks run on, and the table's row count (None: the frame is the whole
    table, ``run_checks`` samples it). Only the sampled rows become pandas (``take`` in
    Arrow): at 1M rows the conversion of the others was most of the read. Arrow converts an
    integer or boolean column with nulls to float or object, one without to int or bool, so
    where such a column has nulls the whole table is converted, as before."""
    import pyarrow as pa

    from pipespec.bundle import behavior

    index = behavior.sample(table.num_rows, spec)
    typed = (pa.types.is_integer, pa.types.is_boolean)
    if index is None or any(
        column.null_count and any(t(column.type) for t in typed) for column in table.columns
    ):  # as parquet.read_table converts it
        return table.to_pandas(self_destruct=True, split_blocks=True), None
    # one block per column type, not per column (the sample is small, the copy cheap): a
    # one-record frame of it costs Bundle.predict a quarter less (its check reads each
    # column), so the latency calls and the base predictions take less
    return table.take(index).to_pandas(), table.num_rows
