"""engine/dvc_repo.py: the one module that talks to DVC, and the cache it sets up."""

from __future__ import annotations

import ast
import importlib
import itertools
import os
import stat
import subprocess
from collections.abc import Mapping
from pathlib import Path

import pytest

from helpers import REPO, clone_trained, read_yaml, run_tool
from pipespec.core.errors import ReproError
from pipespec.engine import dvc_repo
from pipespec.engine.project import Project

PACKAGE = Path(dvc_repo.__file__).resolve().parents[1]


def _starts_dvc(node: ast.AST) -> bool:
    """A list or tuple that is a ``dvc`` command line: ``["dvc", ...]``, ``[.., "-m", "dvc"]``."""
    if not isinstance(node, ast.List | ast.Tuple):
        return False
    items = [e.value if isinstance(e, ast.Constant) else None for e in node.elts]
    return bool(items) and (items[0] == "dvc" or ("-m", "dvc") in itertools.pairwise(items))


def test_only_dvc_repo_starts_dvc_commands() -> None:
    """import-linter checks the imports ("Only engine.dvc_repo imports DVC"); this checks the
    other way of reaching DVC, a ``dvc`` command line in a subprocess."""
    offenders = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if path == Path(dvc_repo.__file__).resolve():
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        offenders += [
            f"{path.relative_to(PACKAGE)}:{n.lineno}" for n in ast.walk(tree) if _starts_dvc(n)
        ]
    assert offenders == []
    # the check itself finds what it looks for
    module = ast.parse(Path(dvc_repo.__file__).read_text(encoding="utf-8"))
    assert any(_starts_dvc(n) for n in ast.walk(module))


def _git_repo(root: Path) -> Path:
    root.mkdir()
    subprocess.run(["git", "init", "-q"], cwd=root, check=True)
    return root


def _cache_file(root: Path, lock_stage: str, out: str, cache: Path | None = None) -> Path:
    lock = read_yaml(root / "dvc.lock")["stages"][lock_stage]
    md5 = next(o["md5"] for o in lock["outs"] if o["path"] == out)
    return (cache or root / ".dvc" / "cache") / "files" / "md5" / md5[:2] / md5[2:]


def _edit_by_hand(path: Path) -> None:
    """What root, or an editor's forced write (`:w!`), does: make it writable, write in place."""
    path.chmod(path.stat().st_mode | stat.S_IWUSR)
    with open(path, "r+b") as fh:
        fh.seek(0, os.SEEK_END)
        fh.write(b"edited by hand\n")


def test_a_hand_edit_writes_through_a_hard_link_into_the_cache(tmp_path: Path) -> None:
    """Why pipespec does not set hard (or sym) links: DVC's read-only cache file does not stop
    a forced write, and the cache then holds bytes that no longer match their hash."""
    root = _git_repo(tmp_path / "linked")
    dvc_repo.init(root)
    dvc_repo.set_config(root, {"cache.type": "hardlink"})
    (root / "dvc.yaml").write_text(
        "stages:\n  make:\n    cmd: python -c \"open('out.txt', 'w').write('made\\n')\"\n"
        "    outs: [out.txt]\n"
    )
    assert dvc_repo.repro(Project(root)) == 0
    cached = _cache_file(root, "make", "out.txt")
    _edit_by_hand(root / "out.txt")
    assert cached.read_bytes() == b"made\nedited by hand\n"  # the cache is corrupted


def test_set_config_refuses_a_value_dvc_does_not_know(tmp_path: Path) -> None:
    root = _git_repo(tmp_path / "proj")
    dvc_repo.init(root)
    with pytest.raises(ReproError, match="cannot set DVC config"):
        dvc_repo.set_config(root, {"cache.type": "teleport"})
    assert "teleport" not in (root / ".dvc" / "config").read_text()


@pytest.mark.slow
def test_a_hand_edit_of_an_output_leaves_the_cache_intact(
    trained_project: Path, tmp_path: Path
) -> None:
    """`pipespec init`'s cache type: an output edited by hand, even by root or with a forced
    write, changes only the workspace; DVC reports it modified, and checkout restores it."""
    config = (trained_project / ".dvc" / "config").read_text()
    assert f'type = "{dvc_repo.CACHE_TYPES}"' in config
    clone = clone_trained(trained_project, tmp_path / "clone")
    model = clone / "models" / "train" / "model.txt"
    cached = _cache_file(
        clone, "train", "models/train/model.txt", trained_project / ".dvc" / "cache"
    )
    before = cached.read_bytes()
    assert model.read_bytes() == before

    _edit_by_hand(model)

    assert cached.read_bytes() == before
    status = dvc_repo.status(Project(clone))
    assert "train" in status, status
    run_tool("dvc", "checkout", "-q", "--force", "models/train/model.txt", cwd=clone)
    assert model.read_bytes() == before
    assert "train" not in dvc_repo.status(Project(clone))


def _whole(data: object) -> str:
    from dvc.utils.serialize._yaml import dumps_yaml

    return str(dumps_yaml(data))


