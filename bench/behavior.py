"""The behaviour stage alone: `pipespec stage behavior` on the packaged bundle of a synthetic
table, timed, against the issue's target (at most 2.5 s at 1M rows). With `--compare SRC`,
the same stage of another pipespec source tree (e.g. main's `src`, exported with
`git archive main src | tar -x -C DIR`) runs alternately on the same project: both medians,
the ratio, and whether the two wrote the same bytes (metrics/behavior.json and the report).

Data and project as `bench/package.py` prepares them (`bench/pipeline.py`'s synthetic table
and overrides), plus the package stage, run once (not timed). The pipeline's behaviour
checks on this table are the defaults (the weakest-segment search, the latency calls, with
their bounds off so that a slow call on a loaded machine does not make the reports differ);
`--perturb` adds perturbation checks (an invariance to a set value, an invariance to noise,
two directional shifts) so that their scoring is measured too.

    python bench/behavior.py [--rows 1000000] [--numeric 50] [--categorical 5]
                             [--rounds 100] [--repeat 3] [--keep DIR] [--perturb]
                             [--compare SRC] [--profile]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from data_layer import run_stage
from package import arguments, cpu_of, prepare
from pipeline import pipespec_overrides, run_cmd

BIN = Path(sys.executable).parent
TARGET = 2.5  # seconds at 1M rows (issue 23)
OUTPUTS = ("metrics/behavior.json", "reports/behavior/report.json")
PERTURB = {  # the lines of the project's configs/behavior/default.yaml they replace
    "invariance: {}": "invariance: {c4_set: {column: c4, value: level_3, tolerance: 0.5}, "
    "x7_noise: {column: x7, noise: 0.1, tolerance: 0.5}}",
    "directional: {}": "directional: {x1_up: {column: x1, shift: 0.5, direction: up, "
    "tolerance: 0.5}, x2_down: {column: x2, shift: 0.5, direction: down, tolerance: 0.5}}",
}


def prepare_behavior(root: Path, args: argparse.Namespace) -> None:
    """`bench/package.py`'s project, composed with the perturbation checks when asked, and
    its package stage run once."""
    prepare(root, args)
    # the latency calls still run, but their bounds are off: a timing over a bound on a
    # loaded machine would enter the report and make the two sides' bytes differ
    overrides = pipespec_overrides(args.numeric, args.rounds, "all")
    overrides += ["behavior.latency.single_p99_ms=null", "behavior.latency.batch_p99_ms=null"]
    if args.perturb:  # a behaviour config of the project's own, with the checks added
        text = (root / "configs" / "behavior" / "default.yaml").read_text()
        for line, checks in PERTURB.items():
            if line not in text:
                raise SystemExit(f"configs/behavior/default.yaml no longer has '{line}'")
            text = text.replace(line, checks)
        (root / "configs" / "behavior" / "perturb.yaml").write_text(text)
        overrides += ["behavior=perturb", "behavior.enforce=false"]
    run_cmd([str(BIN / "pipespec"), "compose", *overrides], root)
    if not (root / "models" / "bundle" / "manifest.json").exists():
        wall, _ = run_stage(root, "package")
        print(f"  prepared package: {wall:.1f} s", flush=True)


def timed(root: Path, src: str | None) -> tuple[tuple[float, float], dict[str, bytes]]:
    """(wall, CPU) of one `pipespec stage behavior`, with PYTHONPATH=src when given, and the
    bytes it wrote."""
    saved = os.environ.get("PYTHONPATH")
    if src is not None:
        os.environ["PYTHONPATH"] = src
    try:
        took = cpu_of(lambda: run_stage(root, "behavior")[0])
    finally:
        if saved is None:
            os.environ.pop("PYTHONPATH", None)
        else:
            os.environ["PYTHONPATH"] = saved
    return took, {p: (root / p).read_bytes() for p in OUTPUTS}


def profile(root: Path) -> None:
    code = (
        "import cProfile, pstats\n"
        "from pipespec.cli.main import main\n"
        "cProfile.run('main([\"stage\", \"behavior\"])', 'behavior.prof')\n"
        "pstats.Stats('behavior.prof').sort_stats('cumulative').print_stats(40)\n"
    )
    subprocess.run([sys.executable, "-c", code], cwd=root, check=False)


def line(label: str, runs: list[tuple[float, float]]) -> str:
    wall = statistics.median(w for w, _ in runs)
    cpu = statistics.median(c for _, c in runs)
    walls = ", ".join(f"{w:.2f}" for w, _ in runs)
    return f"{label} {wall:.2f} s wall, {cpu:.2f} s CPU (runs {walls})"


def main() -> None:
    parser = arguments(__doc__)
    parser.add_argument("--perturb", action="store_true", help="add perturbation checks")
    args = parser.parse_args()
    os.environ["PATH"] = f"{BIN}{os.pathsep}{os.environ['PATH']}"
    other = str(args.compare.resolve()) if args.compare else None
    with tempfile.TemporaryDirectory() as tmp:
        root = (args.keep or Path(tmp) / "project").resolve()
        prepare_behavior(root, args)
        ours: list[tuple[float, float]] = []
        theirs: list[tuple[float, float]] = []
        same = True
        for i in range(args.repeat):
            # alternate which side goes first: the machine is shared
            order = (
                [(None, ours), (other, theirs)] if i % 2 == 0 else [(other, theirs), (None, ours)]
            )
            written: dict[str | None, dict[str, bytes]] = {}
            for src, runs in order:
                if src is None and runs is theirs:
                    continue
                took, out = timed(root, src)
                runs.append(took)
                written[src] = out
            if other is not None:
                same = same and written[None] == written[other]
        if args.profile:
            profile(root)
    o = statistics.median(w for w, _ in ours)
    text = f"behavior at {args.rows:,} rows" + (" with perturbations" if args.perturb else "")
    text += f": {line('this tree', ours)}"
    if theirs:
        t = statistics.median(w for w, _ in theirs)
        text += f"; {line(str(args.compare), theirs)}; ratio this/compared {o / t:.2f}x"
        text += "; outputs " + ("byte-identical" if same else "DIFFER")
    text += f"; target <= {TARGET} s at 1M rows: " + ("met" if o <= TARGET else "not met")
    text += f"; load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs"
    print(text)


if __name__ == "__main__":
    main()
