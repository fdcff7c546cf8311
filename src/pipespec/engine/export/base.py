"""What every exporter receives, and the helpers that keep exported text stable."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

import yaml

from pipespec.core.errors import BundleError, ConfigError
from pipespec.engine.pipeline import Pipeline
from pipespec.engine.project import Project

MANIFEST = "manifest.json"  # the bundle's manifest: its SHA-256 is the bundle's id
PROFILE = "profile.json"  # the bundle's reference profile (prediction bins for drift alerts)


@dataclass(frozen=True)
class ExportContext:
    """The committed composition (``params.yaml``), the pipeline, and the target's options."""

    project: Project
    params: dict[str, Any]
    pipeline: Pipeline
    options: dict[str, Any] = field(default_factory=dict)

    def group(self, name: str) -> dict[str, Any]:
        """A config group's composed values (``ci``, ``orchestrator``, ``deploy``)."""
        value = self.params.get(name)
        if not isinstance(value, dict):
            raise ConfigError(
                f"params.yaml has no '{name}' group",
                hint=f"Add `- {name}: default` to configs/config.yaml's defaults, then "
                "`pipespec compose`.",
            )
        return value

    def bundle_file(self, name: str) -> bytes:
        """A file of the bundle at ``deploy.bundle``; BundleError when there is none yet."""
        bundle = str(self.group("deploy")["bundle"])
        folder = self.project.root / bundle
        root = self.project.root.resolve()
        if not (folder / name).resolve().is_relative_to(root):
            raise ConfigError(
                f"deploy.bundle: {bundle!r} resolves outside the project "
                f"(to {(folder / name).resolve().parent})",
                hint="The bundle copied into the image must lie inside the project.",
            )
        try:
            return (folder / name).read_bytes()
        except (FileNotFoundError, NotADirectoryError):
            raise BundleError(
                f"no bundle at {self.project.rel(folder)}: {name} is missing (deploy.bundle)",
                hint="Run `pipespec run` (or `dvc pull`) first: this export records the bundle.",
            ) from None

    def bundle_sha256(self) -> str:
        """The bundle's id: the SHA-256 of its manifest (what ``bundle.write`` returns)."""
        return hashlib.sha256(self.bundle_file(MANIFEST)).hexdigest()

    def bundle_profile(self) -> dict[str, Any]:
        return dict(json.loads(self.bundle_file(PROFILE)))


class _Dumper(yaml.SafeDumper):
    """Block style, multi-line strings as literal blocks, no aliases: text a person reads."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def _str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _str)


def dump_yaml(document: Any) -> str:
    """Stable YAML: keys in the order given, block style, no line wrapping."""
    return yaml.dump(
        document, Dumper=_Dumper, sort_keys=False, default_flow_style=False, width=1000
    )


def header(target: str, comment: str = "#") -> str:
    """The first lines of every exported file: what wrote it and how to refresh it."""
    return (
        f"{comment} Exported by `pipespec export {target}` from params.yaml and pipelines/.\n"
        f"{comment} Do not edit: change configs/ and re-run it; `pipespec export --check` "
        "finds stale files.\n"
    )
