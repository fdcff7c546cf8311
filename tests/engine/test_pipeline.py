"""Pipelines: parsing, checks with messages naming the key and file, and compile order."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from helpers import copy_template_project
from pipespec.core.errors import PipelineError
from pipespec.engine.compile import STAMP, compile_stages, render
from pipespec.engine.compose import compose
from pipespec.engine.pipeline import load_pipeline
from pipespec.engine.project import Project


def _project(tmp_path: Path, pipeline: dict | str | None = None) -> Project:
    root = copy_template_project(tmp_path)
    if pipeline is not None:
        text = pipeline if isinstance(pipeline, str) else yaml.safe_dump(pipeline, sort_keys=False)
        (root / "pipelines" / "train.yaml").write_text(text)
    return Project(root)


def test_template_pipeline_compiles_with_exact_params(tmp_path: Path) -> None:
    project = _project(tmp_path)
    params = compose(project).params
    dvc = yaml.safe_load(render(compile_stages(project, load_pipeline(project), params)))
    stages = dvc["stages"]
    order = ["configs", "load", "validate", "split", "featurize", "train", "package", "evaluate"]
    assert list(stages) == [*order, "behavior", "gate"]
    assert stages["gate"]["params"] == ["evaluation.gates"]
    assert stages["load"]["params"] == [
        "seed",
        "dataset",
        "compute.backend",
        "compute.partition_rows",
    ]
    assert "compute" not in stages["split"]["params"]  # only compute.backend
    assert "model" not in stages["split"]["params"]
    assert "model" in stages["train"]["params"]
    assert "model" not in stages["evaluate"]["params"]
    # evaluate scores the bundle on the raw splits; what it reads of evaluation is only
    # what it shows, so a change of the gates or the threshold never re-trains
    assert stages["evaluate"]["params"] == [
        "evaluation.headline",
        "evaluation.plots_on",
        "compute.backend",
        "compute.num_threads",
    ]
    # where a cluster is, or how much memory it has, is no param: it changes no result
    for name in ("train", "evaluate", "package"):
        assert "compute" not in stages[name]["params"]
        assert "compute.address" not in stages[name]["params"]
    assert stages["evaluate"]["deps"] == [
        "models/bundle",
        "data/split/valid.parquet",
        "data/split/test.parquet",
    ]
    assert stages["load"]["deps"] == [STAMP]  # roots wait for the freshness check
    assert stages["train"]["deps"] == [
        "data/featurize/train.parquet",
        "data/featurize/valid.parquet",
    ]
    assert stages["evaluate"]["metrics"] == [{"metrics/evaluate.json": {"cache": False}}]
    for stage in stages.values():  # fixed key order, no empty keys
        order = ["cmd", "deps", "params", "outs", "metrics", "plots"]
        assert list(stage) == [k for k in order if k in stage]
        assert all(stage[k] for k in stage)


def test_compile_is_byte_stable(tmp_path: Path) -> None:
    project = _project(tmp_path)
    params = compose(project).params
    texts = {render(compile_stages(project, load_pipeline(project), params)) for _ in range(3)}
    assert len(texts) == 1


def test_csv_path_becomes_a_dependency(tmp_path: Path) -> None:
    project = _project(tmp_path)
    params = compose(
        project,
        ("dataset=csv", "dataset.path=data/in.csv", "dataset.target=y", "dataset.task=binary"),
    ).params
    stages = compile_stages(project, load_pipeline(project), params)["stages"]
    assert stages["load"]["deps"] == [STAMP, "data/in.csv"]


@pytest.mark.parametrize(
    ("pipeline", "match"),
    [
        (
            {"stages": {"load": {"kind": "lod"}}},
            r"'stages\.load\.kind' in pipelines/train\.yaml: unknown stage kind 'lod'",
        ),
        (
            {"stages": {"load": {"kind": "load", "input": {}}}},
            r"unknown key 'stages\.load\.input'.*Did you mean 'inputs'",
        ),
        (
            {
                "stages": {
                    "load": {"kind": "load"},
                    "split": {"kind": "split", "inputs": {"data": "laod.data"}},
                }
            },
            r"'stages\.split\.inputs\.data'.*Did you mean 'load\.data'",
        ),
        (
            {
                "stages": {
                    "load": {"kind": "load"},
                    "split": {"kind": "split", "inputs": {"data": "load.table"}},
                }
            },
            r"stage 'load' has no output 'table'",
        ),
        (
            {"stages": {"split": {"kind": "split"}}},
            r"'stages\.split\.inputs'.*needs input\(s\) data",
        ),
        ({"stages": {"configs": {"kind": "load"}}}, r"reserved"),
        ({"stages": {"load": {"inputs": {}}}}, r"missing 'kind'"),
        (
            {"stages": {"load": {"kind": "load", "outputs": {"table": "x.parquet"}}}},
            r"has no output 'table'",
        ),
        (
            {"stages": {"load": {"kind": "pipespec_missing_module:run"}}},
            r"cannot import stage kind",
        ),
        ({"steps": {}}, r"expected a mapping with a 'stages' mapping"),
        ("stages: [unclosed\n", r"cannot parse pipelines/train\.yaml"),
    ],
)
def test_bad_pipelines_name_key_and_file(tmp_path: Path, pipeline: dict | str, match: str) -> None:
    with pytest.raises(PipelineError, match="(?s)" + match):
        load_pipeline(_project(tmp_path, pipeline))


def test_cycle_is_reported(tmp_path: Path) -> None:
    pipeline = {
        "stages": {
            "a": {"kind": "featurize", "inputs": {"train": "b.train"}},
            "b": {"kind": "featurize", "inputs": {"train": "a.train"}},
        }
    }
    with pytest.raises(PipelineError, match=r"cycle: a -> b -> a|cycle: b -> a -> b"):
        load_pipeline(_project(tmp_path, pipeline))


def test_duplicate_stage_across_files(tmp_path: Path) -> None:
    project = _project(tmp_path)
    (project.pipelines / "more.yaml").write_text("stages:\n  load:\n    kind: load\n")
    with pytest.raises(
        PipelineError,
        match=r"'stages\.load' in pipelines/train\.yaml: stage 'load' is already declared "
        r"in pipelines/more\.yaml",
    ):
        load_pipeline(project)


@settings(max_examples=25, deadline=None)
@given(st.data())
def test_compiled_order_respects_dependencies(
    tmp_path_factory: pytest.TempPathFactory, data: st.DataObject
) -> None:
    """Random DAGs of featurize stages, declared in a random order: every stage comes after
    the stages it takes inputs from."""
    n = data.draw(st.integers(2, 8))
    edges = {
        i: data.draw(st.sets(st.integers(0, i - 1), max_size=3)) if i else set() for i in range(n)
    }
    order = data.draw(st.permutations(list(range(n))))
    stages = {}
    for i in order:
        inputs = {"train": "load.data"} if not edges[i] else {}
        for j, up in enumerate(sorted(edges[i])):
            inputs["train" if j == 0 else f"extra{j}"] = f"s{up}.train"
        stages[f"s{i}"] = {"kind": "featurize", "inputs": inputs}
    pipeline = {"stages": {"load": {"kind": "load"}, **stages}}
    project = _project(tmp_path_factory.mktemp("dag"), pipeline)
    names = [s.name for s in load_pipeline(project).stages]
    for i in range(n):
        for up in edges[i]:
            assert names.index(f"s{up}") < names.index(f"s{i}")
    assert names.index("load") == 0


def _user_kind(project: Project, module: str, declarations: str) -> None:
    (project.root / f"{module}.py").write_text(
        f'{declarations}\n\ndef run(ctx):\n    """A user\'s stage."""\n'
    )


