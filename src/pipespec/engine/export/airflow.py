"""``pipespec export airflow``: Airflow DAG files in ``dags/``.

Each task runs its stage through DVC in the project's checkout: ``dvc pull`` of the upstream
stages' outputs (what another worker pushed), ``dvc repro --single-item STAGE``, ``dvc push``
of its own outputs. Tasks follow the pipeline's dependencies, so independent stages run in
parallel; DVC commands wait for the repository lock (``--wait-for-lock``) when they share a
checkout. A ``pipelines/`` file with a ``monitor`` stage becomes its own scheduled DAG, whose
monitor task runs ``pipespec stage`` directly (it must check every schedule, and it exits 8 on
drift, which fails the task).
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any

from pipespec.core.errors import ConfigError
from pipespec.engine.compile import CHECK_STAGE
from pipespec.engine.export.base import ExportContext, header
from pipespec.engine.pipeline import Stage

DAGS_DIR = "dags"
DVC = "dvc --wait-for-lock"
MONITOR_KIND = "monitor"


@dataclass(frozen=True)
class Task:
    """One Airflow task: the stages it runs, the tasks it waits for, its shell command."""

    task_id: str
    stages: tuple[Stage, ...]
    upstream: tuple[str, ...]
    command: str


def _remote(orch: dict[str, Any]) -> str:
    return f" -r {shlex.quote(str(orch['remote']))}" if orch.get("remote") else ""


def _command(stages: tuple[Stage, ...], orch: dict[str, Any]) -> str:
    """Pull the inputs other tasks made, run the stages, push their outputs."""
    own = {s.name for s in stages}
    pulls = sorted({u for s in stages for u in s.upstream if u not in own})
    lines = ["set -euo pipefail"]
    share = bool(orch.get("share"))
    if share and pulls:
        lines.append(f"{DVC} pull{_remote(orch)} {' '.join(pulls)}")
    built = []
    for stage in stages:
        if stage.kind.name == MONITOR_KIND:
            lines.append(f"pipespec stage {shlex.quote(stage.name)}")
        else:
            lines.append(f"{DVC} repro --single-item {shlex.quote(stage.name)}")
            built.append(stage.name)
    if share and built:
        lines.append(f"{DVC} push{_remote(orch)} {' '.join(built)}")
    return "\n".join(lines)


def tasks(stages: list[Stage], group_by: str, orch: dict[str, Any]) -> list[Task]:
    """The DAG's tasks in dependency order: one per stage, or one per pipelines/ file.

    Root stages depend on the ``configs`` check stage's stamp, so its task comes first."""
    found = _tasks(stages, group_by, orch)
    roots = {s.name for s in stages if not s.upstream}
    if not roots:
        return found
    check = Task(CHECK_STAGE, (), (), f"{DVC} repro --single-item {CHECK_STAGE}")
    return [
        check,
        *(
            Task(t.task_id, t.stages, (CHECK_STAGE, *t.upstream), t.command)
            if roots & {s.name for s in t.stages}
            else t
            for t in found
        ),
    ]


def _tasks(stages: list[Stage], group_by: str, orch: dict[str, Any]) -> list[Task]:
    names = {s.name for s in stages}
    if group_by == "file":
        groups: dict[str, list[Stage]] = {}
        for s in stages:
            groups.setdefault(PurePosixPath(s.source).stem, []).append(s)
        owner = {s.name: key for key, members in groups.items() for s in members}
        out = []
        for key, members in groups.items():
            ups = sorted({owner[u] for s in members for u in s.upstream if u in owner} - {key})
            out.append(Task(key, tuple(members), tuple(ups), _command(tuple(members), orch)))
        return out
    if group_by != "stage":
        raise ConfigError(f"--group-by takes 'stage' or 'file', not '{group_by}'")
    return [
        Task(
            s.name,
            (s,),
            tuple(u for u in s.upstream if u in names),
            _command((s,), orch),
        )
        for s in stages
    ]


