"""The ``train`` kind: its module is the contract and the dispatch only, so reading the kind's
declarations (as compiling ``dvc.yaml`` does) loads no trainer, LightGBM, Dask nor Spark."""

from __future__ import annotations

import subprocess
import sys


def test_the_kind_loads_no_trainer() -> None:
    code = (
        "import sys\n"
        "import pipespec.stages.train as kind\n"
        "assert kind.INPUTS == ('train',) and callable(kind.run)\n"
        "heavy = {'lightgbm', 'dask', 'distributed', 'pyspark', 'pipespec.stages.train_local',\n"
        "         'pipespec.stages.train_dask', 'pipespec.stages.train_spark'}\n"
        "print(sorted(heavy & set(sys.modules)))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"
