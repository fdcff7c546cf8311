"""stages/kinds.py: a kind's declarations, read from its module's source."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from pipespec.stages.kinds import get_kind


def test_a_kind_module_edited_is_read_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    module = tmp_path / "my_kinds.py"
    module.write_text('READS = ("a",)\n\n\ndef run(ctx):\n    """Mine."""\n')
    monkeypatch.syspath_prepend(str(tmp_path))
    first = get_kind("my_kinds:run")
    assert first.reads == ("a",)
    assert first.description == "Mine."
    assert get_kind("my_kinds:run") == first  # read once, the same declarations
    module.write_text('READS = ("a", "b")\n\n\ndef run(ctx):\n    """Mine, edited."""\n')
    edited = get_kind("my_kinds:run")
    assert edited.reads == ("a", "b")
    assert edited.description == "Mine, edited."
    sys.modules.pop("my_kinds", None)


def test_the_builtin_kinds_are_read_without_importing_them() -> None:
    """What the warm runner calls once: every built-in kind, no stage module imported."""
    code = (
        "import sys; from pipespec.stages.kinds import BUILTIN, builtin_kinds; "
        "kinds = builtin_kinds(); "
        "print([k.name for k in kinds] == list(BUILTIN), "
        "sorted(m for m in sys.modules if m.startswith('pipespec.stages.') "
        "and m != 'pipespec.stages.kinds'))"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert proc.stdout.split(" ", 1) == ["True", "[]\n"]
    train = get_kind("train")
    assert train.inputs == ("train",)
