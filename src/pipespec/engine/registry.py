"""The model registry in git: releases and promotions as GTO's tags, read back by anyone.

A release is an annotated tag ``NAME@vX.Y.Z`` on the commit whose bundle it names; a
promotion is an annotated tag ``NAME#STAGE#N`` on the same commit (GTO's stage-assignment
format, ``N`` one more than the artifact's highest counter). ``gto show``, ``gto history`` and
``dvc artifacts get`` read them without pipespec. The release tag's message carries the
evidence (the bundle's SHA-256, the output contract, the gate report, the metrics, the
behaviour counts and report when there is one) as JSON after a marker line, so that it
travels with the tag: the model card is inside the bundle and built before the release, so it
cannot hold the release's own number.

The evidence block is machine-written and always the END of the message: the human text
(``-m``) comes first, and the parser takes the block after the LAST marker, so a message
that holds the marker and JSON of its own can neither forge nor hide the evidence. A block
that does not parse, is not an object, names another commit or lacks the bundle's SHA-256
is an ``EvidenceError`` naming the tag when the version is used (promote, fetch, serve), never
an empty evidence.

Every refusal raises a ``RegistryError`` subclass before any tag is written.
"""

from __future__ import annotations

import json
import re
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from pipespec.core.errors import (
    ConfigError,
    ContractChangeError,
    DirtyWorkspaceError,
    EvidenceError,
    GateFailedError,
    OutdatedOutputsError,
    PromotionError,
    RegistryError,
    ReproError,
    UnknownVersionError,
)
from pipespec.engine.compile import CHECK_STAGE, STAMP
from pipespec.engine.project import Project

EVIDENCE_MARKER = "pipespec evidence (JSON):"
BEHAVIOR_REPORT = "metrics/behavior.json"
BUMPS = ("major", "minor", "patch")
_NAME = r"[a-zA-Z0-9](?:[a-zA-Z0-9-/_]*[a-zA-Z0-9])?"
_SEMVER = r"\d+\.\d+\.\d+(?:-[0-9A-Za-z.-]+)?(?:\+[0-9A-Za-z.-]+)?"
# GTO's tag grammar (gto/constants.py, tag_re), for the actions pipespec reads.
TAG = re.compile(
    rf"^(?P<artifact>{_NAME})(?:@(?P<version>v{_SEMVER})|#(?P<stage>{_NAME}))"
    rf"(?P<cancel>!?)(?:#(?P<counter>\d+))?$"
)
VERSION = re.compile(rf"^v?(?P<semver>{_SEMVER})$")


@dataclass
class Version:
    """One released version of an artifact and the stages it holds now."""

    artifact: str
    version: str  # "v1.2.3"
    commit: str
    tag: str
    created: int  # tagger time, seconds since the epoch
    author: str
    message: str
    evidence: dict[str, Any]  # {} when the tag has no evidence block (not made by pipespec)
    stages: list[str] = field(default_factory=list)
    deregistered: bool = False
    evidence_error: str | None = None  # why the evidence is unusable, naming the tag

    def checked_evidence(self) -> dict[str, Any]:
        """The evidence, or an EvidenceError naming the tag when it does not parse or lacks
        the bundle's SHA-256: nothing is promoted, fetched or served on such a release."""
        if self.evidence_error:
            raise EvidenceError(self.evidence_error)
        if not self.evidence:
            raise EvidenceError(
                f"release tag {self.tag} carries no pipespec evidence (no bundle SHA-256)",
                hint="Release the bundle with `pipespec release`, which records it.",
            )
        return self.evidence

    @property
    def contract(self) -> dict[str, Any] | None:
        """The recorded output contract (task, classes, outputs, inputs), if any."""
        found = self.evidence.get("contract")
        return found if isinstance(found, dict) else None

    def to_json(self) -> dict[str, Any]:
        return {
            "artifact": self.artifact,
            "version": self.version,
            "commit": self.commit,
            "tag": self.tag,
            "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self.created)),
            "author": self.author,
            "message": self.message,
            "stages": self.stages,
            "evidence": self.evidence,
            "evidence_error": self.evidence_error,
            "contract": contract_line(self.contract),
        }


