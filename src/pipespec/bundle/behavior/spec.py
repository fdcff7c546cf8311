"""The behaviour checks as typed data: ``params.yaml``'s ``behavior`` section, or the same
mapping from a checks file, read into ``pipespec.core.config.BehaviorConfig`` without Hydra
(``core/documents``' converter, leniently: as a YAML config gives values), then the rules
one field's type cannot say (exactly one way to choose a slice's rows, ...)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipespec.core.bounds import parse_bound
from pipespec.core.config import BehaviorConfig
from pipespec.core.documents import from_json
from pipespec.core.errors import ConfigError, DocumentError

if TYPE_CHECKING:
    from pipespec.bundle.bundle import Bundle

SECTION = "behavior"


def spec_from(data: Any, *, where: str) -> BehaviorConfig:
    """The typed checks from a plain mapping (``params.yaml``'s ``behavior`` section, or a
    checks file); a ConfigError naming ``where`` and ``behavior.KEY`` for anything wrong."""
    if not isinstance(data, Mapping):
        raise ConfigError(f"{where}: the behaviour checks must be a mapping, got {type(data)}")
    try:
        spec = from_json(BehaviorConfig, dict(data), SECTION, lenient=True)
    except DocumentError as exc:
        raise ConfigError(f"{where}: {exc.message}", hint=exc.hint) from None
    for name, s in spec.slices.items():
        key = f"{SECTION}.slices.{name}"
        ways = sum(x is not None for x in (s.values, s.bins)) + (
            s.min is not None or s.max is not None
        )
        if ways != 1:
            raise ConfigError(
                f"{key} in {where}: give exactly one of values, min/max or bins",
                hint="e.g. {column: sex, values: [Female]} or {column: age, min: 18, max: 30}",
            )
        for metric, expr in s.bounds.items():
            parse_bound(f"{key}.bounds.{metric}", expr)
        if not s.bounds and not s.max_gap:
            raise ConfigError(f"{key} in {where}: give bounds, max_gap or both")
    for name, inv in spec.invariance.items():
        if (inv.value is None) == (inv.noise is None):
            raise ConfigError(
                f"{SECTION}.invariance.{name} in {where}: give exactly one of value or noise",
                hint="value: set the column to it; noise: add N(0, noise x the column's std)",
            )
    if spec.search.max_columns not in (1, 2):
        raise ConfigError(f"{SECTION}.search.max_columns in {where}: must be 1 or 2")
    return spec


def load_checks(path: Path) -> dict[str, Any]:
    """The ``behavior`` mapping of a YAML or JSON file: a checks file, or ``params.yaml``."""
    import yaml

    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"checks file not found: {path}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path} is not valid YAML or JSON: {exc}") from None
    if isinstance(data, Mapping) and SECTION in data:
        data = data[SECTION]
    if not isinstance(data, Mapping):
        raise ConfigError(f"{path}: expected a '{SECTION}' mapping of checks")
    return dict(data)


def columns_read(bundle: Bundle, spec: BehaviorConfig) -> set[str]:
    """The data columns the checks read: the bundle's input columns and the ones it ignores,
    the target, and every column a check names. The others need not be read."""
    names = {c.name for c in bundle.schema.columns} | set(bundle.schema.ignored)
    names.add(str(bundle.output.target))
    names.update(s.column for s in spec.slices.values())
    names.update(c.column for c in spec.invariance.values())
    names.update(c.column for c in spec.directional.values())
    names.update(spec.search.columns or ())
    return names
