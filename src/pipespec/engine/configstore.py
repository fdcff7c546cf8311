"""Registration of the core schemas in Hydra's ConfigStore."""

from __future__ import annotations

from hydra.core.config_store import ConfigStore

from pipespec.core.config import SCHEMA_NAME, RootConfig


def register() -> None:
    """Store the root schema under ``pipespec_schema`` (idempotent)."""
    ConfigStore.instance().store(name=SCHEMA_NAME, node=RootConfig)
