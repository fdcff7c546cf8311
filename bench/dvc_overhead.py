"""What DVC does outside the stage processes in a whole run, pipespec against hand-written.

The two projects are `bench/pipeline.py`'s: the default pipeline under pipespec, and the
hand-written `dvc.yaml` of small scripts doing the same work, on the same seeded table. Each
run is `dvc repro -f` (what `pipespec run -f` runs in-process after composing) with an empty
DVC cache, as a first run of new data finds it, under DVC's own profiler
(`--cprofile-dump`). From the profile of the `dvc` process (the profiler slows DVC's
pure-Python code, not the stage processes: compare the sides, not the seconds):

- commands: waiting for the stage processes (`dvc/stage/run.py:_run`);
- DVC outside them: the rest of the wall time, and of it
  - hashing: reading outputs (and deps) to compute their MD5s (`dvc_data` `hash_file`,
    wherever it is called),
  - commit: putting outputs into the cache and linking or copying them back
    (`Stage.commit`; it includes any hashing it does itself),
  - run cache: recording each stage's run for later restores (`StageCache.save`),
  - lock: rewriting `dvc.lock` after each stage (`ProjectFile.dump`).

Variants (`--variants`) are measured on both sides in turn: a `dvc config cache.type` value,
and with `/pure`, DVC reading YAML with ruamel.yaml's pure-Python parser (as it does without
ruamel.yaml.clib installed). The machine is shared: compare the ratios of one run.

    python bench/dvc_overhead.py [--rows 1000000] [--rounds 20] [--repeat 1] [--impute all|missing]
                                 [--variants "reflink,copy;reflink,copy/pure;hardlink"]
"""

from __future__ import annotations

import argparse
import os
import pstats
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from noop_run import PURE_DVC
from pipeline import (
    BIN,
    INPUT,
    make_data,
    pipespec_overrides,
    run_cmd,
    setup_hand,
    setup_pipespec,
)

# (file suffix, function name) of the profile entries each figure is read from.
COMMANDS = ("dvc/stage/run.py", "_run")
HASH = ("dvc_data/hashfile/hash.py", "hash_file")
COMMIT = ("dvc/stage/__init__.py", "commit")
RUN_CACHE = ("dvc/stage/cache.py", "save")
LOCK = ("dvc/dvcfile.py", "dump")


@dataclass
class Figures:
    wall: float
    commands: float
    hashing: float
    commit: float
    run_cache: float
    lock: float
    cached_mib: float  # bytes DVC's cache holds after the run

    @property
    def dvc(self) -> float:
        """DVC's own time: the run outside the stage processes."""
        return self.wall - self.commands


def _cumulative(stats: pstats.Stats, where: tuple[str, str]) -> float:
    suffix, name = where
    raw = stats.stats  # type: ignore[attr-defined]
    return sum(
        entry[3] for (path, _, func), entry in raw.items() if path.endswith(suffix) and func == name
    )


def dvc_argv(variant: str) -> list[str]:
    """The `dvc` command for ``variant``: ``TYPE`` or ``TYPE/pure`` (pure-Python YAML)."""
    if variant.endswith("/pure"):
        return [sys.executable, "-c", PURE_DVC]
    return [str(BIN / "dvc")]


