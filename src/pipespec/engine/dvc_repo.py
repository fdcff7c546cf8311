"""The one place pipespec talks to DVC.

Every other module calls the functions here; none imports ``dvc`` or starts a ``dvc`` process
(the import-linter contract "Only engine.dvc_repo imports DVC" and
``tests/engine/test_dvc_repo.py`` check it). Each
operation has one way of reaching DVC, picked for what it needs:

- in-process, through DVC's Python API (``dvc.repo.Repo``) or its command-line entry point:
  ``repro``, ``status``, ``diff``, ``init``, ``set_config``, ``open_remote`` (and its
  ``download``). No interpreter start-up (about 0.3-0.6 s each), and DVC's errors arrive as
  exceptions, turned here into ``ReproError``.
- in a subprocess: the experiment commands (``exp run --queue``, ``exp run --run-all``,
  ``queue start``, ``queue logs``, ``exp show``, ``exp remove``, ``exp apply``). DVC's queue
  runs experiments in celery workers that are separate processes and outlive the command that
  starts them; the run-all command must be a process of its own that pipespec can watch and
  stop (``engine/dvcqueue.py``), and the commands that read or change the queue's state share
  it with those workers through files and a broker, so they run as the workers do, as ``dvc``
  commands of this environment. ``exp show --json`` is DVC's documented machine-readable
  form; the Python objects behind it are not a public API.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipespec.core.errors import ReproError
from pipespec.engine.project import STATE_DIR, Project, tool_path
from pipespec.stages.parquet import HASHES_ENV

LOCK_FILE = "dvc.lock"
DVC_DIR = ".dvc"

# DVC's cache link types, best first (`dvc config cache.type`). A reflink is a copy-on-write
# clone: no second copy of the bytes, and an edit of the output never reaches the cache. Where
# the filesystem has none (ext4), DVC copies. Hard links and symlinks are left out on purpose:
# DVC makes the cache file read-only, but root (CI containers), or an editor's forced write
# (`:w!`), writes through the link into the cache and corrupts it
# (tests/engine/test_dvc_repo.py shows it). Set in the repository, so a user's global
# `cache.type` cannot weaken a project.
CACHE_TYPES = "reflink,copy"


@contextlib.contextmanager
def _in_project(root: Path, *, tools: bool = False) -> Iterator[None]:
    """The working directory at ``root`` (DVC resolves paths from it) for the duration; with
    ``tools``, this environment's scripts first on PATH (stage commands run ``pipespec``)."""
    cwd, path = os.getcwd(), os.environ.get("PATH")
    os.chdir(root)
    if tools:
        os.environ["PATH"] = tool_path(path)
    try:
        yield
    finally:
        os.chdir(cwd)
        if tools:
            if path is None:
                del os.environ["PATH"]
            else:
                os.environ["PATH"] = path


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """DVC's info messages off for the duration (its warnings and errors stay)."""
    import logging

    logger = logging.getLogger("dvc")
    level = logger.level
    logger.setLevel(logging.WARNING)
    try:
        yield
    finally:
        logger.setLevel(level)


def repro(
    project: Project,
    *,
    force: bool = False,
    args: Sequence[str] = (),
    hand_over: HandOver | None = None,
) -> int:
    """``dvc repro`` in this process, with DVC's own terminal output; the exit code.

    In-process through DVC's command-line entry point (not ``Repo.reproduce``) so that the
    user sees exactly what plain ``dvc repro`` prints and any ``dvc repro`` option passes
    through; it saves the interpreter start-up of a subprocess. ``hand_over`` is offered each
    stage command before DVC starts it (``_commands``); the hooks below change how much work
    DVC does, never what it writes."""
    from dvc.cli import main as dvc_main

    argv = ["repro", *(["--force"] if force else []), *args]
    repos: list[Any] = []  # the repositories DVC opens (``_tested_links`` sees them)
    with (
        _in_project(project.root, tools=True),
        _parse_once(),
        _commands(hand_over, repos),
        _tested_links(repos),
    ):
        return int(dvc_main(argv) or 0)


