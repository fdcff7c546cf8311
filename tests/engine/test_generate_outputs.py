"""Recompiling dvc.yaml for another task removes the plot files that no longer apply."""

from __future__ import annotations

from helpers import copy_template_project
from pipespec.engine.generate import generate, write
from pipespec.engine.project import Project

BINARY_PLOTS = ("roc.csv", "precision_recall.csv", "calibration.csv", "confusion.csv")


def test_switching_to_regression_removes_the_binary_plots(tmp_path):
    project = Project(copy_template_project(tmp_path / "p"))
    write(project, generate(project))
    plots = project.root / "plots" / "evaluate"
    plots.mkdir(parents=True)
    for name in BINARY_PLOTS:
        (plots / name).write_text("x\n", encoding="utf-8")
    outside = tmp_path / "roc.csv"
    outside.write_text("mine\n", encoding="utf-8")
    (project.root / "plots" / "train").mkdir()
    importance = project.root / "plots" / "train" / "importance.csv"
    importance.write_text("x\n", encoding="utf-8")

    write(project, generate(project, ("dataset.task=binary",)))  # dvc.yaml unchanged
    assert all((plots / name).exists() for name in BINARY_PLOTS)

    changed = write(project, generate(project, ("dataset.task=regression",)))
    assert "dvc.yaml" in changed
    assert not any((plots / name).exists() for name in BINARY_PLOTS)
    assert importance.exists()
    assert outside.exists()
    assert "residuals" in (project.root / "dvc.yaml").read_text(encoding="utf-8")
