"""The system libraries the serving environment's compiled code links, as Debian packages.

Read from the environment itself: every ELF shared object of the serving distributions is
opened and its ``DT_NEEDED`` entries read (a small reader of the dynamic section, no
dependency); a library that one of those distributions ships (``numpy.libs/``,
``pyarrow/libarrow.so``) or that the ``python:<v>-slim`` base image holds (glibc, libgcc,
libstdc++, zlib) is left out. What remains (``libgomp.so.1`` for LightGBM) is mapped to the
Debian package that installs it: ``dpkg-query -S`` where this machine is Debian, else
Debian's library-package naming rule (``libgomp.so.1`` -> ``libgomp1``).
"""

from __future__ import annotations

import re
import shutil
import struct
import subprocess
from collections.abc import Iterable
from importlib import metadata
from pathlib import Path

# what the Debian python:<v>-slim image already has (libc6, libgcc-s1, libstdc++6, zlib1g)
BASE = re.compile(
    r"^(ld-linux.*|libc|libm|libdl|libpthread|librt|libutil|libresolv|libgcc_s|libstdc\+\+|"
    r"libz)\.so(\.\d+)*$"
)
DT_NEEDED, DT_STRTAB, PT_DYNAMIC = 1, 5, 2


def needed(path: Path) -> list[str]:
    """The ``DT_NEEDED`` sonames of a 64-bit little-endian ELF file ([] for anything else)."""
    data = path.read_bytes()
    if data[:4] != b"\x7fELF" or data[4] != 2 or data[5] != 1:
        return []
    phoff, phentsize, phnum = (
        struct.unpack_from("<Q", data, 0x20)[0],
        *struct.unpack_from("<HH", data, 0x36),
    )
    loads: list[tuple[int, int, int]] = []  # (vaddr, offset, filesz) of PT_LOAD segments
    dynamic = None
    for i in range(phnum):
        p_type, _flags, offset, vaddr, _paddr, filesz = struct.unpack_from(
            "<IIQQQQ", data, phoff + i * phentsize
        )
        if p_type == 1:
            loads.append((vaddr, offset, filesz))
        elif p_type == PT_DYNAMIC:
            dynamic = (offset, filesz)
    if dynamic is None:
        return []
    entries = [struct.unpack_from("<qQ", data, dynamic[0] + j) for j in range(0, dynamic[1], 16)]
    strtab = next((v for tag, v in entries if tag == DT_STRTAB), None)
    if strtab is None:
        return []
    base = next((off + strtab - va for va, off, size in loads if va <= strtab < va + size), None)
    if base is None:
        return []
    names = []
    for tag, value in entries:
        if tag == 0:
            break
        if tag == DT_NEEDED:
            end = data.index(b"\0", base + value)
            names.append(data[base + value : end].decode())
    return names


def shared_objects(distributions: Iterable[str]) -> list[Path]:
    """The ELF shared objects the distributions installed."""
    out = []
    for name in distributions:
        dist = metadata.distribution(name)
        for file in dist.files or []:
            if re.search(r"\.so(\.\d+)*$", file.name):
                path = Path(str(dist.locate_file(file)))
                if path.is_file():
                    out.append(path)
    return sorted(out)


def missing_libraries(distributions: Iterable[str]) -> list[str]:
    """Sonames the distributions' objects need that neither they nor the base image ship."""
    objects = shared_objects(distributions)
    shipped = {p.name for p in objects}
    wanted = {lib for p in objects for lib in needed(p)}
    return sorted(lib for lib in wanted if lib not in shipped and not BASE.match(lib))


def debian_package(soname: str) -> str:
    """The Debian package that installs ``soname``."""
    if shutil.which("dpkg-query"):
        proc = subprocess.run(["dpkg-query", "-S", f"*/{soname}"], capture_output=True,
                              text=True, check=False)  # fmt: skip
        if proc.returncode == 0 and proc.stdout:
            return proc.stdout.split(":", 1)[0].strip()
    stem, _, version = soname.partition(".so")
    version = version.lstrip(".").split(".")[0]
    name = stem.lower().replace("_", "-")
    return f"{name}-{version}" if name[-1:].isdigit() else f"{name}{version}"


def packages(distributions: Iterable[str]) -> list[str]:
    """The Debian packages to install for the distributions' compiled code, sorted."""
    return sorted({debian_package(lib) for lib in missing_libraries(distributions)})