HandOver = Callable[[str, Mapping[str, str], str], "int | None"]
"""(command, its environment, its folder) -> its exit code, or None to let DVC start it."""

# DVC's function that starts one command of a stage, and its error for a failed one
# (`_commands` wraps the first; a DVC release that moves them makes it a no-op).
COMMAND_HOOK = ("dvc.stage.run", ("_run", "StageCmdFailedError"))


@contextlib.contextmanager
def _commands(hand_over: HandOver | None, repos: Sequence[Any] = ()) -> Iterator[None]:
    """Each command DVC would start for a stage goes to ``hand_over`` first (``pipespec run``
    hands its own stage commands to the warm runner: no shell and no ``pipespec`` process
    per stage). DVC has already printed the command and keeps everything else: its
    environment for the command, the stage's folder, the exit code (a non-zero one is DVC's
    own ``StageCmdFailedError``), the lock and the run cache. A command ``hand_over`` leaves
    (None) is started by DVC as always.

    A handed-over stage also lists the MD5 of each table it wrote (``parquet.HASHES_ENV``:
    hashed on a thread as the bytes went out); DVC's state (of the first repository in
    ``repos``) learns those whose file is still the one hashed, so DVC does not read them
    again to save the stage's outputs."""
    found = _dvc_names(*COMMAND_HOOK)
    if hand_over is None or found is None:
        yield
        return
    module, (start, failed) = found
    offer = hand_over

    def run(executable: Any, cmd: str, **kwargs: Any) -> None:
        env = dict(os.environ if kwargs.get("env") is None else kwargs["env"])
        os.makedirs(STATE_DIR, exist_ok=True)
        fd, listing = tempfile.mkstemp(prefix="tables-", suffix=".json", dir=STATE_DIR)
        os.close(fd)
        try:
            env[HASHES_ENV] = os.path.abspath(listing)
            code = offer(cmd, env, str(kwargs.get("cwd") or "."))
            if code == 0 and repos:
                _known_hashes(repos[0], Path(listing))
        finally:
            Path(listing).unlink(missing_ok=True)
        if code is None:
            start(executable, cmd, **kwargs)
        elif code != 0:
            raise failed(cmd, code)

    with _replaced(module, {COMMAND_HOOK[1][0]: run}):
        yield


MD5 = re.compile(r"[0-9a-f]{32}")


def _known_hashes(repo: Any, listing: Path) -> None:
    """DVC's state of ``repo`` learns the MD5 of each table in ``listing`` (written by a
    stage: path -> md5, size, inode, mtime_ns) whose file is still the one hashed."""
    try:
        written = json.loads(listing.read_text(encoding="utf-8") or "{}")
    except (OSError, ValueError):
        return
    if not isinstance(written, dict) or not getattr(repo, "state", None):
        return
    from dvc_data.hashfile.hash_info import HashInfo

    root = os.path.abspath(repo.root_dir)
    items = []
    for path, entry in written.items():
        if not isinstance(path, str) or os.path.commonpath([root, os.path.abspath(path)]) != root:
            continue  # only the project's own files
        try:
            stat = os.stat(path)
            same = (stat.st_size, stat.st_ino, stat.st_mtime_ns) == (
                entry["size"], entry["inode"], entry["mtime_ns"]
            )  # fmt: skip
        except (OSError, KeyError, TypeError):
            continue
        if same and MD5.fullmatch(str(entry.get("md5"))):  # it names a cache file
            items.append((path, HashInfo("md5", str(entry["md5"])), None))
    if items:
        repo.state.save_many(items, repo.fs)


# DVC's function that opens a cache of the repository (`_tested_links` wraps it).
CACHE_HOOK = ("dvc.cachemgr", ("_get_odb",))


