"""The package stage alone: `pipespec stage package` against a hand-written minimal package
script, on the splits of a synthetic table. Prints the median wall time of each, the ratio,
and the issue's target (at most 1.5 s at 1M rows).

Data and project as `bench/pipeline.py` builds them (`make_data`, `pipespec init`, the same
overrides: dataset=parquet, env=prod, every numeric column median-imputed, 2 threads), then
the stages before package run once (`pipespec stage load` ... `train`, not timed). Timed, in
turn: `pipespec stage package` (the bundle: input schema, drift profile of the training rows
and of the model's scores on them, card, manifest) and the hand-written script (copy the
model, the transforms and the train metrics into a folder with a SHA-256 manifest: what
`bench/pipeline.py`'s hand-written package does). The machine is shared: runs alternate,
medians are shown. `--compare SRC` also runs the stage of another pipespec source tree
(e.g. main's `src`: `git archive main src | tar -x -C DIR`) alternately with this one and
says whether the two bundles are byte-identical.

`--keep DIR` keeps the prepared project in DIR and reuses it when it is there (only the
timed part runs again). `--warm` times the stage as `pipespec run` runs it: a fork of a
process that has imported what the warm runner imports (`engine/runner.py`'s
`WARM_MODULES`), so the imports are not timed; wall and CPU are the forked child's.
`--profile` runs the stage once more under cProfile and prints the functions with the most
cumulative time.

    python bench/package.py [--rows 1000000] [--numeric 50] [--categorical 5] [--rounds 100]
                            [--repeat 3] [--keep DIR] [--profile] [--compare SRC] [--warm]
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Callable
from pathlib import Path

from data_layer import run_stage
from pipeline import INPUT, SCRIPTS, make_data, pipespec_overrides, run_cmd

BIN = Path(sys.executable).parent
TARGET = 1.5  # seconds at 1M rows under `pipespec run` (issue 23)
BEFORE = ("load", "validate", "split", "featurize", "train")

# bench/pipeline.py's hand-written package script, on this project's paths
HAND_PATHS = {
    "models/model.txt": "models/train/model.txt",
    "models/features.json": "models/featurize/transforms.json",
    "metrics/evaluate.json": "metrics/train.json",
    "models/bundle": "hand/bundle",
}


def hand_script() -> str:
    text = textwrap.dedent(SCRIPTS["package.py"]).lstrip()
    for theirs, ours in HAND_PATHS.items():
        if theirs not in text:
            raise SystemExit(f"bench/pipeline.py's package script no longer reads {theirs}")
        text = text.replace(theirs, ours)
    return text


def prepare(root: Path, args: argparse.Namespace) -> None:
    """A pipespec project with every stage before package run once."""
    if (root / "models" / "train" / "model.txt").exists():
        return
    root.parent.mkdir(parents=True, exist_ok=True)
    run_cmd([str(BIN / "pipespec"), "init", str(root)], root.parent)
    make_data(args.rows, args.numeric, args.categorical).to_parquet(root / INPUT, index=False)
    overrides = pipespec_overrides(args.numeric, args.rounds, "all")
    run_cmd([str(BIN / "pipespec"), "compose", *overrides], root)
    (root / "hand_package.py").write_text(hand_script())
    for name in BEFORE:
        wall, _ = run_stage(root, name)
        print(f"  prepared {name}: {wall:.1f} s", flush=True)


def cpu_of(run: Callable[[], float]) -> tuple[float, float]:
    """Wall seconds of ``run`` (a child process) and the CPU seconds (user + system) the
    child used: on a shared machine the CPU time holds better than the wall time."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    wall = run()
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


# `--warm`: the warm runner's imports, then one fork that runs the stage as the runner's
# child does (runner.run_in_process), timed from the fork to its exit
WARM = """
import importlib, os, resource, sys, time
from pipespec.engine import runner
for name in runner.WARM_MODULES:
    module, _, call = name.partition(":")
    imported = importlib.import_module(module)
    if call:
        getattr(imported, call)()
before = resource.getrusage(resource.RUSAGE_CHILDREN)
start = time.perf_counter()
# as the runner forks (its heap frozen first); a source tree from before that, as it did
pid = getattr(runner, "_fork", os.fork)()
if pid == 0:
    null = os.open(os.devnull, os.O_WRONLY)
    os.dup2(null, 1)
    os.dup2(null, 2)
    runner._reseed()
    os._exit(runner.run_in_process("package"))
_, status = os.waitpid(pid, 0)
wall = time.perf_counter() - start
after = resource.getrusage(resource.RUSAGE_CHILDREN)
cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
print(wall, cpu, os.waitstatus_to_exitcode(status))
"""