@dataclass
class Registry:
    """Every artifact's versions and, per stage, the version it holds (GTO's reading)."""

    versions: dict[str, list[Version]]  # artifact -> versions, oldest first
    stages: dict[str, dict[str, str | None]]  # artifact -> stage -> version (or None)
    counters: dict[str, int]  # artifact -> highest tag counter
    latest_time: dict[str, int]  # artifact -> newest tag time

    def version(self, artifact: str, version: str) -> Version:
        wanted = normalize_version(version)
        for v in self.versions.get(artifact, []):
            if v.version == wanted and not v.deregistered:
                return v
        known = [v.version for v in self.versions.get(artifact, []) if not v.deregistered]
        raise UnknownVersionError(
            f"no version {wanted} of artifact '{artifact}' (no tag {artifact}@{wanted})",
            hint=f"Released versions: {', '.join(known)}."
            if known
            else f"'{artifact}' has no release yet: `pipespec release` makes one.",
        )

    def in_stage(self, artifact: str, stage: str) -> Version:
        version = self.stages.get(artifact, {}).get(stage)
        if version is None:
            raise UnknownVersionError(
                f"no version of artifact '{artifact}' is in stage '{stage}'",
                hint=f"Promote one: `pipespec promote {artifact} VERSION --to {stage}`.",
            )
        return self.version(artifact, version)

    def to_json(self) -> dict[str, Any]:
        return {
            "artifacts": [
                {
                    "name": name,
                    "stages": self.stages.get(name, {}),
                    "versions": [v.to_json() for v in reversed(versions) if not v.deregistered],
                }
                for name, versions in sorted(self.versions.items())
            ]
        }


# -- reading ------------------------------------------------------------------------------


def read_registry(scm: Any) -> Registry:
    """The registry as GTO reads it from an scmrepo ``Git``'s annotated tags.

    Events are applied in tag-time order (ties by counter), as GTO does; a stage holds the
    version its latest assignment points to, and an unassignment clears it."""
    events = []
    for name in scm.list_tags():
        match = TAG.match(name)
        if not match:
            continue
        tag = scm.get_tag(name)
        if isinstance(tag, str) or tag is None:  # lightweight tags: GTO ignores them too
            continue
        events.append((tag.tag_time, int(match["counter"] or 0), match, tag))
    events.sort(key=lambda e: (e[0], e[1]))
    registry = Registry(versions={}, stages={}, counters={}, latest_time={})
    assignments: list[tuple[re.Match[str], Any]] = []
    for tag_time, counter, match, tag in events:
        artifact = match["artifact"]
        registry.counters[artifact] = max(registry.counters.get(artifact, 0), counter)
        registry.latest_time[artifact] = max(registry.latest_time.get(artifact, 0), tag_time)
        if match["version"]:
            versions = registry.versions.setdefault(artifact, [])
            if match["cancel"]:
                for v in versions:
                    if v.version == match["version"]:
                        v.deregistered = True
                continue
            error = None
            try:
                message, evidence = parse_message(tag.name, tag.message, tag.target)
            except EvidenceError as exc:
                message, evidence, error = tag.message.strip(), {}, exc.message
            versions.append(
                Version(
                    artifact=artifact,
                    version=match["version"],
                    commit=tag.target,
                    tag=tag.name,
                    created=tag.tag_time,
                    author=tag.tagger_name,
                    message=message,
                    evidence=evidence,
                    evidence_error=error,
                )
            )
        else:
            assignments.append((match, tag))
    for match, tag in assignments:  # after every registration: a stage names a version
        artifact = match["artifact"]
        stages = registry.stages.setdefault(artifact, {})
        at_commit = [v for v in registry.versions.get(artifact, []) if v.commit == tag.target]
        version = at_commit[-1].version if at_commit else tag.target[:12]
        if match["cancel"]:
            if stages.get(match["stage"]) == version:
                stages[match["stage"]] = None
        else:
            stages[match["stage"]] = version
    for artifact, stages in registry.stages.items():
        for stage, version in stages.items():
            for v in registry.versions.get(artifact, []):
                if v.version == version:
                    v.stages.append(stage)
    return registry