@contextlib.contextmanager
def _tested_links(repos: list[Any] | None = None) -> Iterator[None]:
    """Each cache DVC opens for the duration keeps only the link types that work between it
    and the workspace, as DVC's own ``test_links`` finds them.

    After saving an output to the cache, DVC links it back into the workspace unless the
    first configured type is ``copy``. With ``reflink,copy`` (``CACHE_TYPES``) on a
    filesystem without reflinks (ext4), that is a second full copy of every output: 1.1 GB
    in a run on a million rows. Narrowed to ``copy`` there, the file the stage wrote stays
    where it is. Where reflinks work, nothing changes. Outputs, cache and lock get the same
    bytes (tests/engine/test_dvc_repo.py). Each local repository it sees is added to
    ``repos``."""
    found = _dvc_names(*CACHE_HOOK)
    if found is None:
        yield
        return
    module, (get_odb,) = found

    def tested(repo: Any, *args: Any, **kwargs: Any) -> Any:
        odb = get_odb(repo, *args, **kwargs)
        local = odb is not None and odb.fs.protocol == repo.fs.protocol == "local"
        if local and repos is not None and repo not in repos:
            repos.append(repo)
        if local and len(odb.cache_types) > 1 and repo.tmp_dir:
            from dvc_objects.fs.generic import test_links

            here = repo.fs.join(repo.tmp_dir, "links")  # its probe file goes to .dvc/tmp
            works = test_links(list(odb.cache_types), odb.fs, odb.path, repo.fs, here)
            if works:
                odb.cache_types = works
        return odb

    with _replaced(module, {CACHE_HOOK[1][0]: tested}):
        yield


# DVC's YAML functions that `_parse_once` wraps: (module, name). A DVC release that moves them
# makes `_parse_once` a no-op (correct, only slower); tests/engine/test_dvc_repo.py fails then.
YAML_HOOKS = ("dvc.utils.serialize._yaml", ("parse_yaml", "_dump"))


@contextlib.contextmanager
def _parse_once() -> Iterator[None]:
    """Each YAML text DVC reads is parsed once for the duration, and what it writes is known.

    In a ``dvc repro`` DVC parses ``params.yaml`` for every stage's params dependency and its
    run-cache entry (about 3 times a stage), and after each stage it re-reads ``dvc.lock``
    with ruamel.yaml's round-trip parser (pure Python, about 0.1 s for a 10-stage lock) only
    to add the stage's entry and write it all back. With this hook:

    - each distinct text is parsed once, and each caller gets a deep copy, as a fresh parse
      would give it;
    - the text DVC has just written to ``dvc.lock`` maps to the document it dumped
      (``modify_yaml`` dumps on leaving and keeps nothing), handed to the next round-trip
      read of that text, once: the next stage's update of ``dvc.lock`` parses nothing;
    - ``LockText`` dumps only the lock entries that changed.

    DVC's own dumper writes every byte: ``dvc.lock`` is the same as plain ``dvc repro``
    writes (tests/engine/test_dvc_repo.py and tests/engine/test_run_e2e.py compare them)."""
    import copy

    found = _dvc_names(*YAML_HOOKS)
    if found is None:
        yield
        return
    module, (parse, dump) = found
    parsed: dict[tuple[str, str], Any] = {}  # (typ, text) -> its parse, copied for each caller
    written: dict[str, Any] = {}  # dvc.lock's text -> the document dumped, handed over once
    lock = LockText(dump)

    def parse_once(text: str, path: Any, typ: str = "safe") -> Any:
        if typ == "rt" and text in written:
            return written.pop(text)
        key = (typ, text)
        if key not in parsed:
            parsed[key] = parse(text, path, typ)
        return copy.deepcopy(parsed[key])

    def dump_known(data: Any, stream: Any) -> None:
        if Path(getattr(stream, "name", "")).name != LOCK_FILE:
            dump(data, stream)
            return
        text = lock.text(data)
        stream.write(text)
        written[text] = data  # DVC is done with it: `modify_yaml` dumps on leaving

    with _replaced(module, dict(zip(YAML_HOOKS[1], (parse_once, dump_known), strict=True))):
        yield


