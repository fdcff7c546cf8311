"""The Docker export installs the system libraries the serving environment links: every
shared library that the serving packages' compiled code needs (read here with binutils'
`readelf`, independently of pipespec's own ELF reader) is shipped by those packages, is in
the base image, or belongs to a Debian package the Dockerfile installs."""

from __future__ import annotations

import re
import subprocess

from helpers import tool


def _readelf_needed(path: str) -> list[str]:
    out = subprocess.run([tool("readelf"), "-d", path], capture_output=True, text=True,
                         check=True).stdout  # fmt: skip
    return re.findall(r"\(NEEDED\)\s+Shared library: \[([^\]]+)\]", out)


def test_every_needed_library_is_shipped_or_installed() -> None:
    from pipespec.engine.export import docker, syslibs

    names = [r.split("==", 1)[0] for r in docker.serving_requirements("3.11")]
    objects = syslibs.shared_objects(names)
    assert any(p.name == "lib_lightgbm.so" for p in objects)
    shipped = {p.name for p in objects}
    apt = docker._system_packages("3.11")
    installed = set(re.search(r"--no-install-recommends (.+?) \\", apt).group(1).split())
    assert "libgomp1" in installed  # LightGBM's OpenMP, absent from python:3.11-slim
    for path in objects:
        libs = _readelf_needed(str(path))
        assert syslibs.needed(path) == libs, path
        for lib in libs:
            if lib in shipped or syslibs.BASE.match(lib):
                continue
            owner = subprocess.run([tool("dpkg-query"), "-S", f"*/{lib}"], capture_output=True,
                                   text=True, check=True).stdout.split(":", 1)[0]  # fmt: skip
            assert owner in installed, (path, lib, owner)


def test_debian_names_follow_the_library_package_rule() -> None:
    from pipespec.engine.export.syslibs import debian_package

    assert debian_package("libgomp.so.1") == "libgomp1"
    assert debian_package("libnotinstalled.so.3") == "libnotinstalled3"
    assert debian_package("libfoo2.so.5") == "libfoo2-5"