def warm(root: Path) -> tuple[float, float]:
    """Wall and CPU seconds of the package stage in a fork of a warm runner-like process."""
    proc = subprocess.run(
        [sys.executable, "-c", WARM], cwd=root, capture_output=True, text=True, check=True
    )
    wall, cpu, code = proc.stdout.split()
    if code != "0":
        raise SystemExit(f"stage package failed in the warm fork (exit code {code})")
    return float(wall), float(cpu)


def hand(root: Path) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "hand_package.py"], cwd=root, check=True)
    return time.perf_counter() - start


def with_path(src: str | None, root: Path, *, forked: bool = False) -> tuple[float, float]:
    """``cpu_of`` the package stage (``warm`` with ``forked``), with PYTHONPATH=src (another
    pipespec tree) if given."""
    saved = os.environ.get("PYTHONPATH")
    if src is not None:
        os.environ["PYTHONPATH"] = src
    try:
        if forked:
            return warm(root)
        return cpu_of(lambda: run_stage(root, "package")[0])
    finally:
        if saved is None:
            os.environ.pop("PYTHONPATH", None)
        else:
            os.environ["PYTHONPATH"] = saved


def bundle_bytes(root: Path) -> dict[str, bytes]:
    folder = root / "models" / "bundle"
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file()}  # fmt: skip


def profile(root: Path) -> None:
    code = (
        "import cProfile, pstats, sys\n"
        "from pipespec.cli.main import main\n"
        "cProfile.run('main([\"stage\", \"package\"])', 'package.prof')\n"
        "pstats.Stats('package.prof').sort_stats('cumulative').print_stats(40)\n"
    )
    subprocess.run([sys.executable, "-c", code], cwd=root, check=True)


def arguments(doc: str | None) -> argparse.ArgumentParser:
    """The options of a bench on one prepared project, timed side by side with --compare."""
    parser = argparse.ArgumentParser(description=(doc or "").splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--numeric", type=int, default=50)
    parser.add_argument("--categorical", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=100)
    parser.add_argument("--repeat", type=int, default=3, help="timed runs per side")
    parser.add_argument("--keep", type=Path, help="prepare the project here, or reuse it")
    parser.add_argument("--profile", action="store_true", help="cProfile one more run")
    parser.add_argument("--compare", type=Path, help="another pipespec src tree, side by side")
    parser.add_argument(
        "--warm", action="store_true", help="time the stage in a fork of a warm process"
    )
    return parser


def main() -> None:
    args = arguments(__doc__).parse_args()
    os.environ["PATH"] = f"{BIN}{os.pathsep}{os.environ['PATH']}"
    with tempfile.TemporaryDirectory() as tmp:
        root = (args.keep or Path(tmp) / "project").resolve()
        prepare(root, args)
        ours: list[tuple[float, float]] = []
        theirs: list[tuple[float, float]] = []
        other: list[tuple[float, float]] = []
        same = True
        for i in range(args.repeat):
            sides = ["ours", "compare"] if i % 2 == 0 else ["compare", "ours"]
            written = {}
            for side in sides:
                if side == "compare" and not args.compare:
                    continue
                src = str(args.compare.resolve()) if side == "compare" else None
                (other if side == "compare" else ours).append(
                    with_path(src, root, forked=args.warm)
                )
                written[side] = bundle_bytes(root)
            if args.compare:
                same = same and written["ours"] == written["compare"]
            theirs.append(cpu_of(lambda: hand(root)))
        if args.profile:
            profile(root)
    o, h = statistics.median(w for w, _ in ours), statistics.median(w for w, _ in theirs)
    o_cpu, h_cpu = statistics.median(c for _, c in ours), statistics.median(c for _, c in theirs)
    if other:
        c, c_cpu = statistics.median(w for w, _ in other), statistics.median(c for _, c in other)
        print(
            f"package side by side: this tree {o:.2f} s wall, {o_cpu:.2f} s CPU; "
            f"{args.compare} {c:.2f} s wall, {c_cpu:.2f} s CPU (runs "
            f"{', '.join(f'{w:.2f}' for w, _ in other)}); ratio this/compared {o / c:.2f}x wall, "
            f"{o_cpu / c_cpu:.2f}x CPU; bundles " + ("byte-identical" if same else "DIFFER")
        )
    mode = "in a warm fork (as under pipespec run)" if args.warm else "as its own process"
    print(
        f"package {mode} at {args.rows:,} rows x {args.numeric + args.categorical} columns: "
        f"pipespec {o:.2f} s wall, {o_cpu:.2f} s CPU (runs {', '.join(f'{w:.2f}' for w, _ in ours)}"
        f"); hand-written {h:.2f} s wall, {h_cpu:.2f} s CPU; ratio {o / h:.1f}x; "
        f"target <= {TARGET} s at 1M rows: "
        + ("met" if o <= TARGET else "not met")
        + f"; load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs"
    )


if __name__ == "__main__":
    main()
