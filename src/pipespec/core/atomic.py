"""Atomic writes: a temp file in the target's folder, then ``os.replace``.

An interrupted stage therefore never leaves a half-written artifact that DVC would take as
done, and a failed command never leaves a config file half-rewritten. The temp file is
created as a plain ``open()`` creates a file (mode ``0o666`` less the process umask: 0644
under umask 022), so the renamed file is readable by whoever could read a file the user
wrote by hand (an image's non-root user, a CI runner). A file or folder that cannot be
written (read-only, immutable, a file where a folder must be) is an ``OutputError`` naming
it, and no temp file is left behind.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from pipespec.core.errors import OutputError

_CREATE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)


def shown(path: Path) -> str:
    """``path`` relative to the working directory when it is under it (as users type it)."""
    try:
        return path.resolve().relative_to(Path.cwd().resolve()).as_posix()
    except (ValueError, OSError):
        return str(path)


def _fault(path: Path, exc: OSError, doing: str = "write") -> OutputError:
    reason = exc.strerror or type(exc).__name__
    hint = None
    if isinstance(exc, PermissionError):
        hint = (
            "Make it writable (chmod u+w, or chattr -i if it was made immutable) "
            "and run the command again."
        )
    return OutputError(f"cannot {doing} {shown(path)}: {reason}", hint=hint)


def make_folder(folder: str | os.PathLike[str]) -> None:
    """Create ``folder`` and its parents; OutputError naming the file that stands in the way."""
    folder = Path(folder)
    if folder.is_dir():
        return
    for above in (folder, *folder.parents):
        if above.exists() or above.is_symlink():
            if not above.is_dir():
                raise OutputError(
                    f"cannot create the folder {shown(folder)}: {shown(above)} is a file, "
                    "not a folder",
                    hint=f"Move or remove {shown(above)}, then run the command again.",
                )
            break
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise _fault(folder, exc, "create the folder") from None


def prepare_output(target: str | os.PathLike[str]) -> None:
    """Make ``target``'s folder and remove the temp files a killed writer left beside it."""
    target = Path(target)
    make_folder(target.parent)
    for leftover in target.parent.glob(f".{target.name}.*.tmp"):
        with contextlib.suppress(OSError):
            if leftover.is_dir() and not leftover.is_symlink():
                shutil.rmtree(leftover)
            else:
                leftover.unlink()


def _temp_beside(target: Path) -> Path:
    """A new empty file ``.NAME.XXXXXXXX.tmp`` beside ``target``, made as open() makes one."""
    for _ in range(100):
        tmp = target.parent / f".{target.name}.{secrets.token_hex(4)}.tmp"
        try:
            fd = os.open(tmp, _CREATE, 0o666)
        except FileExistsError:
            continue
        except OSError as exc:
            raise _fault(target, exc) from None
        os.close(fd)
        return tmp
    raise OutputError(f"cannot write {shown(target)}: no free temporary name beside it")


@contextmanager
def atomic_path(target: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path next to ``target``; move it into place only on success."""
    target = Path(target)
    make_folder(target.parent)
    tmp_path = _temp_beside(target)
    try:
        yield tmp_path
        try:
            os.replace(tmp_path, target)
        except OSError as exc:
            raise _fault(target, exc) from None
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp_path.unlink()


def write_text(target: str | os.PathLike[str], text: str) -> None:
    """Write ``text`` (UTF-8, ``\\n`` line ends) to ``target`` atomically."""
    with atomic_path(target) as tmp:
        try:
            tmp.write_text(text, encoding="utf-8", newline="\n")
        except OSError as exc:  # a full disk, a quota
            raise _fault(Path(target), exc) from None


def write_json(target: str | os.PathLike[str], data: Any) -> None:
    """Write ``data`` as stable JSON (sorted keys, 2-space indent, trailing newline)."""
    write_text(target, json.dumps(data, indent=2, sort_keys=True, allow_nan=False) + "\n")


def remove(target: str | os.PathLike[str]) -> None:
    """Delete the file ``target``; OutputError naming it when it cannot be."""
    try:
        Path(target).unlink()
    except FileNotFoundError:
        return
    except OSError as exc:
        raise _fault(Path(target), exc, "remove") from None