def measure(root: Path, variant: str) -> Figures:
    """One `dvc repro -f` of ``root`` in ``variant`` (a cache.type, with `/pure` for
    ruamel.yaml's pure-Python parser) with an empty cache, profiled."""
    cache_type = variant.removesuffix("/pure")
    run_cmd([str(BIN / "dvc"), "config", "--local", "cache.type", cache_type], root)
    shutil.rmtree(root / ".dvc" / "cache", ignore_errors=True)
    dump = root.parent / f"{root.name}.prof"
    start = time.perf_counter()
    run_cmd([*dvc_argv(variant), "repro", "-f", "--cprofile-dump", str(dump)], root)
    wall = time.perf_counter() - start
    stats = pstats.Stats(str(dump))
    cache = root / ".dvc" / "cache" / "files"
    cached = sum(p.stat().st_size for p in cache.rglob("*") if p.is_file())
    return Figures(
        wall=wall,
        commands=_cumulative(stats, COMMANDS),
        hashing=_cumulative(stats, HASH),
        commit=_cumulative(stats, COMMIT),
        run_cache=_cumulative(stats, RUN_CACHE),
        lock=_cumulative(stats, LOCK),
        cached_mib=cached / 2**20,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--numeric", type=int, default=50)
    parser.add_argument("--categorical", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=20, help="boosting rounds (train's work)")
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--impute", choices=("all", "missing"), default="all")
    parser.add_argument(
        "--variants",
        default="reflink,copy;reflink,copy/pure;hardlink",
        help="`;`-separated cache.type values to measure, `/pure` for DVC reading YAML with "
        "ruamel.yaml's pure-Python parser (default: DVC's own cache type with the C parser and "
        "with the pure one, and hard links)",
    )
    args = parser.parse_args()
    types = [t for t in args.variants.split(";") if t]
    os.environ["PATH"] = f"{BIN}{os.pathsep}{os.environ['PATH']}"  # stages run `pipespec`
    with tempfile.TemporaryDirectory(prefix="dvc-overhead-") as tmp:
        work = Path(tmp)
        data = work / INPUT
        make_data(args.rows, args.numeric, args.categorical).to_parquet(data, index=False)
        pipespec_root, hand_root = work / "pipespec", work / "hand"
        overrides = pipespec_overrides(args.numeric, args.rounds, args.impute)
        params = setup_pipespec(pipespec_root, data, overrides)
        impute = [f"x{i}" for i in range(args.numeric)] if args.impute == "all" else ["x0"]
        setup_hand(hand_root, data, {**params, "features": {"impute": impute}})
        sides = {"pipespec": pipespec_root, "hand": hand_root}
        results: dict[tuple[str, str], list[Figures]] = {}
        for i in range(args.repeat):
            order = list(sides.items()) if i % 2 == 0 else list(sides.items())[::-1]
            for cache_type in types:
                for side, root in order:
                    results.setdefault((side, cache_type), []).append(measure(root, cache_type))
        report(results, types, args)
        for side, root in sides.items():
            print(f"{side}: outputs, largest first (MiB): {largest_outputs(root)}")


def largest_outputs(root: Path, count: int = 8) -> str:
    """The ``count`` largest outputs in ``root``'s dvc.lock."""
    import yaml

    lock = yaml.safe_load((root / "dvc.lock").read_text())
    sizes = {
        out["path"]: out.get("size", 0)
        for stage in lock["stages"].values()
        for out in stage.get("outs", [])
    }
    top = sorted(sizes.items(), key=lambda item: -item[1])[:count]
    return ", ".join(f"{path} {size / 2**20:.0f}" for path, size in top)


def report(
    results: dict[tuple[str, str], list[Figures]], types: list[str], args: argparse.Namespace
) -> None:
    print(
        f"{args.rows:,} rows x {args.numeric + args.categorical} columns, {args.rounds} rounds; "
        f"`dvc repro -f` with an empty cache; best of {args.repeat}; seconds"
    )
    head = (
        f"{'side':9} {'variant':18} {'wall':>6} {'stages':>7} {'DVC':>6} {'hash':>6} "
        f"{'commit':>7} {'runcache':>8} {'lock':>5} {'cached MiB':>10}"
    )
    print(head)
    best: dict[tuple[str, str], Figures] = {}
    for (side, cache_type), runs in results.items():
        f = best[side, cache_type] = min(runs, key=lambda r: r.dvc)
        print(
            f"{side:9} {cache_type:18} {f.wall:6.1f} {f.commands:7.1f} {f.dvc:6.2f} "
            f"{f.hashing:6.2f} {f.commit:7.2f} {f.run_cache:8.2f} {f.lock:5.2f} "
            f"{f.cached_mib:10.0f}"
        )
    for cache_type in types:
        p, h = best["pipespec", cache_type], best["hand", cache_type]
        print(
            f"{cache_type}: DVC outside the stages, pipespec/hand-written "
            f"{p.dvc / h.dvc:.2f}x ({p.dvc:.2f}s / {h.dvc:.2f}s); "
            f"bytes cached {p.cached_mib / h.cached_mib:.2f}x"
        )
    base = types[0]
    for cache_type in types[1:]:
        for side in ("pipespec", "hand"):
            a, b = best[side, base], best[side, cache_type]
            print(
                f"{side}: DVC outside the stages with {cache_type} / with {base}: "
                f"{b.dvc / a.dvc:.2f}x ({b.dvc:.2f}s / {a.dvc:.2f}s)"
            )


if __name__ == "__main__":
    main()