def test_user_kind_declares_plots_as_builtins_do(tmp_path: Path) -> None:
    """A user's module declares plot properties and per-task outputs the way the built-in
    modules do; the compiled stage carries them, and an output of another task is left out."""
    project = _project(tmp_path)
    _user_kind(
        project,
        "kinds_plots_user",
        'READS = ("seed",)\nINPUTS = ("data",)\nOUTPUTS = {\n'
        '    "curve": ("plots/{stage}/curve.csv", "plots",\n'
        '              {"title": "Curve", "x": "a", "y": "b", "template": "linear",\n'
        '               "tasks": ["binary"]}),\n'
        '    "spread": ("plots/{stage}/spread.csv", "plots", {"tasks": ["regression"]}),\n'
        "}\n",
    )
    with (project.pipelines / "train.yaml").open("a") as fh:
        fh.write("  curves:\n    kind: kinds_plots_user:run\n    inputs:\n      data: load.data\n")
    params = compose(project).params
    assert params["dataset"]["task"] == "binary"
    stage = compile_stages(project, load_pipeline(project, params), params)["stages"]["curves"]
    assert stage["plots"] == [
        {
            "plots/curves/curve.csv": {
                "cache": False,
                "template": "linear",
                "x": "a",
                "y": "b",
                "title": "Curve",
            }
        }
    ]
    assert stage["params"] == ["seed"]
    assert "kinds_plots_user.py" in stage["deps"]


