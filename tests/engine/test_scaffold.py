"""``pipespec init``'s DVC settings (engine/scaffold.py)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from pipespec.engine import dvc_repo, scaffold


def test_init_turns_dvc_s_usage_report_off(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """DVC starts a detached `dvc daemon analytics` process after each command, so after every
    `pipespec run`: off in the repository's own config, where DVC itself reads it."""
    from dvc import analytics

    root = tmp_path / "proj"
    scaffold.init(root)
    config = (root / ".dvc" / "config").read_text(encoding="utf-8")
    assert "[core]\n    analytics = false\n" in config
    assert f'type = "{dvc_repo.CACHE_TYPES}"' in config
    monkeypatch.delenv("DVC_NO_ANALYTICS", raising=False)
    monkeypatch.delenv("DVC_TEST", raising=False)
    monkeypatch.chdir(root)
    assert analytics.is_enabled() is False


def test_an_existing_dvc_repository_keeps_its_own_settings(tmp_path: Path) -> None:
    root = tmp_path / "proj"
    root.mkdir()
    subprocess.run(["git", "init", "-q"], cwd=root, check=True)
    dvc_repo.init(root)
    before = (root / ".dvc" / "config").read_text(encoding="utf-8")
    scaffold.init(root)
    after = (root / ".dvc" / "config").read_text(encoding="utf-8")
    assert "analytics" not in after, after
    assert "[cache]" not in after, after
    assert after.startswith(before)
