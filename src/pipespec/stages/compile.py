"""The ``compile`` stage: the bundle's model compiled to machine code by lleaves, for
``production.engine: lleaves`` (the optional extra ``pipespec[compiled]``).

Use it as ``kind: compile`` with two inputs, the bundle (``package.bundle``) and held-out raw
rows (``split.valid`` or ``split.test``). It writes ``models/compiled/`` (a DVC output beside
the bundle, whose bytes it never touches): ``model.so`` and ``key.json``, the key that
``pipespec.bundle.engine.select`` checks before serving or predicting with it (the model's
SHA-256, the CPU, the lleaves and llvmlite versions). It first scores the held-out rows with
both engines and refuses the compiled one (``EngineMismatchError``) when any score differs
from ``booster.predict`` by more than 1e-9. With ``production.engine: lightgbm`` it writes
only a key saying so, and the server uses LightGBM.
"""

from __future__ import annotations

import hashlib
import shutil
import tempfile
from pathlib import Path
from typing import Any

from pipespec.core.atomic import make_folder, prepare_output, write_json
from pipespec.core.console import console
from pipespec.core.errors import ConfigError, EngineMismatchError, OutputError
from pipespec.stages.context import StageContext
from pipespec.stages.parquet import read_table

# The kind's contract (docs/architecture.md, "Stage kinds")
READS = ("production.engine", "compute.num_threads")
INPUTS = ("bundle", "data")
OUTPUTS = {
    "compiled": ("models/compiled", "out"),
    "metrics": ("metrics/{stage}.json", "metrics"),
}

CHECK_ROWS = 20_000  # held-out rows both engines score for the check


def run(ctx: StageContext) -> None:
    """Compile the bundle's model with lleaves and check it against booster.predict."""
    import numpy as np

    from pipespec.bundle import engine
    from pipespec.bundle.bundle import Bundle
    from pipespec.bundle.transforms import matrix

    requested = str(ctx.params["production"]["engine"])
    threads = int(ctx.params["compute"]["num_threads"])
    target = ctx.output("compiled")
    bundle = Bundle.load(ctx.input("bundle"), project=ctx.root)
    if requested != "lleaves":
        _publish(target, {"engine": requested}, None)
        write_json(ctx.output("metrics"), {"engine": requested, "rows": 0})
        console().print(f"  production.engine is {requested}: nothing to compile")
        return
    try:
        key = engine.expected_key(bundle)
    except ImportError:
        raise ConfigError(
            f"stage '{ctx.name}': production.engine=lleaves needs the lleaves package",
            hint=f"Install the extra: pip install '{engine.EXTRA}'.",
        ) from None
    frame, _ = read_table(ctx.input("data"))
    checked = bundle.check(frame.head(CHECK_ROWS))
    rows = checked.valid
    features = matrix(bundle.transforms, checked.take(rows), bundle.feature_names, bundle.custom)
    expected = np.asarray(bundle.booster.predict(features, num_threads=threads))
    with tempfile.TemporaryDirectory(prefix=".compile.", dir=ctx.root) as scratch:
        obj = Path(scratch) / engine.OBJECT
        model = engine.load(bundle, obj)  # compiles: obj does not exist yet
        got = np.asarray(model.predict(np.ascontiguousarray(features), n_jobs=threads))
        if got.shape != expected.shape:
            raise EngineMismatchError(
                f"stage '{ctx.name}': lleaves scores have shape {got.shape}, "
                f"booster.predict {expected.shape}: the compiled engine is refused",
                hint="Keep production.engine=lightgbm for this model.",
            )
        diff = float(np.max(np.abs(got - expected))) if expected.size else 0.0
        if not diff <= engine.TOLERANCE:  # NaN refuses too
            raise EngineMismatchError(
                f"stage '{ctx.name}': lleaves differs from booster.predict by {diff:.3g} "
                f"on {len(rows):,} held-out rows of {ctx.input('data').name} (at most "
                f"{engine.TOLERANCE:g} allowed): the compiled engine is refused",
                hint="Keep production.engine=lightgbm for this model.",
            )
        data = obj.read_bytes()
        stored = {
            "engine": "lleaves",
            "key": key,
            "object_sha256": hashlib.sha256(data).hexdigest(),
            "checked_rows": len(rows),
            "max_abs_diff": diff,
        }
        _publish(target, stored, data)
    write_json(
        ctx.output("metrics"), {"engine": "lleaves", "rows": len(rows), "max_abs_diff": diff}
    )
    console().print(
        f"  compiled {bundle.booster.num_trees()} trees with lleaves; max difference "
        f"{diff:.2g} on {len(rows):,} held-out rows -> {target}"
    )


def _publish(target: Path, stored: dict[str, Any], data: bytes | None) -> None:
    """Write the cache directory whole: built beside ``target``, then moved into place."""
    prepare_output(target)
    make_folder(target.parent)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent))
    try:
        tmp.chmod(0o755)
        if data is not None:
            from pipespec.bundle.engine import OBJECT

            (tmp / OBJECT).write_bytes(data)
        write_json(tmp / "key.json", stored)
        if target.exists():
            shutil.rmtree(target)
        tmp.replace(target)
    except OSError as exc:
        raise OutputError(f"cannot write {target}: {exc.strerror or exc}") from None
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
