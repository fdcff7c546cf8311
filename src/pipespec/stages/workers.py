"""Plugins for the Dask workers of a LocalCluster that pipespec starts (imported on the
workers, so kept apart from the modules the stage process needs)."""

from __future__ import annotations

import os
import sys
from typing import Any

from distributed import WorkerPlugin


class QuietStdout(WorkerPlugin):
    """The worker's standard output goes to /dev/null, so that LightGBM's network set-up log
    (printed by its C++ core on every worker) does not flood the stage's output. Errors still
    reach the stage as exceptions; stderr stays."""

    name = "pipespec-quiet-stdout"

    def setup(self, worker: Any) -> None:
        sys.stdout.flush()
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 1)
        os.close(devnull)
