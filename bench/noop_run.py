"""No-op `pipespec run` against no-op `dvc repro` in the same up-to-date project.

Both are measured alternately in one run (the machine is shared and noisy: absolute times
drift, ratios measured side by side hold). Prints the medians and their ratio. A third
command, the same `dvc repro` reading YAML with ruamel.yaml's pure-Python parser (as DVC does
without ruamel.yaml.clib, which pipespec installs), shows what the C parser saves.

    python bench/noop_run.py [--repeat 5] [--project DIR]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BIN = Path(sys.executable).parent
# `dvc` with ruamel.yaml's pure-Python parser, as without ruamel.yaml.clib installed.
PURE_DVC = (
    "import sys, ruamel.yaml.main as m; m.CParser = None; "
    "from dvc.cli import main; sys.exit(main())"
)


def timed(argv: list[str], cwd: Path) -> float:
    start = time.perf_counter()
    subprocess.run(argv, cwd=cwd, check=True, capture_output=True)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument(
        "--project",
        type=Path,
        default=None,
        help="an existing project (default: a fresh `pipespec init` in a temp dir)",
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = args.project
        if root is None:
            root = Path(tmp) / "proj"
            subprocess.run(
                [str(BIN / "pipespec"), "init", str(root)], check=True, capture_output=True
            )
        env_path = f"{BIN}"
        import os

        os.environ["PATH"] = f"{env_path}{os.pathsep}{os.environ['PATH']}"
        subprocess.run([str(BIN / "pipespec"), "run"], cwd=root, check=True, capture_output=True)
        pipespec, dvc, pure = [], [], []
        for _ in range(args.repeat):
            pipespec.append(timed([str(BIN / "pipespec"), "run"], root))
            dvc.append(timed([str(BIN / "dvc"), "repro"], root))
            pure.append(timed([sys.executable, "-c", PURE_DVC, "repro"], root))
        p, d, u = statistics.median(pipespec), statistics.median(dvc), statistics.median(pure)
        print(
            f"no-op `pipespec run`: median {p:.3f}s over {args.repeat} runs "
            f"(min {min(pipespec):.3f}s)"
        )
        print(
            f"no-op `dvc repro`:    median {d:.3f}s over {args.repeat} runs (min {min(dvc):.3f}s)"
        )
        print(f"no-op `dvc repro`, pure-Python YAML: median {u:.3f}s (min {min(pure):.3f}s)")
        print(f"ratio pipespec/dvc:   {p / d:.2f}x  (target <= 1.15x)")
        print(f"ratio dvc/dvc with pure-Python YAML: {d / u:.2f}x")


if __name__ == "__main__":
    main()