def test_lock_text_writes_the_bytes_of_dvcs_whole_dump() -> None:
    from dvc.utils.serialize._yaml import _dump, parse_yaml_for_update

    text = (REPO / "dvc.lock").read_text(encoding="utf-8")
    doc = parse_yaml_for_update(text, "dvc.lock")
    lock = dvc_repo.LockText(_dump)
    assert lock.text(doc) == text

    # a stage ran: its entry is a new plain dict, with a path long enough to wrap
    entry = dict(doc["stages"]["train"])
    entry["cmd"] = "pipespec stage train " + "--flag " * 30
    doc["stages"]["train"] = entry
    assert lock.text(doc) == _whole(doc) != text
    # an entry changed in place is dumped again, not taken from the last text
    doc["stages"]["load"]["cmd"] = "pipespec stage load --again"
    assert lock.text(doc) == _whole(doc)
    assert "pipespec stage load --again" in lock.text(doc)
    # entries sharing an object: the whole dump's anchor and alias
    doc["stages"]["split"]["deps"] = doc["stages"]["validate"]["outs"]
    shared = lock.text(doc)
    assert shared == _whole(doc)
    assert "&id001" in shared
    # a document of another shape is dumped whole
    assert lock.text({"stages": {}}) == _whole({"stages": {}})


def test_parse_once_parses_each_text_once_and_writes_dvcs_bytes(tmp_path: Path) -> None:
    import importlib

    from dvc.utils.serialize import modify_yaml

    module_name, (parse_name, _) = dvc_repo.YAML_HOOKS
    module = importlib.import_module(module_name)  # a DVC release that moved them fails here
    parse = getattr(module, parse_name)
    calls: list[str] = []

    def counting(text: str, path: object, typ: str = "safe") -> object:
        calls.append(typ)
        return parse(text, path, typ)

    def three_stages(path: Path) -> bytes:
        path.parent.mkdir()
        path.write_bytes((REPO / "dvc.lock").read_bytes())
        for name in ("train", "package", "evaluate"):
            with modify_yaml(str(path)) as data:
                entry = dict(data["stages"][name])
                entry["cmd"] = f"pipespec stage {name} --changed"
                data["stages"].update({name: entry})
        return path.read_bytes()

    plain = three_stages(tmp_path / "plain" / "dvc.lock")
    setattr(module, parse_name, counting)
    try:
        with dvc_repo._parse_once():
            hooked = three_stages(tmp_path / "hooked" / "dvc.lock")
            for _ in range(3):  # params.yaml read for each stage: one parse, a copy each time
                first = module.parse_yaml("a: {b: [1, 2]}\n", "params.yaml")
                first["a"]["b"].append(3)
    finally:
        setattr(module, parse_name, parse)
    assert hooked == plain
    assert b"pipespec stage evaluate --changed" in hooked
    assert calls == ["rt", "safe"]  # the lock once (then DVC's own dumps), params.yaml once
    assert first == {"a": {"b": [1, 2, 3]}}
    assert getattr(module, parse_name) is parse


def test_commands_go_to_the_hand_over_first_and_dvc_keeps_the_rest(tmp_path: Path) -> None:
    """``repro(hand_over=...)``: a command the hand-over runs is DVC's stage all the same
    (its lock entry, its exit code as DVC's failure); one it leaves, DVC starts."""
    root = tmp_path / "repo"
    root.mkdir()
    run_tool("git", "init", "-q", cwd=root)
    dvc_repo.init(root)
    (root / "dvc.yaml").write_text(
        "stages:\n"
        "  mine:\n    cmd: make mine\n    outs: [mine.txt]\n"
        "  theirs:\n    cmd: echo theirs > theirs.txt\n    outs: [theirs.txt]\n"
        "    deps: [mine.txt]\n"
    )
    offered: list[tuple[str, str, str]] = []

    def hand_over(cmd: str, env: Mapping[str, str], cwd: str) -> int | None:
        offered.append((cmd, env.get("DVC_STAGE", ""), cwd))
        if cmd != "make mine":
            return None
        (Path(cwd) / "mine.txt").write_text("mine\n")
        return 0

    project = Project(root)
    assert dvc_repo.repro(project, hand_over=hand_over) == 0
    assert offered == [
        ("make mine", "mine", str(root)),
        ("echo theirs > theirs.txt", "theirs", str(root)),
    ]
    assert (root / "theirs.txt").read_text() == "theirs\n"  # DVC started the one left
    lock = read_yaml(root / "dvc.lock")["stages"]
    assert lock["mine"]["outs"][0]["path"] == "mine.txt"
    assert lock["mine"]["outs"][0]["md5"]

    failed: list[str] = []

    def failing(cmd: str, env: Mapping[str, str], cwd: str) -> int | None:
        failed.append(cmd)
        return 3

    assert dvc_repo.repro(project, force=True, hand_over=failing) != 0
    assert failed == ["make mine"]  # DVC stopped at the failed stage: nothing after it ran
    module = importlib.import_module(dvc_repo.COMMAND_HOOK[0])
    assert getattr(module, dvc_repo.COMMAND_HOOK[1][0]).__module__ == module.__name__


