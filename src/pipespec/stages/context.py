"""What a stage function receives: its params (only the keys its kind declares), its input
paths and its output paths."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pipespec.core.errors import ConfigError, UndeclaredParamError


class ParamsView(Mapping[str, Any]):
    """Read-only params restricted to declared keys.

    Reading a key the stage kind did not declare raises UndeclaredParamError: DVC would not
    re-run the stage when that key changed, so the declaration must say it.
    """

    def __init__(
        self, data: Mapping[str, Any], allowed: tuple[str, ...], stage: str, prefix: str = ""
    ) -> None:
        self._data = data
        self._allowed = allowed
        self._stage = stage
        self._prefix = prefix

    def _path(self, key: str) -> str:
        return f"{self._prefix}.{key}" if self._prefix else key

    def _visible(self, path: str) -> bool:
        return any(
            path == a or path.startswith(a + ".") or a.startswith(path + ".") for a in self._allowed
        )

    def __getitem__(self, key: str) -> Any:
        path = self._path(key)
        if not self._visible(path):
            raise UndeclaredParamError(
                f"stage '{self._stage}' read params key '{path}', which its kind does not declare",
                hint=f"Declared keys: {', '.join(self._allowed) or 'none'}. Add it to the "
                "kind's reads so that DVC re-runs the stage when it changes.",
            )
        value = self._data[key]
        if isinstance(value, Mapping):
            fully = any(path == a or path.startswith(a + ".") for a in self._allowed)
            if not fully:
                return ParamsView(value, self._allowed, self._stage, path)
            return ParamsView(value, (path,), self._stage, path)
        if value == "???":
            raise ConfigError(
                f"params key '{path}' has no value ('???' in params.yaml)",
                hint=f"Set it: `pipespec run {path}=...`.",
            )
        return value

    def __iter__(self) -> Iterator[str]:
        return (k for k in self._data if self._visible(self._path(k)))

    def __len__(self) -> int:
        return sum(1 for _ in self)

    def get_path(self, dotted: str, default: Any = None) -> Any:
        """The value at a dotted path (``"dataset.target"``) below this view."""
        node: Any = self
        for part in dotted.split("."):
            if not isinstance(node, Mapping) or part not in node._data:  # type: ignore[attr-defined]
                return default
            node = node[part]
        return node

    def to_dict(self) -> dict[str, Any]:
        """A plain copy of the visible keys."""
        return {k: (v.to_dict() if isinstance(v, ParamsView) else v) for k, v in self.items()}


@dataclass
class StageContext:
    """Everything a stage function needs, resolved by the engine."""

    name: str
    params: ParamsView
    inputs: dict[str, Path]
    outputs: dict[str, Path]
    root: Path
    # The whole ``compute`` group: where to run (a Dask cluster's address, its size). Only
    # ``compute.backend``, which decides the stages' outputs, has to be declared in ``reads``.
    compute: dict[str, Any] = field(default_factory=dict)

    def input(self, name: str) -> Path:
        try:
            return self.inputs[name]
        except KeyError:
            raise ConfigError(f"stage '{self.name}' has no input '{name}'") from None

    def output(self, name: str) -> Path:
        return self.outputs[name]

    @property
    def dask(self) -> bool:
        """True when the stage's tables are partitioned: ``compute=dask``, or ``compute=spark``
        whose tables are partitioned the same way (its kind declares compute.backend)."""
        return self.params.get_path("compute.backend") in ("dask", "spark")