def _dvc_names(module_name: str, names: Sequence[str]) -> tuple[Any, list[Any]] | None:
    """DVC's module and the functions or classes named in it that a hook wraps; None when a
    DVC release moved them (the hook then does nothing: correct, only slower)."""
    import importlib

    try:
        module = importlib.import_module(module_name)
        return module, [getattr(module, name) for name in names]
    except (ImportError, AttributeError):
        return None


@contextlib.contextmanager
def _replaced(module: Any, replacements: Mapping[str, Any]) -> Iterator[None]:
    """``module``'s attributes replaced for the duration, then put back."""
    originals = {name: getattr(module, name) for name in replacements}
    for name, value in replacements.items():
        setattr(module, name, value)
    try:
        yield
    finally:
        for name, value in originals.items():
            setattr(module, name, value)


def status(project: Project) -> dict[str, Any]:
    """``dvc status`` as data: stage name -> its changes (empty when up to date)."""
    from dvc.exceptions import DvcException
    from dvc.repo import Repo

    try:
        with _in_project(project.root), Repo(str(project.root)) as repo:
            return dict(repo.status())
    except DvcException as exc:
        raise ReproError(f"dvc status failed: {exc}") from None


def diff(project: Project, a_rev: str, b_rev: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """``dvc params diff`` and ``dvc metrics diff`` of two revisions (``workspace`` is the
    working tree): ``{"diff": {file: {key: {"old", "new"}}}}`` each."""
    from dvc.exceptions import DvcException
    from dvc.repo import Repo

    try:
        with _in_project(project.root), Repo(str(project.root)) as repo:
            params = repo.params.diff(a_rev=a_rev, b_rev=b_rev, all=False)
            metrics = repo.metrics.diff(a_rev=a_rev, b_rev=b_rev, all=False)
    except DvcException as exc:
        raise ReproError(f"cannot compare {a_rev} and {b_rev}: {exc}") from None
    return dict(params), dict(metrics)


def lock_text(project: Project) -> str:
    """``dvc.lock`` as it is on disk ("" when there is none)."""
    try:
        return (project.root / LOCK_FILE).read_text(encoding="utf-8")
    except OSError:
        return ""


def lock_entries(text: str) -> dict[str, Any]:
    """The stages of a ``dvc.lock`` text ({} when it has none or cannot be read).

    Read as YAML, not through DVC: a run compares the lock before and after, and DVC's loader
    costs a ``Repo``."""
    import yaml

    try:
        data = yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    except ValueError:
        return {}
    stages = (data or {}).get("stages") if isinstance(data, dict) else None
    return dict(stages) if isinstance(stages, dict) else {}


def is_initialized(root: Path) -> bool:
    """Whether ``root`` holds a DVC repository (``.dvc/``)."""
    return (root / DVC_DIR).is_dir()


def init(root: Path) -> None:
    """``dvc init`` in ``root`` (a git repository), in-process."""
    from dvc.exceptions import DvcException
    from dvc.repo import Repo

    try:
        with _quiet():  # as `dvc init -q`: DVC's greeting is not pipespec's output
            Repo.init(str(root)).close()
    except DvcException as exc:
        raise ReproError(f"dvc init failed in {root}: {exc}") from None


def set_config(root: Path, values: Mapping[str, str]) -> None:
    """``dvc config SECTION.KEY VALUE`` for each item, into the repository's ``.dvc/config``
    (DVC validates the values: an unknown key or a bad value is a ``ReproError``)."""
    from dvc.config import ConfigError as DvcConfigError
    from dvc.exceptions import DvcException
    from dvc.repo import Repo

    try:
        with Repo(str(root)) as repo, repo.config.edit("repo") as conf:
            for key, value in values.items():
                section, _, option = key.partition(".")
                conf.setdefault(section, {})[option] = value
    except (DvcException, DvcConfigError) as exc:
        raise ReproError(f"cannot set DVC config in {root}: {exc}") from None


@dataclass
class RemoteRepo:
    """A repository opened by URL or path: its git tags (an scmrepo ``Git``, what
    ``registry.read_registry`` reads) and its DVC-tracked artifacts."""

    git: Any
    _repo: Any

    def download(self, artifact: str, version: str, out: Path) -> None:
        """``dvc artifacts get`` of ``artifact``'s ``version`` into ``out``."""
        from dvc.exceptions import DvcException

        try:
            self._repo.artifacts.download(artifact, version=version, out=str(out))
        except DvcException as exc:
            raise ReproError(_message(exc)) from None


@contextlib.contextmanager
def open_remote(url: str) -> Iterator[RemoteRepo]:
    """The repository at ``url`` (a git URL or a path), cloned by DVC if need be, for the
    duration of the context. DVC's errors in opening it are ``ReproError``s."""
    from dvc.exceptions import DvcException
    from dvc.repo import Repo

    with contextlib.ExitStack() as stack:
        try:
            repo = stack.enter_context(Repo.open(url=url, subrepos=True, uninitialized=True))
        except DvcException as exc:
            raise ReproError(_message(exc)) from None
        yield RemoteRepo(repo.scm, repo)


class LockText:
    """``dvc.lock``'s text as DVC's dumper writes it, one stage entry at a time.

    DVC writes the whole lock after each stage; ruamel.yaml's dumper is pure Python (about
    0.07 s for a 10-stage lock), and all but one entry are the ones it wrote last time. In
    block style an entry's text does not depend on its siblings: the lock is the header,
    ``stages:``, and each entry dumped as ``{"stages": {name: entry}}`` without that first
    line (tests/engine/test_dvc_repo.py compares the two on real locks). An entry's text is
    kept while the entry is the same object with the same content; any other document, or
    entries that share an object (which a whole dump would write as a YAML alias), is dumped
    whole."""

    def __init__(self, dump: Any) -> None:
        self._dump = dump
        self._entries: dict[str, tuple[Any, str, str]] = {}  # name -> (entry, repr, text)

    def text(self, data: Any) -> str:
        stages = data.get("stages") if isinstance(data, Mapping) else None
        if list(data) != ["schema", "stages"] or not isinstance(stages, Mapping) or not stages:
            return self._whole(data)
        if _shares_objects(stages.values()):
            self._entries = {}
            return self._whole(data)
        parts = [self._whole({"schema": data["schema"]}), "stages:\n"]
        entries = {}
        for name, entry in stages.items():
            known, fingerprint = self._entries.get(name), repr(entry)
            if known and known[0] is entry and known[1] == fingerprint:
                text = known[2]
            else:
                text = self._whole({"stages": {name: entry}}).removeprefix("stages:\n")
            entries[name] = (entry, fingerprint, text)
            parts.append(text)
        self._entries = entries
        return "".join(parts)

    def _whole(self, data: Any) -> str:
        import io

        buffer = io.StringIO()
        self._dump(data, buffer)
        return buffer.getvalue()


def _shares_objects(values: Any) -> bool:
    """Whether any dict or list appears twice among ``values`` and what they contain."""
    seen: set[int] = set()
    stack = list(values)
    while stack:
        item = stack.pop()
        if isinstance(item, dict | list):
            if id(item) in seen:
                return True
            seen.add(id(item))
            stack.extend(item.values() if isinstance(item, dict) else item)
    return False


# Experiments and the queue: subprocesses (see the module's docstring).


def run_dvc(
    project: Project, argv: Sequence[str], *, capture: bool = True
) -> subprocess.CompletedProcess[str]:
    """A DVC command of this environment in a subprocess, from the project root, its output
    captured (or discarded with ``capture=False``: a command that leaves workers behind would
    keep captured pipes open)."""
    out = subprocess.PIPE if capture else subprocess.DEVNULL
    return subprocess.run(
        _argv(argv), cwd=project.root, env=_env(), stdout=out, stderr=out, text=True, check=False
    )


def start_run_all(project: Project, jobs: int) -> subprocess.Popen[bytes]:
    """``dvc exp run --run-all --jobs N``, started, not waited for: ``dvcqueue`` watches it."""
    return subprocess.Popen(
        _argv(["exp", "run", "--run-all", "--jobs", str(jobs)]), cwd=project.root, env=_env()
    )


def start_queue(project: Project, jobs: int) -> None:
    """``dvc queue start --jobs N``: start the queue's workers again."""
    run_dvc(project, ["queue", "start", "--jobs", str(jobs)], capture=False)


def queue_experiment(project: Project, name: str) -> subprocess.CompletedProcess[str]:
    """``dvc exp run --queue --no-hydra --name NAME`` of the workspace as it is (pipespec has
    composed params.yaml; DVC's own composition would recompose it without the overrides)."""
    return run_dvc(project, ["exp", "run", "--queue", "--no-hydra", "--name", name])


def remove_experiments(project: Project, names: Sequence[str]) -> None:
    """``dvc exp remove NAMES``."""
    run_dvc(project, ["exp", "remove", *names])


def apply_experiment(project: Project, name: str) -> subprocess.CompletedProcess[str]:
    """``dvc exp apply NAME``: the experiment's files into the workspace."""
    return run_dvc(project, ["exp", "apply", name])


def queue_logs(project: Project, name: str) -> str:
    """``dvc queue logs NAME``: an experiment's output, stdout and stderr together."""
    proc = run_dvc(project, ["queue", "logs", name])
    return proc.stdout + proc.stderr


def show_experiments(project: Project) -> list[dict[str, Any]]:
    """``dvc exp show --json --no-fetch``: the baselines and their experiments."""
    proc = run_dvc(project, ["exp", "show", "--json", "--no-fetch"])
    try:
        rows = json.loads(proc.stdout)
    except ValueError:
        raise ReproError(f"cannot read `dvc exp show --json`: {proc.stderr.strip()}") from None
    return list(rows)


def _message(exc: BaseException) -> str:
    """DVC's message, with the cause it wraps (a missing remote, a git error)."""
    return f"{exc} ({exc.__cause__})" if exc.__cause__ else str(exc)


def _argv(argv: Sequence[str]) -> list[str]:
    """The DVC of this environment, whatever PATH says."""
    return [sys.executable, "-m", "dvc", *argv]


def _env() -> dict[str, str]:
    """DVC starts its workers as plain ``dvc``: with none on PATH, no worker ever starts."""
    return {**os.environ, "PATH": tool_path()}


def committed_remotes(root: Path) -> tuple[list[str], str | None]:
    """The remotes of the repository's committed ``.dvc/config`` and its default remote.

    ``config.local`` and the user's own config are left out: a fresh clone (a CI job, a pod)
    sees only what is committed."""
    from dvc.config import Config

    conf = Config(dvc_dir=str(root / ".dvc"), validate=False).load_one("repo")
    default = (conf.get("core") or {}).get("remote")
    return sorted(conf.get("remote") or {}), str(default) if default else None


def push_run_cache(project: Project, remote: str | None) -> int:
    """Push the run cache's entries and every object they name to ``remote``.

    ``dvc push --run-cache`` pushes the entries and the objects of the outputs ``dvc.lock``
    lists, but not the copies the run cache keeps of ``cache: false`` outputs (metrics,
    plots): a checkout elsewhere then finds the entry and cannot restore the stage. Returns
    the number of objects pushed."""
    from dvc.exceptions import DvcException
    from dvc.repo import Repo

    try:
        with _in_project(project.root), Repo(str(project.root)) as repo:
            used = repo.stage_cache.push(remote)
            pushed = 0
            for odb, objs in repo.stage_cache.get_used_objs(used, remote=remote).items():
                result = repo.cloud.push(objs, remote=remote, odb=odb)
                pushed += len(result.transferred)
                if result.failed:
                    raise ReproError(
                        f"could not push {len(result.failed)} run-cache object(s) to the DVC remote"
                    )
            return pushed
    except DvcException as exc:
        raise ReproError(f"cannot push DVC's run cache: {_message(exc)}") from None