def dag_file(ctx: ExportContext, dag_id: str, schedule: str | None, task_list: list[Task]) -> str:
    """The DAG module's text."""
    orch = ctx.group("orchestrator")
    default_args: list[str] = [
        f"    'retries': {int(orch['retries'])},",
        f"    'retry_delay': timedelta(seconds={int(orch['retry_delay_seconds'])}),",
        f"    'execution_timeout': timedelta(minutes={int(orch['timeout_minutes'])}),",
    ]
    if orch.get("pool"):
        default_args.append(f"    'pool': {str(orch['pool'])!r},")
    env = {str(k): str(v) for k, v in sorted((orch.get("env") or {}).items())}
    lines = [
        '"""' + header("airflow", comment="").replace("\n ", "\n").strip(),
        "",
        "Each task runs its pipeline stage through DVC in the project's checkout (PROJECT).",
        '"""',
        "",
        "from __future__ import annotations",
        "",
        "import os",
        "from datetime import datetime, timedelta, timezone",
        "from pathlib import Path",
        "",
        "from airflow.providers.standard.operators.bash import BashOperator",
        "from airflow.sdk import DAG",
        "",
        "# the project's checkout: PIPESPEC_PROJECT, or the folder above dags/",
        "PROJECT = os.environ.get('PIPESPEC_PROJECT') or str(Path(__file__).resolve().parents[1])",
        f"ENV = {env!r}",
        "DEFAULT_ARGS = {",
        *default_args,
        "}",
        "",
        "with DAG(",
        f"    dag_id={dag_id!r},",
        f"    schedule={schedule!r},",
        "    start_date=datetime(2026, 1, 1, tzinfo=timezone.utc),",
        "    catchup=False,",
        "    max_active_runs=1,",
        "    default_args=DEFAULT_ARGS,",
        "    tags=['pipespec'],",
        "):",
    ]
    ids = _variables([t.task_id for t in task_list])
    for t in task_list:
        lines += [
            f"    {ids[t.task_id]} = BashOperator(",
            f"        task_id={t.task_id!r},",
            f"        bash_command={t.command!r},",
            "        cwd=PROJECT,",
            "        env=ENV,",
            "        append_env=True,",
            "    )",
        ]
    edges = [f"    {ids[u]} >> {ids[t.task_id]}" for t in task_list for u in t.upstream]
    if edges:
        lines += ["", *edges]
    return "\n".join(lines) + "\n"


def _variables(task_ids: list[str]) -> dict[str, str]:
    """A distinct Python variable name per task id (``t_`` and the id's word characters)."""
    names: dict[str, str] = {}
    for task_id in task_ids:
        name = "t_" + re.sub(r"[^A-Za-z0-9_]", "_", task_id)
        while name in names.values():
            name += "_"
        names[task_id] = name
    return names


def export(ctx: ExportContext) -> dict[str, str]:
    orch = ctx.group("orchestrator")
    group_by = str(ctx.options.get("group_by") or "stage")
    by_file: dict[str, list[Stage]] = {}
    for stage in ctx.pipeline.stages:
        by_file.setdefault(stage.source, []).append(stage)
    monitoring = {f for f, ss in by_file.items() if any(s.kind.name == MONITOR_KIND for s in ss)}
    training = [s for s in ctx.pipeline.stages if s.source not in monitoring]
    dag_id = str(orch["dag_id"])
    files = {}
    if training:
        files[f"{DAGS_DIR}/{dag_id}.py"] = dag_file(
            ctx, dag_id, orch.get("schedule"), tasks(training, group_by, orch)
        )
    for source in sorted(monitoring):
        name = f"{dag_id}_{PurePosixPath(source).stem}"
        files[f"{DAGS_DIR}/{name}.py"] = dag_file(
            ctx, name, str(orch["monitor_schedule"]), tasks(by_file[source], group_by, orch)
        )
    return files
