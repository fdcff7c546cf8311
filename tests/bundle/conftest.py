"""Fixtures for the production tests: the trained project's bundle and real `pipespec serve`
processes on 127.0.0.1 (port 0: the OS picks a free one, the server prints it)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from bundle_helpers import Server, start_server


@pytest.fixture(scope="session")
def bundle_dir(trained_project: Path) -> Path:
    """The bundle the session's trained project packaged (read it, do not change it)."""
    path = trained_project / "models" / "bundle"
    assert (path / "manifest.json").is_file(), "the package stage wrote no bundle"
    return path


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[Callable[..., Server]]:
    """Factory: a running server for a bundle, stopped after the test."""
    servers: list[Server] = []

    def make(bundle: Path, *args: str) -> Server:
        server = start_server(bundle, tmp_path, *args)
        servers.append(server)
        return server

    yield make
    for server in servers:
        server.stop()


@pytest.fixture(scope="module")
def bundle_server(bundle_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """One server on the trained project's bundle for a whole test module."""
    server = start_server(bundle_dir, tmp_path_factory.mktemp("serve"))
    yield server
    server.stop()