def split_message(message: str) -> tuple[str, str | None]:
    """(the human part, the text of the evidence block or None) of a release tag's message:
    the block after the LAST marker, which pipespec writes at the end."""
    text, marker, rest = message.rpartition(EVIDENCE_MARKER)
    if not marker:
        return message.strip(), None
    return text.strip(), rest


def parse_message(tag: str, message: str, commit: str | None = None) -> tuple[str, dict[str, Any]]:
    """(the human part, the evidence) of release tag ``tag``'s message; an EvidenceError
    naming the tag when the evidence block does not parse, is not an object, names a commit
    other than the tag's, or lacks the bundle's SHA-256. No block at all: ``{}``."""
    text, block = split_message(message)
    if block is None:
        return text, {}
    try:
        evidence = json.loads(block)
    except json.JSONDecodeError as exc:
        raise EvidenceError(
            f"release tag {tag}: its evidence (after '{EVIDENCE_MARKER}') does not parse: "
            f"{exc.msg} at line {exc.lineno}",
            hint="The tag was edited or not written by `pipespec release`; release again.",
        ) from None
    if not isinstance(evidence, dict):
        raise EvidenceError(f"release tag {tag}: its evidence is not a JSON object")
    sha = (
        (evidence.get("bundle") or {}).get("sha256")
        if isinstance(evidence.get("bundle"), dict)
        else None
    )
    if not isinstance(sha, str) or not re.fullmatch(r"[0-9a-f]{64}", sha):
        raise EvidenceError(f"release tag {tag}: its evidence lacks the bundle's SHA-256")
    if commit is not None and evidence.get("commit") not in (None, commit):
        raise EvidenceError(
            f"release tag {tag}: its evidence names commit {str(evidence.get('commit'))[:12]}, "
            f"but the tag points to {commit[:12]}"
        )
    return text, evidence


def project_registry(project: Project) -> Registry:
    """The registry of the project's own git repository."""
    from scmrepo.exceptions import SCMError
    from scmrepo.git import Git

    try:
        with Git(str(project.root)) as scm:
            return read_registry(scm)
    except SCMError as exc:
        raise ReproError(
            f"cannot read the registry: {exc}",
            hint="Releases are git tags: the project must be a git repository (`git init`).",
        ) from None


def registry_config(project: Project) -> dict[str, Any]:
    """``registry`` from ``params.yaml`` (the composed config)."""
    if not project.params_file.is_file():
        raise ConfigError(
            "params.yaml is missing", hint="Run `pipespec compose` (or `pipespec run`)."
        )
    params = yaml.safe_load(project.params_file.read_text(encoding="utf-8")) or {}
    config = params.get("registry")
    if not isinstance(config, dict) or not config.get("artifact"):
        raise ConfigError(
            "params.yaml has no 'registry' group",
            hint="Add `- registry: default` to configs/config.yaml's defaults (see "
            "configs/registry/default.yaml in a new `pipespec init` project), then "
            "`pipespec compose`.",
        )
    return config


def normalize_version(text: str) -> str:
    """``1.2.3`` or ``v1.2.3`` -> ``v1.2.3``; a ConfigError for anything else."""
    match = VERSION.match(text.strip())
    if not match:
        raise ConfigError(
            f"version '{text}' is not a semantic version",
            hint="Write MAJOR.MINOR.PATCH, e.g. 1.2.0 (a leading 'v' is allowed).",
        )
    return f"v{match['semver']}"


def bump(versions: list[Version], part: str) -> str:
    """The next version after the greatest released one (from v0.0.0, as GTO starts)."""
    if part not in BUMPS:
        raise ConfigError(f"--bump: '{part}' is not one of {', '.join(BUMPS)}")
    released = [_numbers(v.version) for v in versions]
    major, minor, patch = max(released, default=(0, 0, 0))
    if part == "major":
        return f"v{major + 1}.0.0"
    if part == "minor":
        return f"v{major}.{minor + 1}.0"
    return f"v{major}.{minor}.{patch + 1}"


