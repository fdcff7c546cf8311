"""One root exception and one subclass per kind of failure.

Every error carries an exit code, so the CLI can turn any of them into a process exit status
that scripts can rely on (see ``docs/architecture.md``, "Exit codes").
"""

from __future__ import annotations


class PipespecError(Exception):
    """Root of every error pipespec raises on purpose."""

    exit_code = 1

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message if not self.hint else f"{self.message}\n{self.hint}"


class ConfigError(PipespecError):
    """A config file, an override or a composition is wrong (unknown key, wrong type, ...)."""

    exit_code = 2


class PipelineError(PipespecError):
    """A file in ``pipelines/`` is wrong: unknown kind, dangling input, duplicate stage."""

    exit_code = 2


class StaleError(PipespecError):
    """``params.yaml`` or ``dvc.yaml`` no longer matches ``configs/`` and ``pipelines/``."""

    exit_code = 3


class DataError(PipespecError):
    """Input data is unreadable or does not fit the config (missing column, wrong type, ...)."""

    exit_code = 4


class OutputError(PipespecError):
    """A file or folder pipespec must write or remove cannot be: read-only, immutable, or a
    file where a folder must be. Nothing was half-written."""

    exit_code = 11


class StageError(PipespecError):
    """A stage failed while running."""

    exit_code = 5


class EngineMismatchError(StageError):
    """The compiled engine's scores differ from ``booster.predict`` by more than allowed."""


class UndeclaredParamError(StageError):
    """A stage read a params key its kind does not declare, so DVC would not track it."""


class ReproError(PipespecError):
    """``dvc repro`` (or another DVC/git command pipespec drives) failed."""

    exit_code = 6


class BundleError(PipespecError):
    """A production bundle is missing, tampered with, or of a format this version cannot read."""

    exit_code = 7


class DriftError(PipespecError):
    """``pipespec monitor`` (or a monitor stage) found drift beyond a configured threshold."""

    exit_code = 8


class RegistryError(PipespecError):
    """The registry refused a release or a promotion; no tag was created."""

    exit_code = 9


class DirtyWorkspaceError(RegistryError):
    """``pipespec release`` needs a clean git workspace: the tag must name what is committed."""


class OutdatedOutputsError(RegistryError):
    """``dvc.lock`` does not match the outputs (``dvc status`` is not clean)."""


class GateFailedError(RegistryError):
    """The quality gate of the version to release (or promote) did not pass."""


class PromotionError(RegistryError):
    """A promotion out of the configured order, or without the evidence its stage requires."""


class UnknownVersionError(RegistryError):
    """No release tag for this artifact and version (or stage)."""


class EvidenceError(RegistryError):
    """A release tag's evidence does not parse, or lacks what is needed (the bundle SHA-256,
    a report a stage requires)."""


class ContractChangeError(PromotionError):
    """A promotion would change what the stage's clients receive (task, classes, output
    fields or required inputs) without ``--allow-contract-change``."""


class DocumentError(BundleError):
    """A document (transforms, input schema, card, ...) does not fit its typed class."""


class BehaviorError(PipespecError):
    """A behaviour check of a model failed (``pipespec test``, or the ``behavior`` stage)."""

    exit_code = 10