@pytest.mark.parametrize(
    ("declarations", "match"),
    [
        ('OUTPUTS = {"x": ("x.csv", "plot")}', r"output 'x' has an unknown type"),
        ('OUTPUTS = {"x": "x.csv"}', r"OUTPUTS must map each output name to \(path, type\)"),
        ('OUTPUTS = {"x": ("x.csv", "plots", {"colour": "red"})}', r"options take only tasks"),
        ('READS = "seed"', r"READS must be a sequence of strings"),
        ("INPUTS = 3", r"INPUTS must be a sequence of strings"),
        (
            'INPUTS = ("data",)\nOUTPUTS = {"x": ("x.pq", "out", {"passes": "table", '
            '"unless": "seed"})}',
            r"output 'x': 'passes' names one of its INPUTS \(data\) and 'unless' a params key",
        ),
        (
            'INPUTS = ("data",)\nOUTPUTS = {"x": ("x.pq", "out", {"passes": "data"})}',
            r"'unless' a params key, both or neither",
        ),
    ],
)
def test_bad_user_declarations_are_named(tmp_path: Path, declarations: str, match: str) -> None:
    project = _project(tmp_path)
    module = "kinds_" + tmp_path.name.replace("-", "_")  # one module per case
    _user_kind(project, module, declarations)
    with (project.pipelines / "train.yaml").open("a") as fh:
        fh.write(f"  mine:\n    kind: {module}:run\n")
    with pytest.raises(
        PipelineError, match=rf"'stages\.mine\.kind' in pipelines/train\.yaml: .*{match}"
    ):
        load_pipeline(project)


