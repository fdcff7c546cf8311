"""``dataset.source: spark``: the rows of a table (``dataset.table``) or SQL query
(``dataset.query``) of the Spark session's catalog, for the ``load`` stage.

The rows are written once, by Spark, as a Parquet snapshot under ``.pipespec/spark/`` and
``load`` then reads that snapshot as it reads a Parquet dataset (``source: parquet``): the
same cleaning, dedupe and sampling, on either backend. What re-runs ``load`` when the table
changes is ``dataset.snapshot``, a path DVC hashes (``load``'s ``PATH_PARAMS``): the table's
folder in the warehouse (``spark-warehouse/NAME``), or a Delta/Iceberg metadata folder, so
``dvc.lock`` records which version of the table a model was trained on.

The session comes from the ``compute`` group when it is ``compute=spark``, or is a
``local[1]`` session in the stage's process; ``dataset.warehouse`` and ``dataset.metastore``
name a local catalog (a Derby Hive metastore) when the cluster has none of its own.
"""

from __future__ import annotations

import shutil
from typing import Any

from pipespec.core.console import console
from pipespec.core.errors import DataError
from pipespec.stages.context import StageContext


def snapshot(ds: dict[str, Any], ctx: StageContext) -> dict[str, Any]:
    """The dataset config to load the table's snapshot with: ``source: parquet`` at the
    snapshot's folder (written anew here)."""
    from pipespec.stages.spark import session

    target = ctx.root / ".pipespec" / "spark" / "snapshot" / ctx.name
    what = f"table '{ds['table']}' (dataset.table)" if ds.get("table") else "dataset.query"
    with session(ctx.compute, ctx.root, catalog=ds) as spark:
        try:
            frame = spark.table(ds["table"]) if ds.get("table") else spark.sql(ds["query"])
            frame.columns  # noqa: B018 (resolves the table or the query now)
        except Exception as exc:  # AnalysisException and the parser's errors
            text = str(exc).strip().splitlines()
            raise DataError(
                f"cannot read {what} from the Spark catalog: {text[0] if text else exc}"
            ) from None
        if target.exists():
            shutil.rmtree(target)
        target.parent.mkdir(parents=True, exist_ok=True)
        frame.write.parquet(str(target))
    for stray in list(target.iterdir()):  # Spark's checksums and markers
        if stray.name.startswith((".", "_")):
            stray.unlink()
    console().print(f"  {what} -> snapshot {target.relative_to(ctx.root)}")
    return {**ds, "source": "parquet", "path": str(target)}
