"""The warm stage runner (engine/runner.py): stages handed to it give the bytes an in-process
stage gives, an interrupt leaves nothing half-written, and without a usable runner a stage
runs in its own process."""

from __future__ import annotations

import ast
import hashlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from tests.helpers import BIN, clone_trained, run_cli, run_tool

from pipespec.core.errors import ConfigError, StaleError
from pipespec.engine.runner import ENV_SOCKET, ENV_TOKEN, warm_runner

DELEGATE = (
    "import sys; from pipespec.engine.runner import delegate; "
    "print(delegate(['stage', sys.argv[1]]))"
)
CHECK = (
    "from pipespec.engine.runner import delegate; "
    "print(delegate(['compose', '--check', '--stamp', '.pipespec/configs.ok']))"
)
MAIN = (
    "import sys; from pipespec.cli.main import main; code = main(sys.argv[1:]); "
    "print(code, 'pipespec.cli.production' in sys.modules)"
)


@pytest.fixture
def project(trained_project: Path, tmp_path: Path) -> Path:
    return clone_trained(trained_project, tmp_path / "proj")


def _delegate(
    root: Path, stage: str, *, code: str = DELEGATE, **env: str
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code, stage],
        cwd=root,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=300,
    )


def _digests(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def test_a_stage_run_by_the_runner_writes_the_in_process_bytes(project: Path) -> None:
    outputs = [project / "metrics", project / "plots", project / "data" / "evaluate"]
    with warm_runner(project / ".pipespec") as proc:
        assert proc is not None
        handed = _delegate(project, "evaluate")
        assert handed.returncode == 0, handed.stderr
        assert handed.stdout.strip() == "0"  # the runner ran it: delegate gave its exit code
        assert "stage evaluate (evaluate)" in handed.stderr  # the child wrote to our stderr
        by_runner = [_digests(folder) for folder in outputs]
        failed = _delegate(project, "no_such_stage")
        assert failed.stdout.strip() == str(ConfigError.exit_code), failed.stderr
        assert "no_such_stage" in failed.stderr
    assert not (project / ".pipespec" / "runner.sock").exists()
    assert proc.poll() is not None
    run_cli("stage", "evaluate", cwd=project)  # its own process
    assert [_digests(folder) for folder in outputs] == by_runner


def test_the_commands_dvc_starts_are_handed_over_before_any_parser(project: Path) -> None:
    stamp = project / ".pipespec" / "configs.ok"
    stamp.unlink(missing_ok=True)  # local state: a clone has none
    with warm_runner(project / ".pipespec"):
        checked = _delegate(project, "", code=CHECK)
        assert checked.stdout.strip() == "0", checked.stderr  # the runner's exit code
        assert "params.yaml and dvc.yaml are up to date" in checked.stderr
        assert stamp.is_file()
        # the console script's way in: handed over with no command group imported
        for argv in (["stage", "gate"], ["compose", "--check", "--stamp", str(stamp)]):
            handed = subprocess.run(
                [sys.executable, "-c", MAIN, *argv],
                cwd=project,
                capture_output=True,
                text=True,
                timeout=300,
            )
            assert handed.stdout.split() == ["0", "False"], handed.stderr
        # a stale params.yaml: the check's message and exit code, through the runner
        cfg = project / "configs" / "model" / "lightgbm.yaml"
        cfg.write_text(cfg.read_text().replace("learning_rate: 0.05", "learning_rate: 0.2"))
        stamp.unlink()
        stale = _delegate(project, "", code=CHECK)
        assert stale.stdout.strip() == str(StaleError.exit_code), stale.stderr
        assert "params.yaml is stale" in stale.stderr
        assert not stamp.exists()


COMMAND = (
    "import os, sys; from pipespec.engine.runner import run_command; "
    "env = {**os.environ, 'DVC_STAGE': 'x', 'DVC_ROOT': os.getcwd()}; "
    "print([run_command(c, env, os.getcwd()) for c in sys.argv[1:]])"
)


def test_pipespec_runs_own_stage_commands_hand_over_without_a_process(project: Path) -> None:
    """What `pipespec run`'s process does for each command DVC is about to start."""
    commands = ["pipespec stage gate", "pipespec stage no_such_stage", "echo hi",
                "pipespec stage gate --x", "pipespec stage 'unclosed"]  # fmt: skip

    def offered() -> list[int | None]:
        proc = subprocess.run([sys.executable, "-c", COMMAND, *commands], cwd=project,
                              capture_output=True, text=True, timeout=300)  # fmt: skip
        assert proc.returncode == 0, proc.stderr
        return list(ast.literal_eval(proc.stdout.strip().splitlines()[-1]))

    assert offered() == [None] * len(commands)  # no runner: DVC starts them all
    mark = project / ".pipespec" / "runs" / "gate"
    with warm_runner(project / ".pipespec"):
        mark.unlink(missing_ok=True)
        # the runner ran the two stages (the second's exit code); DVC starts the others
        assert offered() == [0, ConfigError.exit_code, None, None, None]
    assert mark.is_file()


def test_without_a_usable_runner_the_stage_runs_in_process(project: Path) -> None:
    dead = {ENV_SOCKET: str(project / ".pipespec" / "runner.sock"), ENV_TOKEN: "x"}
    assert _delegate(project, "gate", **dead).stdout.strip() == "None"
    proc = subprocess.run(
        [str(BIN / "pipespec"), "stage", "gate"],
        cwd=project,
        env={**os.environ, **dead},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert "stage gate (gate)" in proc.stderr
    with warm_runner(project / ".pipespec"):
        # an environment the runner's imports did not see: refused, run in-process instead
        refused = _delegate(project, "gate", OMP_NUM_THREADS="1")
        assert refused.stdout.strip() == "None"
        assert refused.returncode == 0
        wrong_token = _delegate(project, "gate", **{ENV_TOKEN: "wrong"})
        assert wrong_token.stdout.strip() == "None"


def _children(pid: int) -> list[int]:
    found: list[int] = []
    for tid in os.listdir(f"/proc/{pid}/task"):
        with open(f"/proc/{pid}/task/{tid}/children") as fh:
            found.extend(int(c) for c in fh.read().split())
    return found


def test_an_interrupted_stage_leaves_nothing_half_written(project: Path) -> None:
    model = project / "models" / "train"
    before = _digests(model)
    with warm_runner(project / ".pipespec") as runner:
        assert runner is not None
        client = subprocess.Popen(
            [sys.executable, "-c", DELEGATE, "train"],
            cwd=project,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        deadline = time.monotonic() + 120
        while not _children(runner.pid) and time.monotonic() < deadline:
            assert client.poll() is None, client.communicate()
            time.sleep(0.05)
        (child,) = _children(runner.pid)
        time.sleep(0.5)  # into the stage's work
        client.send_signal(signal.SIGTERM)
        out, err = client.communicate(timeout=120)
        assert out.strip() == "130", err  # the child's KeyboardInterrupt exit code
        assert "interrupted" in err
        assert not Path(f"/proc/{child}").exists() or child not in _children(runner.pid)
    assert not list(project.rglob(".*.tmp"))
    assert _digests(model) == before  # the old model, whole: not a half-written new one


def test_a_stage_runs_with_the_heap_frozen_and_leaves_it_unfrozen(tmp_path: Path) -> None:
    """``run_stage``: the objects the process held before the stage are out of the
    collector's reach while it runs (in a fork of the warm runner a full collection would
    walk and copy every page of the imported libraries); afterwards, and after a stage
    fails, they are back."""
    import gc

    from tests.helpers import copy_template_project

    from pipespec.core.errors import StageError
    from pipespec.engine.generate import generate, write
    from pipespec.engine.project import Project
    from pipespec.engine.stage_process import run_stage

    root = copy_template_project(tmp_path)
    (root / "kinds_gc_user.py").write_text(
        'READS = ("seed",)\nOUTPUTS = {"seen": ("data/{stage}/seen.txt", "out")}\n\n'
        "def run(ctx):\n"
        '    """Writes the collector\'s frozen count; fails when seed is odd."""\n'
        "    import gc\n"
        '    ctx.output("seen").write_text(str(gc.get_freeze_count()))\n'
        '    if ctx.params["seed"] % 2:\n'
        '        raise RuntimeError("odd seed")\n'
    )
    with (root / "pipelines" / "train.yaml").open("a") as fh:
        fh.write("  counted:\n    kind: kinds_gc_user:run\n")
    project = Project(root)
    seen = root / "data" / "counted" / "seen.txt"
    before = gc.get_freeze_count()
    write(project, generate(project, ("seed=2",)))
    run_stage(project, "counted")
    assert int(seen.read_text()) > before
    assert gc.get_freeze_count() == before
    write(project, generate(project, ("seed=3",)))
    with pytest.raises(StageError, match=r"stage 'counted' \(kinds_gc_user:run\) failed: "
                       r"RuntimeError: odd seed"):  # fmt: skip
        run_stage(project, "counted")
    assert int(seen.read_text()) > before
    assert gc.get_freeze_count() == before


FORK = (
    "import gc, os\n"
    "from pipespec.engine import runner\n"
    "held = len(gc.get_objects())\n"
    "pid = runner._fork()\n"
    "if pid == 0:\n"
    "    os._exit(0 if gc.get_freeze_count() >= held and not gc.get_objects(2) else 3)\n"
    "print(os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]))\n"
)


def test_the_runner_forks_a_child_with_its_heap_out_of_the_collector_s_reach() -> None:
    """A child's first full collection would walk every object the runner holds (the
    imported libraries') and copy each page holding one: the runner freezes them first."""
    proc = subprocess.run([sys.executable, "-c", FORK], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "0"


REPRO_READING = (
    "import sys; from pathlib import Path\n"
    "import dvc_data.hashfile.hash as h\n"
    "from pipespec.engine import dvc_repo, runner\n"
    "from pipespec.engine.project import Project\n"
    "read, md5 = [], h.file_md5\n"
    "def watched(path, *a, **k):\n"
    "    read.append(str(path))\n"
    "    return md5(path, *a, **k)\n"
    "h.file_md5 = watched\n"
    "with runner.warm_runner(Path('.pipespec').resolve()):\n"
    "    code = dvc_repo.repro(Project(Path.cwd()), force=True, args=sys.argv[1:],\n"
    "                          hand_over=runner.run_command)\n"
    "print(repr((code, read)))\n"
)


def test_dvc_reads_no_table_a_handed_over_stage_wrote(project: Path) -> None:
    """Under ``pipespec run`` each handed-over stage lists the MD5 of the tables it wrote,
    and DVC's state learns them: DVC hashes none of those tables again, and the lock is the
    one plain ``dvc repro -f`` writes after reading every file itself."""
    proc = subprocess.run([sys.executable, "-c", REPRO_READING, "split"], cwd=project,
                          capture_output=True, text=True, timeout=300)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    code, read = ast.literal_eval(proc.stdout.strip().splitlines()[-1])
    assert code == 0
    assert "stage split" in proc.stdout + proc.stderr
    assert [p for p in read if p.endswith(".parquet")] == []
    assert any(p.endswith("report.json") for p in read)  # small files: DVC hashes them
    assert not list((project / ".pipespec").glob("tables-*.json"))
    ours = (project / "dvc.lock").read_bytes()
    run_tool("dvc", "repro", "-f", "split", cwd=project)
    assert (project / "dvc.lock").read_bytes() == ours