def test_builtin_declarations_are_read_without_running_the_modules() -> None:
    """Reading every built-in kind's declarations (what compiling dvc.yaml does) runs none
    of the stage modules, so it imports neither LightGBM nor pandas, scikit-learn or pyarrow;
    and no built-in module is a dependency of its stages."""
    import subprocess
    import sys

    code = (
        "import sys\n"
        "from pipespec.stages.kinds import BUILTIN, get_kind\n"
        "kinds = [get_kind(k) for k in BUILTIN]\n"
        "assert all(k.outputs and k.module_file is None for k in kinds), kinds\n"
        "heavy = {'lightgbm', 'pandas', 'sklearn', 'pyarrow', 'numpy'}\n"
        "print(sorted(m for m in sys.modules if m in heavy or m.startswith('pipespec.stages.')))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert proc.stdout.strip() == "['pipespec.stages.kinds']"


def test_literal_declarations_are_data_computed_ones_are_imported(tmp_path: Path) -> None:
    """A user's module whose declarations are literals is not run to compile dvc.yaml (it
    would leave a marker file); one that computes a declaration is imported for it."""
    project = _project(tmp_path)
    marker = tmp_path / "imported.txt"
    body = f"from pathlib import Path\nPath({str(marker)!r}).write_text('ran')\n"
    _user_kind(project, "kinds_literal_user", 'READS = ("seed",)\nINPUTS = ("data",)\n' + body)
    _user_kind(project, "kinds_computed_user", 'READS = tuple(["seed", "split"])\n')
    branch = 'import os\nif os.sep == "/":\n    READS = ("split",)\nelse:\n    READS = ("seed",)\n'
    _user_kind(project, "kinds_branch_user", branch)
    with (project.pipelines / "train.yaml").open("a") as fh:
        fh.write("  lit:\n    kind: kinds_literal_user:run\n    inputs:\n      data: load.data\n")
        fh.write("  comp:\n    kind: kinds_computed_user:run\n")
        fh.write("  branch:\n    kind: kinds_branch_user:run\n")
    pipeline = load_pipeline(project)
    assert pipeline.get("lit").kind.reads == ("seed",)
    assert pipeline.get("lit").kind.description == "A user's stage."
    assert not marker.exists()
    assert pipeline.get("comp").kind.reads == ("seed", "split")
    assert pipeline.get("branch").kind.reads == ("split",)  # bound in an `if`: imported


def test_a_table_passed_on_unchanged_is_read_where_it_is(tmp_path: Path) -> None:
    """Without a schema file validate passes its table on as read: split takes load's file
    itself, runs after validate's report, and validate writes no copy for DVC to hash and
    cache (a stale one is removed); with a schema file the validated table is validate's."""
    from pipespec.engine.generate import remove_unused_outputs

    project = _project(tmp_path)
    params = compose(project).params
    assert params["schema"]["path"] is None
    pipeline = load_pipeline(project, params)
    validate, split = pipeline.get("validate"), pipeline.get("split")
    assert "data" not in validate.outputs
    assert split.inputs == {"data": "data/load/data.parquet"}
    assert split.after == ("data/validate/report.json",)
    assert split.upstream == ("validate", "load")
    stages = compile_stages(project, pipeline, params)["stages"]
    assert stages["split"]["deps"] == ["data/load/data.parquet", "data/validate/report.json"]
    assert stages["validate"]["outs"] == [
        "data/validate/report.json",
        "data/validate/quarantine.parquet",
    ]
    stale = project.root / "data" / "validate" / "data.parquet"
    stale.parent.mkdir(parents=True)
    stale.write_bytes(b"PAR1")
    assert remove_unused_outputs(project, pipeline) == ["data/validate/data.parquet"]
    assert not stale.exists()

    params["schema"]["path"] = "schemas/adult.yaml"
    pipeline = load_pipeline(project, params)
    assert pipeline.get("validate").outputs["data"] == "data/validate/data.parquet"
    assert pipeline.get("split").inputs == {"data": "data/validate/data.parquet"}
    assert pipeline.get("split").after == ()
    stale.write_bytes(b"PAR1")
    assert remove_unused_outputs(project, pipeline) == []
    assert stale.exists()
    # without params (the declarations alone) every output is listed
    assert "data" in load_pipeline(project).get("validate").outputs


def test_a_stage_passing_its_only_output_on_still_writes_it(tmp_path: Path) -> None:
    """A kind whose one output passes on has nothing else a taker could run after: the
    output stays a file of its own. Passed-on outputs chain: a taker of a taker reads the
    first input."""
    project = _project(tmp_path)
    _user_kind(
        project,
        "kinds_pass_user",
        'INPUTS = ("data",)\nOUTPUTS = {"same": ("data/{stage}/same.parquet", "out", '
        '{"passes": "data", "unless": "schema.path"})}\n',
    )
    _user_kind(
        project,
        "kinds_pass_report_user",
        'INPUTS = ("data",)\nOUTPUTS = {"same": ("data/{stage}/same.parquet", "out", '
        '{"passes": "data", "unless": "schema.path"}), "note": ("data/{stage}/note.json", '
        '"out")}\n',
    )
    with (project.pipelines / "train.yaml").open("a") as fh:
        fh.write("  only:\n    kind: kinds_pass_user:run\n    inputs:\n      data: load.data\n")
        fh.write(
            "  again:\n    kind: kinds_pass_report_user:run\n    inputs:\n"
            "      data: validate.data\n"
            "  after:\n    kind: kinds_pass_report_user:run\n    inputs:\n"
            "      data: again.same\n"
        )
    params = compose(project).params
    pipeline = load_pipeline(project, params)
    assert pipeline.get("only").outputs == {"same": "data/only/same.parquet"}
    assert pipeline.get("again").inputs == {"data": "data/load/data.parquet"}
    assert pipeline.get("after").inputs == {"data": "data/load/data.parquet"}
    assert pipeline.get("after").after == ("data/again/note.json",)
    assert pipeline.get("after").upstream == ("again", "load")
