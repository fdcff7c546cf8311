"""Bundle references: a directory, or a released version (``NAME@vX.Y.Z``) or a registry
stage (``NAME#STAGE``) of a git repository, fetched through DVC from the project's remote.

This layer resolves and fetches; ``pipespec.bundle`` then loads the fetched directory as it
loads any other (it never imports DVC). The fetched bundle is checked against its manifest
(``Bundle.load``) and against the SHA-256 the release recorded in its tag: a release whose
evidence does not parse or lacks that SHA is refused before anything is downloaded.
"""

from __future__ import annotations

import re
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipespec.core.errors import BundleError, ConfigError, ReproError
from pipespec.engine.registry import Registry, Version, normalize_version, read_registry

SHORTCUT = re.compile(r"^(?P<artifact>[^@#\s]+)(?:@(?P<version>[^@#\s]+)|#(?P<stage>[^@#\s]+))$")


@dataclass(frozen=True)
class Resolved:
    """A bundle directory to load and, for a reference, what it is (for /health, /metadata)."""

    path: Path
    release: dict[str, Any] | None = None


def is_reference(text: str) -> bool:
    """Whether ``text`` is ``NAME@VERSION`` or ``NAME#STAGE`` rather than a directory."""
    return not Path(text).exists() and SHORTCUT.match(text) is not None


@contextmanager
def resolve(ref: str, repo: str | None = None) -> Iterator[Resolved]:
    """The bundle ``ref`` names, fetched into a temporary directory that lives as long as
    the context (a directory is used in place)."""
    if not is_reference(ref):
        if repo:
            raise ConfigError(
                f"--repo needs a reference NAME@vX.Y.Z or NAME#STAGE as --bundle, not '{ref}'"
            )
        yield Resolved(Path(ref))
        return
    match = SHORTCUT.match(ref)
    assert match is not None
    with tempfile.TemporaryDirectory(prefix="pipespec-bundle-") as tmp:
        yield fetch(
            match["artifact"], match["version"], match["stage"], repo or ".", Path(tmp) / "bundle"
        )


def fetch(artifact: str, version: str | None, stage: str | None, repo: str, out: Path) -> Resolved:
    """Download a released version (or the one in ``stage``) of ``artifact`` with DVC."""
    from pipespec.bundle.bundle import Bundle
    from pipespec.engine.dvc_repo import open_remote

    try:
        with open_remote(repo) as remote:
            registry: Registry = read_registry(remote.git)
            chosen: Version = (
                registry.in_stage(artifact, stage)
                if stage
                else registry.version(artifact, normalize_version(version or ""))
            )
            evidence = chosen.checked_evidence()  # before anything is downloaded
            remote.download(artifact, chosen.version, out)
    except (ReproError, OSError) as exc:  # OSError: no storage (remote, cache) holds it
        cause = f" ({exc.__cause__})" if exc.__cause__ else ""
        ref = f"{artifact}#{stage}" if stage else f"{artifact}@{version}"
        raise ReproError(
            f"cannot fetch {ref} from {repo}: {exc}{cause}",
            hint="Is --repo a git repository (URL or path)? Is the bundle pushed to the DVC "
            "remote that the release's commit configures (`dvc push`), and are the tags "
            "pushed (`git push --tags`)?",
        ) from None
    bundle = Bundle.load(out)  # every file against the manifest
    recorded = evidence["bundle"]["sha256"]  # checked_evidence: always present
    if recorded != bundle.sha:
        raise BundleError(
            f"the bundle fetched for {artifact}@{chosen.version} has SHA-256 "
            f"{bundle.sha[:12]}, but the release recorded {recorded[:12]}",
            hint="The remote's copy is not the released one; refusing to serve it.",
        )
    release = {
        "artifact": artifact,
        "version": chosen.version,
        "stage": stage,
        "stages": chosen.stages,
        "commit": chosen.commit,
        "tag": chosen.tag,
        "repo": repo,
        "evidence": chosen.evidence,
    }
    return Resolved(out, release)