def _numbers(version: str) -> tuple[int, int, int]:
    core = version.lstrip("v").split("-")[0].split("+")[0]
    major, minor, patch = (int(x) for x in core.split("."))
    return major, minor, patch


# -- release ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Release:
    """What ``release`` created: the tag, the version and its evidence."""

    tag: str
    artifact: str
    version: str
    commit: str
    evidence: dict[str, Any]


def release(
    project: Project,
    *,
    version: str | None = None,
    part: str | None = None,
    message: str | None = None,
) -> Release:
    """Tag HEAD's bundle as a new version after checking the workspace, DVC and the gate."""
    from pipespec.bundle.bundle import Bundle
    from pipespec.engine.generate import check

    config = registry_config(project)
    artifact = str(config["artifact"])
    ensure_clean(project)
    gate = gate_reports(project)
    check(project)  # params.yaml and dvc.yaml match configs/ and pipelines/
    ensure_outputs_match(project)
    registry = project_registry(project)
    versions = [v for v in registry.versions.get(artifact, []) if not v.deregistered]
    commit = git(project, "rev-parse", "HEAD").strip()
    for v in versions:
        if v.commit == commit:
            raise RegistryError(
                f"HEAD ({commit[:12]}) is already released as {artifact}@{v.version}",
                hint="Commit a new bundle first; one commit holds one version.",
            )
    if version is not None and part is not None:
        raise ConfigError("give --version or --bump, not both")
    new = normalize_version(version) if version else bump(versions, part or "patch")
    if any(v.version == new for v in registry.versions.get(artifact, [])):
        raise RegistryError(
            f"{artifact}@{new} exists already",
            hint=f"Released: {', '.join(v.version for v in versions)}; use --bump.",
        )
    bundle = Bundle.load(project.root / str(config["path"]), project=project.root)
    evidence = {
        "bundle": {"path": str(config["path"]), "sha256": bundle.sha},
        "commit": commit,
        "contract": contract_of(bundle),
        "gate": gate,
        "metrics": metrics_files(project),
        "behavior": behavior_evidence(_read_json(project.root / BEHAVIOR_REPORT)),
    }
    text = f"Registering artifact {artifact} version {new}\n\n"
    if message:
        text += message.strip() + "\n\n"
    text += EVIDENCE_MARKER + "\n" + json.dumps(evidence, indent=2, sort_keys=True) + "\n"
    tag = f"{artifact}@{new}"
    _tag(project, tag, commit, text, after=registry.latest_time.get(artifact, 0))
    return Release(tag=tag, artifact=artifact, version=new, commit=commit, evidence=evidence)


def contract_of(bundle: Any) -> dict[str, Any]:
    """What a version's clients rely on: the task, the classes, the fields of each answer
    (from the bundle's own ``records``) and the required input fields with their types."""
    import numpy as np

    classes = list(bundle.classes or [])
    scores = np.zeros((1, len(classes))) if bundle.task == "multiclass" else np.zeros(1)
    return {
        "task": bundle.task,
        "classes": classes,
        "outputs": sorted(bundle.records(scores)[0]),
        "inputs": {c.name: c.type for c in bundle.schema.columns},
    }


def contract_line(contract: dict[str, Any] | None) -> str:
    """A contract in one line: ``binary [no, yes] -> label, probability; 12 inputs``."""
    if not contract:
        return "-"
    classes = contract.get("classes") or []
    shown = f" [{', '.join(str(c) for c in classes)}]" if classes else ""
    if len(shown) > 40:
        shown = f" [{len(classes)} classes]"
    inputs = contract.get("inputs") or {}
    return (
        f"{contract.get('task')}{shown} -> {', '.join(contract.get('outputs') or [])}; "
        f"{len(inputs)} inputs"
    )


