"""Start-up cost of each built-in stage of the default pipeline: `pipespec stage NAME` on tiny
data, whose wall time is almost all start-up, against the floor of a process that only
imports what that stage genuinely needs (what a hand-written script for it would import),
and against the bare interpreter (`python -c pass`). Prints medians and ratios, then
attributes the difference with `python -X importtime`: the modules the stage process imports
that the floor does not.

The project is a fresh `pipespec init` in a temp dir, run once on the embedded data with
`dataset.rows=ROWS` (env=dev keeps at most 10,000 rows), 10 boosting rounds and one thread.
Every process is measured alternately with its floor, in one run (the machine is shared and noisy:
absolute times drift, ratios measured side by side hold).

"to entry" is the time from spawning the stage process to the call of the kind's function
(pipespec's CLI, params, pipeline and the kind's module: everything before the stage's own
code), measured in a separate run through a wrapper of `load_entry`; the rest of the wall
time is the stage's own lazy imports and its (tiny) work.

    python bench/startup.py [--repeat 5] [--rows 1000]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BIN = Path(sys.executable).parent
PYTHON = sys.executable
# Train's own work on the tiny data stays negligible: few rounds, and one thread (with two,
# LightGBM's OpenMP barriers wait a scheduler time slice each when other jobs load the CPUs).
TINY = ("model.num_boost_round=10", "compute.num_threads=1")

DATA = ("yaml", "pandas", "pyarrow.parquet")  # read params, read and write Parquet
# What a hand-written script doing each stage's work imports.
NEEDS: dict[str, tuple[str, ...]] = {
    "load": DATA,
    "validate": DATA,  # schema=none: the basic checks are pandas
    "split": DATA,
    "featurize": DATA,
    "train": (*DATA, "lightgbm"),
    "evaluate": (*DATA, "lightgbm", "sklearn.metrics"),
    "gate": ("yaml", "json"),
    "package": (*DATA, "lightgbm", "hashlib", "json"),
}

ENTRY_PROBE = """
import sys, time
import pipespec.engine.stage_process as runner

load_entry = runner.load_entry

def probe(kind):
    func = load_entry(kind)

    def wrapped(ctx):
        print(f"ENTRY {time.time()!r}", file=sys.stderr, flush=True)
        return func(ctx)

    return wrapped

runner.load_entry = probe
from pipespec.cli.main import main
sys.exit(main(["stage", sys.argv[1]]))
"""


def timed(argv: list[str], cwd: Path) -> float:
    start = time.perf_counter()
    proc = subprocess.run(argv, cwd=cwd, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"`{' '.join(argv)}` failed:\n{proc.stderr[-3000:]}")
    return wall


def to_entry(name: str, cwd: Path) -> float:
    """Seconds from spawning `pipespec stage NAME` to the call of the kind's function."""
    start = time.time()
    proc = subprocess.run(
        [PYTHON, "-c", ENTRY_PROBE, name], cwd=cwd, capture_output=True, text=True, check=False
    )
    for line in proc.stderr.splitlines():
        if line.startswith("ENTRY "):
            return float(line.split()[1]) - start
    raise SystemExit(f"stage {name}: no entry seen:\n{proc.stderr[-3000:]}")


def import_times(argv: list[str], cwd: Path) -> dict[str, int]:
    """Module -> self import time (microseconds), from `python -X importtime`."""
    proc = subprocess.run(
        [PYTHON, "-X", "importtime", *argv], cwd=cwd, capture_output=True, text=True, check=False
    )
    if proc.returncode != 0:
        raise SystemExit(f"`{' '.join(argv)}` failed:\n{proc.stderr[-3000:]}")
    out: dict[str, int] = {}
    for line in proc.stderr.splitlines():
        if not line.startswith("import time:") or "self [us]" in line:
            continue
        self_us, _, module = line[len("import time:") :].split("|")
        out[module.strip()] = out.get(module.strip(), 0) + int(self_us)
    return out


