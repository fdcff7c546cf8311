"""The one progress bar: a rich bar on the stderr console, gone when the work ends
(``transient``), for every long piece of work (boosting rounds, partitions on a cluster,
chunks of a batch prediction or a monitor run)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Literal

from pipespec.core.console import console


class Bar:
    """A started bar: ``update(done, total)`` sets it, ``advance()`` adds one; ``note`` is
    shown after the count (the running validation metric of a training run)."""

    def __init__(self, label: str, total: int | None, unit: Literal["items", "bytes"]) -> None:
        from rich.progress import (
            BarColumn,
            DownloadColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeRemainingColumn,
        )

        size = DownloadColumn() if unit == "bytes" else MofNCompleteColumn()
        self._progress = Progress(
            TextColumn(f"  {label}"),
            BarColumn(),
            size,
            TimeRemainingColumn(),
            TextColumn("{task.fields[note]}"),
            console=console(),
            transient=True,
        )
        self._task = self._progress.add_task(label, total=total, note="")

    def update(self, done: int, total: int | None = None, note: str | None = None) -> None:
        fields: dict[str, Any] = {"completed": done}
        if total is not None:
            fields["total"] = total
        if note is not None:
            fields["note"] = note
        self._progress.update(self._task, **fields)

    def advance(self) -> None:
        self._progress.advance(self._task)


@contextmanager
def progress(
    label: str, total: int | None = None, unit: Literal["items", "bytes"] = "items"
) -> Iterator[Bar]:
    """A bar for the duration of the ``with`` block; it is removed when the block ends."""
    bar = Bar(label, total, unit)
    bar._progress.start()
    try:
        yield bar
    finally:
        bar._progress.stop()


@contextmanager
def reporter(label: str) -> Iterator[Any]:
    """A ``(done, total, unit)`` callback for library code that learns its total and unit
    (``"rows"``, ``"bytes"``) only once it starts; the bar appears at the first call."""
    bars: list[Bar] = []

    def update(done: int, total: int, unit: str) -> None:
        if not bars:
            bars.append(Bar(label, total, "bytes" if unit == "bytes" else "items"))
            bars[0]._progress.start()
        bars[0].update(done, total)

    try:
        yield update
    finally:
        if bars:
            bars[0]._progress.stop()