def contract_changes(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """Each difference between two contracts that changes what clients send or receive."""
    changes = []
    for key in ("task", "classes", "outputs"):
        if old.get(key) != new.get(key):
            changes.append(f"{key} {old.get(key)!r} -> {new.get(key)!r}")
    before, after = old.get("inputs") or {}, new.get("inputs") or {}
    added = [f"{k} ({after[k]})" for k in after if k not in before]
    removed = [k for k in before if k not in after]
    retyped = [
        f"{k} {before[k]} -> {after[k]}" for k in after if k in before and before[k] != after[k]
    ]
    if added:
        changes.append(f"new required inputs: {', '.join(added)}")
    if removed:
        changes.append(f"inputs no longer read: {', '.join(removed)}")
    if retyped:
        changes.append(f"input types changed: {', '.join(retyped)}")
    return changes


def behavior_evidence(report: dict[str, Any] | None) -> dict[str, Any] | None:
    """The behaviour stage's report with true counts beside it: ``checks`` run, ``passed``
    and ``failed`` (checks, not a flag), ``all_passed``; the report itself under ``report``."""
    if report is None:
        return None
    inner = report.get("behavior")
    body: dict[str, Any] = inner if isinstance(inner, dict) else report
    checks = int(body["checks"]) if isinstance(body.get("checks"), int) else None
    failed = body.get("failed", body.get("checks_failed"))
    failed = int(failed) if isinstance(failed, int) else None
    passed = checks - failed if checks is not None and failed is not None else None
    return {
        "checks": checks,
        "passed": passed,
        "failed": failed,
        "all_passed": behavior_passed(report),
        "report": report,
    }


def ensure_clean(project: Project) -> None:
    """A DirtyWorkspaceError naming the changed files when git's workspace is not clean."""
    status = git(project, "status", "--porcelain", "--untracked-files=normal")
    changed = [line[3:] for line in status.splitlines() if line.strip()]
    if changed:
        more = f" (and {len(changed) - 8} more)" if len(changed) > 8 else ""
        shown = ", ".join(changed[:8]) + more
        raise DirtyWorkspaceError(
            f"the workspace has uncommitted changes: {shown}",
            hint="A release names a commit: commit (or stash) the changes, then release.",
        )


def ensure_outputs_match(project: Project) -> None:
    """An OutdatedOutputsError naming the stages when ``dvc status`` is not clean (the
    ``configs`` check stage aside: its stamp is local state, ``check`` covers it)."""
    from pipespec.engine.dvc_repo import status as dvc_status

    status = dvc_status(project)
    stale = [name for name, changes in status.items() if _real_changes(name, changes)]
    if stale:
        raise OutdatedOutputsError(
            f"dvc.lock does not match the outputs of: {', '.join(stale)}",
            hint="Run `dvc repro` (or `dvc pull`), commit dvc.lock, then release.",
        )


def _real_changes(stage: str, changes: Any) -> bool:
    """Whether ``dvc status`` reports a change other than the config check's stamp (which is
    git-ignored local state, absent from a fresh clone; ``check()`` does its job)."""
    if stage == CHECK_STAGE:
        return False
    for change in changes if isinstance(changes, list) else [changes]:
        if not isinstance(change, dict):
            return True
        for paths in change.values():
            if not isinstance(paths, dict) or set(paths) - {STAMP}:
                return True
    return False


def gate_reports(project: Project) -> dict[str, Any] | None:
    """The gate stages' reports, by path; a GateFailedError naming every failed gate."""
    from pipespec.engine.pipeline import load_pipeline

    paths = [
        path
        for stage in load_pipeline(project).stages
        if stage.kind.name == "gate"
        for path in stage.outputs_of("metrics")
    ]
    if not paths:
        return None
    reports: dict[str, Any] = {}
    for path in paths:
        report = _read_json(project.root / path)
        if report is None:
            raise GateFailedError(
                f"no gate report at {path}: the gate has not run",
                hint="Run the pipeline (`pipespec run`), commit, then release.",
            )
        failed = [g for g in report.get("gates", []) if not g.get("passed")]
        if failed or report.get("gates_failed"):
            names = "; ".join(
                f"{g['metric']} = {g['value']:.6g}, required {g['op']} {g['bound']:g}"
                for g in failed
            )
            raise GateFailedError(
                f"the quality gate did not pass ({path}): {names}",
                hint="Only a gated bundle is released. Improve the model or change "
                "evaluation.gates, re-run, commit, then release.",
            )
        reports[path] = report
    return reports


def metrics_files(project: Project) -> dict[str, Any]:
    """Every metrics file ``dvc.yaml`` declares, except the gate's and behaviour reports."""
    document = yaml.safe_load(project.dvc_file.read_text(encoding="utf-8")) or {}
    out: dict[str, Any] = {}
    for name, stage in (document.get("stages") or {}).items():
        for item in stage.get("metrics", []):
            path = next(iter(item)) if isinstance(item, dict) else str(item)
            if name == "gate" or path == BEHAVIOR_REPORT:
                continue
            data = _read_json(project.root / path)
            if data is not None:
                out[path] = data
    return out


def _read_json(path: Path) -> Any:
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ConfigError(f"cannot parse {path.name}: {exc}") from None


# -- promotion ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Promotion:
    """What ``promote`` created."""

    tag: str
    artifact: str
    version: str
    stage: str
    commit: str


def promote(
    project: Project,
    artifact: str,
    version: str,
    stage: str,
    *,
    allow_contract_change: bool = False,
) -> Promotion:
    """Assign ``stage`` to a released version, in the configured order, with its evidence.
    A version whose contract (task, classes, output fields, required inputs) differs from
    the stage's current holder's is refused unless ``allow_contract_change``, which the
    promotion tag then records with the differences."""
    config = registry_config(project)
    stages: dict[str, Any] = config.get("stages") or {}
    if stage not in stages:
        raise PromotionError(
            f"unknown stage '{stage}' (registry.stages)",
            hint=f"Stages: {', '.join(stages) or 'none configured'}.",
        )
    registry = project_registry(project)
    target = registry.version(artifact, version)
    if stage in target.stages:
        raise PromotionError(f"{artifact}@{target.version} is already in stage '{stage}'")
    rule = stages[stage] or {}
    source = rule.get("from_stage")
    if source and source not in target.stages:
        holder = registry.stages.get(artifact, {}).get(source)
        raise PromotionError(
            f"{artifact}@{target.version} is not in stage '{source}': '{stage}' is promoted "
            f"only from '{source}' (registry.stages.{stage}.from_stage)",
            hint=f"Promote it to '{source}' first"
            + (f" ('{source}' now holds {holder})." if holder else "."),
        )
    target.checked_evidence()
    for requirement in rule.get("requires") or []:
        _require(target, str(requirement), stage)
    changes = _contract_check(registry, artifact, target, stage, allow_contract_change)
    tag = f"{artifact}#{stage}#{registry.counters.get(artifact, 0) + 1}"
    text = f"Assigning stage {stage} to artifact {artifact} version {target.version}\n"
    if changes:
        text += (
            "\nContract change allowed (--allow-contract-change):\n"
            + "".join(f"- {c}\n" for c in changes)
            + "\n"
            + EVIDENCE_MARKER
            + "\n"
            + json.dumps({"contract_change": changes}, indent=2, sort_keys=True)
            + "\n"
        )
    _tag(project, tag, target.commit, text, after=registry.latest_time.get(artifact, 0))
    return Promotion(
        tag=tag, artifact=artifact, version=target.version, stage=stage, commit=target.commit
    )


def _contract_check(
    registry: Registry, artifact: str, target: Version, stage: str, allowed: bool
) -> list[str]:
    """The differences between ``target``'s contract and the stage holder's; a
    ContractChangeError listing them unless ``allowed``."""
    holder_name = registry.stages.get(artifact, {}).get(stage)
    if holder_name is None or holder_name == target.version:
        return []
    holder = registry.version(artifact, holder_name)
    old, new = holder.contract, target.contract
    if old is None or new is None:
        without = holder if old is None else target
        changes = [f"{artifact}@{without.version} recorded no contract: it cannot be compared"]
    else:
        changes = contract_changes(old, new)
    if changes and not allowed:
        raise ContractChangeError(
            f"{artifact}@{target.version} changes the output contract of stage '{stage}' "
            f"(now {artifact}@{holder.version}): " + "; ".join(changes),
            hint="Every client of the stage would receive something else. If that is "
            "intended, promote with --allow-contract-change (the tag records it).",
        )
    return changes


def _require(version: Version, requirement: str, stage: str) -> None:
    """A PromotionError when ``version``'s release evidence lacks ``requirement``."""
    where = f"registry.stages.{stage}.requires"
    evidence = version.evidence
    if requirement == "gate":
        gate = evidence.get("gate")
        if not gate:
            raise PromotionError(
                f"{version.artifact}@{version.version} has no passed gate in its release "
                f"evidence, and stage '{stage}' requires it ({where})"
            )
    elif requirement == "behavior":
        report = evidence.get("behavior")
        if report is None:
            raise EvidenceError(
                f"{version.artifact}@{version.version} has no behaviour report in its release "
                f"evidence (tag {version.tag}), and stage '{stage}' requires it ({where})",
                hint="Add the behavior stage to the pipeline, run it, commit and release a "
                "new version.",
            )
        if not behavior_passed(report):
            failed = ", ".join(failed_checks(report)) or "see the report"
            raise PromotionError(
                f"{version.artifact}@{version.version}: behaviour checks failed ({failed}), "
                f"and stage '{stage}' requires them passed ({where})",
                hint=f"The report is {BEHAVIOR_REPORT} at commit {version.commit[:12]}.",
            )
    else:
        raise ConfigError(f"{where}: unknown evidence '{requirement}' (gate, behavior)")


def behavior_passed(report: dict[str, Any]) -> bool:
    """A behaviour report passes with ``passed: true``, or with no failed check. The behavior
    stage's ``metrics/behavior.json`` holds it under the key ``behavior``."""
    if "all_passed" in report:  # the release evidence's summary (behavior_evidence)
        return bool(report["all_passed"])
    if isinstance(report.get("behavior"), dict):
        report = report["behavior"]
    if "passed" in report:
        return bool(report["passed"])
    failed = report.get("checks_failed", report.get("failed"))
    if failed is not None:
        return not failed
    return not failed_checks(report)


def failed_checks(report: dict[str, Any]) -> list[str]:
    """The failed checks' names where the report lists them; else 'N of M checks'."""
    if "all_passed" in report and isinstance(report.get("report"), dict):
        report = report["report"]
    if isinstance(report.get("behavior"), dict):
        report = report["behavior"]
    if isinstance(report.get("failed"), int) and isinstance(report.get("checks"), int):
        return [f"{report['failed']} of {report['checks']} checks"]
    checks = report.get("checks") or []
    if isinstance(checks, dict):
        checks = [{"name": k, **v} for k, v in checks.items() if isinstance(v, dict)]
    return [str(c.get("name", "?")) for c in checks if isinstance(c, dict) and not c.get("passed")]


# -- git ----------------------------------------------------------------------------------


def git(project: Project, *args: str) -> str:
    """``git ARGS`` in the project; a ReproError with git's message when it fails."""
    proc = subprocess.run(
        ["git", *args], cwd=project.root, capture_output=True, text=True, check=False
    )
    if proc.returncode != 0:
        raise ReproError(f"git {' '.join(args)} failed: {proc.stderr.strip() or proc.stdout}")
    return proc.stdout


def _tag(project: Project, name: str, commit: str, message: str, *, after: int) -> None:
    """An annotated tag. GTO orders events by tag time in whole seconds, so a tag is never
    written in the same second as the artifact's newest one (it would be read before it)."""
    wait = after + 1 - time.time()
    if wait > 0:
        time.sleep(wait)
    git(project, "tag", "-a", name, commit, "--cleanup=verbatim", "-m", message)