def extra_imports(stage: dict[str, int], floor: dict[str, int], top: int = 4) -> tuple[int, str]:
    """Import time of the modules only the stage imports, in total and by package."""
    by_package: dict[str, int] = {}
    for module, us in stage.items():
        if module not in floor:
            package = module.split(".")[0]
            by_package[package] = by_package.get(package, 0) + us
    ranked = sorted(by_package.items(), key=lambda kv: -kv[1])
    text = ", ".join(f"{p} {us / 1000:.0f}" for p, us in ranked[:top] if us >= 1000)
    return sum(by_package.values()), text


def setup(root: Path, rows: int) -> None:
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}"}
    for argv in (
        [str(BIN / "pipespec"), "init", str(root)],
        [str(BIN / "pipespec"), "run", f"dataset.rows={rows}", *TINY],
    ):
        proc = subprocess.run(
            argv,
            cwd=root if root.exists() else root.parent,
            capture_output=True,
            text=True,
            env=env,
            check=False,
        )
        if proc.returncode != 0:
            raise SystemExit(f"`{' '.join(argv)}` failed:\n{proc.stderr[-3000:]}")


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--rows", type=int, default=1000, help="embedded rows (dev keeps half)")
    args = parser.parse_args()
    os.environ["PATH"] = f"{BIN}{os.pathsep}{os.environ['PATH']}"
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "proj"
        setup(root, args.rows)
        stage_cmd = {name: [str(BIN / "pipespec"), "stage", name] for name in NEEDS}
        floor_cmd = {
            name: [PYTHON, "-c", f"import {', '.join(mods)}"] for name, mods in NEEDS.items()
        }
        ours: dict[str, list[float]] = {name: [] for name in NEEDS}
        floor: dict[str, list[float]] = {name: [] for name in NEEDS}
        entry: dict[str, list[float]] = {name: [] for name in NEEDS}
        bare, cli = [], []
        for i in range(args.repeat):
            bare.append(timed([PYTHON, "-c", "pass"], root))
            cli.append(timed([str(BIN / "pipespec"), "--version"], root))
            for name in NEEDS:
                pair = [(stage_cmd[name], ours[name]), (floor_cmd[name], floor[name])]
                for argv, times in pair if i % 2 == 0 else pair[::-1]:
                    times.append(timed(argv, root))
                entry[name].append(to_entry(name, root))
        attribution = {
            name: extra_imports(
                import_times([str(BIN / "pipespec"), "stage", name], root),
                import_times(["-c", f"import {', '.join(NEEDS[name])}"], root),
            )
            for name in NEEDS
        }

    med = statistics.median
    print(
        f"tiny project: embedded data, dataset.rows={args.rows} (env=dev: half), "
        f"{' '.join(TINY)}; medians of {args.repeat}, seconds"
    )
    print(f"interpreter floor `python -c pass`:      {med(bare):.3f}s")
    print(f"pipespec CLI floor `pipespec --version`: {med(cli):.3f}s")
    print(
        f"{'stage':<10} {'pipespec':>9} {'to entry':>9} {'needed':>8} {'ratio':>7} "
        f"{'excess':>7}  {'only-pipespec imports ms (by package)':<40} needed imports"
    )
    total_ours = total_floor = 0.0
    for name, mods in NEEDS.items():
        o, f, e = med(ours[name]), med(floor[name]), med(entry[name])
        total_ours, total_floor = total_ours + o, total_floor + f
        us, by_package = attribution[name]
        print(
            f"{name:<10} {o:>9.2f} {e:>9.2f} {f:>8.2f} {o / f:>6.2f}x {o - f:>+7.2f}  "
            f"{f'{us / 1000:.0f}: {by_package}':<40} {' '.join(mods)}"
        )
    print(
        f"{'all 8':<10} {total_ours:>9.2f} {'':>9} {total_floor:>8.2f} "
        f"{total_ours / total_floor:>6.2f}x {total_ours - total_floor:>+7.2f}"
    )
    print(
        "pipespec: wall of `pipespec stage NAME`; to entry: spawn to the kind's function; "
        "needed: `python -c 'import <needed imports>'`; excess: pipespec - needed; "
        "only-pipespec imports: -X importtime self time of modules the floor does not import "
        "(inflated by -X importtime itself)"
    )


if __name__ == "__main__":
    main()