def test_outputs_are_not_copied_back_from_the_cache_where_only_copies_work(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``repro`` narrows the cache's link types to those that work here (``_tested_links``):
    on a filesystem without reflinks, the file a stage wrote stays in place instead of being
    copied back from the cache after saving; the lock, the output and the cache hold the
    bytes plain ``dvc repro`` writes, and DVC's function is put back afterwards."""
    import shutil

    from dvc.cli import main as dvc_main
    from dvc_objects.fs import localfs
    from dvc_objects.fs.generic import test_links

    root = _git_repo(tmp_path / "repo")
    dvc_repo.init(root)
    (root / "dvc.yaml").write_text(
        "stages:\n  make:\n    cmd: python -c \"open('out.txt', 'w').write('made\\n' * 1000)\"\n"
        "    outs: [out.txt]\n"
    )
    reflinks = bool(test_links(["reflink"], localfs, str(root / ".dvc"), localfs, str(root / "x")))
    objects = root / ".dvc" / "cache" / "files" / "md5"
    back: list[str] = []  # cached objects copied into the workspace (not DVC's link probes)
    copyfile = shutil.copyfile

    def watched(src: str, dst: str, **kwargs: object) -> object:
        if Path(src).parent.parent == objects and not Path(dst).is_relative_to(root / ".dvc"):
            back.append(str(Path(dst).parent.relative_to(root)))
        return copyfile(src, dst, **kwargs)

    monkeypatch.setattr(shutil, "copyfile", watched)
    assert dvc_repo.repro(Project(root)) == 0
    ours = (root / "dvc.lock").read_bytes()
    cached = _cache_file(root, "make", "out.txt")
    assert cached.read_bytes() == (root / "out.txt").read_bytes() == b"made\n" * 1000
    assert dvc_repo.status(Project(root)) == {}
    module = importlib.import_module(dvc_repo.CACHE_HOOK[0])
    assert getattr(module, dvc_repo.CACHE_HOOK[1][0]).__module__ == module.__name__
    assert dvc_repo.repro(Project(root), force=True) == 0
    assert back == []  # neither when the object was new to the cache nor when it was there

    with dvc_repo._in_project(root, tools=True):
        assert dvc_main(["repro", "-f"]) == 0  # plain DVC, in this process
    assert back == ([] if reflinks else ["."])  # it copied the output back (or re-linked it)
    assert (root / "dvc.lock").read_bytes() == ours
    assert (root / "out.txt").read_bytes() == cached.read_bytes()
    assert not [p.name for p in (root / ".dvc" / "tmp").iterdir() if "links" in p.name]


def test_dvc_learns_only_listed_hashes_of_the_projects_unchanged_files(tmp_path: Path) -> None:
    """``_known_hashes``: a stage's listing teaches DVC's state the MD5 of a file of the
    project that is still the one hashed (size, inode, mtime); an entry outside the project,
    for a file changed since, or whose MD5 is no 32-digit hex name (it would name a cache
    file), is left out, and a listing that is not JSON teaches nothing."""
    import hashlib
    import json

    from dvc.repo import Repo

    root = _git_repo(tmp_path / "repo")
    dvc_repo.init(root)
    files = {n: root / f"{n}.bin" for n in ("good", "changed", "badmd5")}
    outside = tmp_path / "outside.bin"
    for path in (*files.values(), outside):
        path.write_bytes(path.name.encode() * 100)

    def entry(path: Path, md5: str | None = None) -> dict[str, object]:
        stat = path.stat()
        digest = md5 or hashlib.md5(path.read_bytes()).hexdigest()
        return {"md5": digest, "size": stat.st_size, "inode": stat.st_ino,
                "mtime_ns": stat.st_mtime_ns}  # fmt: skip

    listing = root / "listing.json"
    listing.write_text(
        json.dumps(
            {
                str(files["good"]): entry(files["good"]),
                str(files["changed"]): entry(files["changed"]),
                str(files["badmd5"]): entry(files["badmd5"], md5="../../../../etc/x"),
                str(outside): entry(outside),
            }
        )
    )
    files["changed"].write_bytes(b"other bytes, other size")
    with Repo(str(root)) as repo:
        dvc_repo._known_hashes(repo, listing)
        known = {name: repo.state.get(str(p), repo.fs)[1] for name, p in files.items()}
        known["outside"] = repo.state.get(str(outside), repo.fs)[1]
        assert known["good"] is not None
        assert known["good"].value == hashlib.md5(files["good"].read_bytes()).hexdigest()
        assert {k: v for k, v in known.items() if k != "good"} == dict.fromkeys(
            ("changed", "badmd5", "outside")
        )
        listing.write_text("not json")
        dvc_repo._known_hashes(repo, listing)  # nothing learnt, nothing raised
