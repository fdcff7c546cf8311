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
from pipespec.engine.export.remote_run import DVC, check_remote, script
from pipespec.engine.pipeline import Stage

DAGS_DIR = "dags"
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
    """With ``share``: restore the upstream stages from the remote's run cache, run these,
    push their outputs and run-cache entries (``remote_run``), so a task needs no other
    task's checkout. Without: run them in the shared checkout."""
    own = {s.name for s in stages}
    share = bool(orch.get("share"))
    monitor = [s for s in stages if s.kind.name == MONITOR_KIND]
    built = [s.name for s in stages if s.kind.name != MONITOR_KIND]
    lines = ["set -euo pipefail"]
    if built and share:
        lines = script(built, orch.get("remote")).splitlines()
    elif built:
        lines += [f"{DVC} repro --single-item {shlex.quote(name)}" for name in built]
    pulls = sorted({u for s in monitor for u in s.upstream if u not in own})
    if share and pulls:
        lines.append(f"{DVC} pull{_remote(orch)} {' '.join(pulls)}")
    lines += [f"pipespec stage {shlex.quote(s.name)}" for s in monitor]
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
    image = orch.get("image")
    workdir = str(ctx.group("kubernetes")["workdir"]) if image else ""
    lines = [
        '"""' + header("airflow", comment="").replace("\n ", "\n").strip(),
        "",
        "Each task runs its pipeline stage through DVC "
        + (
            "in a pod of its own (KubernetesPodOperator)."
            if image
            else "in the project's checkout (PROJECT)."
        ),
        '"""',
        "",
        "from __future__ import annotations",
        "",
        *(() if image else ("import os",)),
        "from datetime import datetime, timedelta, timezone",
        *(() if image else ("from pathlib import Path",)),
        "",
        *(pod_imports(ctx) if image else _BASH_IMPORTS),
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
        lines += [f"    {ids[t.task_id]} = {_operator(t, image, workdir)}", "    )"]
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


_BASH_IMPORTS = (
    "from airflow.providers.standard.operators.bash import BashOperator",
    "from airflow.sdk import DAG",
    "",
    "# the project's checkout: PIPESPEC_PROJECT, or the folder above dags/",
    "PROJECT = os.environ.get('PIPESPEC_PROJECT') or str(Path(__file__).resolve().parents[1])",
)


def pod_imports(ctx: ExportContext) -> tuple[str, ...]:
    """The pod operator's imports and the settings every pod shares (kubernetes group)."""
    k8s = ctx.group("kubernetes")
    res = k8s["resources"]
    pod = {
        "image": str(ctx.group("orchestrator")["image"]),
        "image_pull_policy": str(k8s["image_pull_policy"]),
        "cmds": ["bash", "-c"],
        "service_account_name": str(k8s["service_account"] or "default"),
        "automount_service_account_token": False,
        "get_logs": True,
        "on_finish_action": "delete_pod",
    }
    if k8s.get("namespace"):
        pod["namespace"] = str(k8s["namespace"])
    requests = {"cpu": str(res["cpu_request"]), "memory": str(res["memory_request"])}
    limits = {"cpu": str(res["cpu_limit"]), "memory": str(res["memory_limit"])}
    secrets = [str(s) for s in k8s.get("secrets") or []]
    return (
        "from airflow.providers.cncf.kubernetes.operators.pod import KubernetesPodOperator",
        "from airflow.providers.cncf.kubernetes.secret import Secret",
        "from airflow.sdk import DAG",
        "from kubernetes.client import models as k8s",
        "",
        "# every pod: the image holding the project's checkout (kubernetes.workdir)",
        f"POD = {pod!r}",
        "RESOURCES = k8s.V1ResourceRequirements(",
        f"    requests={requests!r},",
        f"    limits={limits!r},",
        ")",
        f"SECRETS = [Secret('env', None, name) for name in {secrets!r}]",
    )


def _operator(t: Task, image: str | None, workdir: str = "") -> str:
    """The task's operator call, without its closing parenthesis."""
    if not image:
        return "\n".join([
            "BashOperator(",
            f"        task_id={t.task_id!r},",
            f"        bash_command={t.command!r},",
            "        cwd=PROJECT,",
            "        env=ENV,",
            "        append_env=True,",
        ])  # fmt: skip
    return "\n".join([
        "KubernetesPodOperator(",
        f"        task_id={t.task_id!r},",
        f"        name={('pipespec-' + t.task_id.replace('_', '-').lower())!r},",
        f"        arguments=[{f'cd {shlex.quote(workdir)}' + chr(10) + t.command!r}],",
        "        env_vars=ENV,",
        "        container_resources=RESOURCES,",
        "        secrets=SECRETS,",
        "        **POD,",
    ])  # fmt: skip


def export(ctx: ExportContext) -> dict[str, str]:
    orch = ctx.group("orchestrator")
    if orch.get("share"):
        check_remote(ctx.project, orch.get("remote"), "orchestrator.remote")
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
