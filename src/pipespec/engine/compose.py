"""Compose ``configs/`` with Hydra into the resolved, deterministic text of ``params.yaml``.

The body is exactly what DVC's own Hydra integration writes (``OmegaConf.to_yaml`` of the
resolved composition), so ``dvc exp run -S key=value`` and ``pipespec run key=value`` give
the same parameters. pipespec adds a comment header recording the overrides, which DVC
ignores when it reads params.
"""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from pipespec.core.errors import ConfigError
from pipespec.core.value_checks import KeyPath, Problem, check_values
from pipespec.engine.project import PRIMARY_CONFIG, Project

HEADER = (
    "# Composed by pipespec from configs/: edit those files (or pass overrides), not this one.\n"
    "# Regenerate with `pipespec compose` (or `pipespec run`), using the overrides below.\n"
)
OVERRIDES_PREFIX = "# overrides: "
_IN_CONFIG = re.compile(r"^In '([^']+)': ")


@dataclass(frozen=True)
class Composition:
    """The result of composing: the resolved params and the exact text of ``params.yaml``."""

    params: dict[str, Any]
    body: str
    overrides: tuple[str, ...] = ()
    choices: dict[str, str | None] = field(default_factory=dict)

    @property
    def text(self) -> str:
        return HEADER + OVERRIDES_PREFIX + json.dumps(list(self.overrides)) + "\n" + self.body


def read_overrides(params_text: str) -> tuple[str, ...] | None:
    """The overrides recorded in a ``params.yaml`` header, or None if it has none."""
    for line in params_text.splitlines():
        if not line.startswith("#"):
            break
        if line.startswith(OVERRIDES_PREFIX):
            try:
                value = json.loads(line[len(OVERRIDES_PREFIX) :])
            except json.JSONDecodeError:
                return None
            if isinstance(value, list) and all(isinstance(v, str) for v in value):
                return tuple(value)
    return None


def strip_header(params_text: str) -> str:
    """``params.yaml`` text without pipespec's leading comment lines (DVC writes none)."""
    lines = params_text.splitlines(keepends=True)
    i = 0
    while i < len(lines) and lines[i].startswith("#"):
        i += 1
    return "".join(lines[i:])


def compose(project: Project, overrides: Sequence[str] = ()) -> Composition:
    """Compose ``project``'s configs with Hydra overrides; raise ConfigError naming the fault."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra
    from hydra.errors import HydraException
    from omegaconf import OmegaConf
    from omegaconf.errors import OmegaConfBaseException

    from pipespec.engine.configstore import register

    register()
    overrides = tuple(overrides)
    GlobalHydra.instance().clear()
    try:
        with initialize_config_dir(str(project.configs.resolve()), version_base=None):
            cfg = hydra_compose(PRIMARY_CONFIG, overrides=list(overrides), return_hydra_config=True)
    except (HydraException, OmegaConfBaseException) as exc:
        raise _translate(project, overrides, exc) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = (
            f"{project.rel(mark.name)}, line {mark.line + 1}, column {mark.column + 1}"
            if mark
            else "a file under configs/"
        )
        problem = getattr(exc, "problem", None) or getattr(exc, "context", None) or str(exc)
        raise ConfigError(f"YAML syntax error in {where}: {problem}") from None
    finally:
        GlobalHydra.instance().clear()

    choices = {
        str(k): (None if v is None else str(v))
        for k, v in cfg.hydra.runtime.choices.items()
        if not str(k).startswith("hydra/")
    }
    with _open(cfg):
        del cfg["hydra"]

    missing = sorted(OmegaConf.missing_keys(cfg))
    # '???' merged onto a schema default of null keeps the null: check file sources by hand.
    source = OmegaConf.select(cfg, "dataset.source", throw_on_missing=False)
    if getattr(source, "name", None) in ("csv", "parquet") and cfg.dataset.path is None:
        missing = sorted({*missing, "dataset.path"})
    if missing:
        lines = [
            f"  {key}  (declared '???' in {_source_of(project, key, choices, ())})"
            for key in missing
        ]
        example = " ".join(f"{k}=..." for k in missing[:3])
        raise ConfigError(
            "missing required value" + ("s" if len(missing) > 1 else "") + ":\n" + "\n".join(lines),
            hint=f"Set them on the command line, e.g. `pipespec run {example}`, "
            "or in the config file.",
        )
    try:
        OmegaConf.resolve(cfg)
    except OmegaConfBaseException as exc:
        key = getattr(exc, "full_key", None) or "?"
        raise ConfigError(
            f"cannot resolve '{key}' (in {_source_of(project, key, choices, overrides)}): "
            f"{_first_line(str(exc))}"
        ) from None
    body = OmegaConf.to_yaml(cfg)
    params = yaml.safe_load(body) or {}
    problems = check_values(params)
    if problems:
        raise value_error(problems, lambda path: _source_of(project, path, choices, overrides))
    return Composition(params=params, body=body, overrides=overrides, choices=choices)


def value_error(problems: Sequence[Problem], source_of: Callable[[KeyPath], str]) -> ConfigError:
    """One ConfigError for every bad value, each naming its keys and where they were set."""
    lines = []
    for problem in problems:
        where = " and ".join(
            f"'{key}' in {source_of(path)}"
            for key, path in zip(problem.keys, problem.paths, strict=True)
        )
        lines.append(f"{where}: {problem.message}")
    hints = list(dict.fromkeys(p.hint for p in problems if p.hint))
    message = (
        f"invalid config value {lines[0]}"
        if len(lines) == 1
        else f"{len(lines)} invalid config values:\n" + "\n".join(f"  {line}" for line in lines)
    )
    return ConfigError(message, hint="\n".join(hints) or None)


def _open(cfg: Any) -> Any:
    from omegaconf import open_dict

    return open_dict(cfg)


def _first_line(text: str) -> str:
    return text.strip().splitlines()[0] if text.strip() else text


def _unparsable(overrides: tuple[str, ...]) -> str | None:
    """The first override Hydra's grammar cannot parse."""
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import OverrideParseException

    parser = OverridesParser.create()
    for override in overrides:
        try:
            parser.parse_overrides([override])
        except OverrideParseException:
            return override
    return None


def quoting_hint(override: str) -> str | None:
    """``override`` with its value in Hydra's quotes and the whole in the shell's, as it
    is typed in bash (``'+evaluation.gates.test.auc=">= 0.80"'``), if that parses."""
    import shlex

    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import OverrideParseException

    key, sep, value = override.partition("=")
    if not sep or not key:
        return None
    quote = '"' if "'" in value or '"' not in value else "'"
    if quote in value:
        return None
    fixed = f"{key}={quote}{value}{quote}"
    try:
        OverridesParser.create().parse_overrides([fixed])
    except OverrideParseException:
        return None
    return shlex.quote(fixed)


def _translate(project: Project, overrides: tuple[str, ...], exc: Exception) -> ConfigError:
    """Turn a Hydra/OmegaConf exception into a ConfigError naming the key and the file."""
    from hydra.errors import MissingConfigException, OverrideParseException

    text = str(exc)
    if isinstance(exc, OverrideParseException):
        found = re.search(r"Error parsing override '([^']*)'", text)
        bad = found.group(1) if found else _unparsable(overrides)
        lines = [line for line in text.splitlines() if line.strip() and "^" not in line]
        detail = lines[0].split(":")[0] if lines else ""
        fixed = quoting_hint(bad) if bad else None
        hint = "Overrides use Hydra's grammar: key=value, group=option, +new_key=value, ~key. "
        if fixed:
            hint = (
                f"Quote the value for Hydra, and the whole override for the shell: {fixed} "
                "(characters such as ; > < = spaces and brackets need Hydra's quotes). " + hint
            )
        return ConfigError(
            f"malformed override '{bad or text}' (command line): {detail}",
            hint=hint + "See https://hydra.cc/docs/advanced/override_grammar/basic/",
        )
    if isinstance(exc, MissingConfigException):
        missing = re.search(r"Could not find '([^']+)'", text)
        name = missing.group(1) if missing else "?"
        group, _, option = name.rpartition("/")
        options = _group_options(project, group) if group else []
        where = _IN_CONFIG.match(text)
        origin = _override_for(group, overrides) or (
            f"the defaults list of {_config_file(project, where.group(1))}" if where else "?"
        )
        hint = (
            f"Available options in '{group}': {', '.join(options)}"
            if options
            else f"configs/{group}/ has no options"
        )
        close = difflib.get_close_matches(option, options, n=1)
        if close:
            hint = f"Did you mean '{group}={close[0]}'? " + hint
        return ConfigError(
            f"no option '{option}' in config group '{group}' "
            f"(configs/{name}.yaml does not exist), from {origin}",
            hint=hint,
        )

    cause = exc.__cause__ or exc
    key = getattr(cause, "full_key", None) or getattr(exc, "full_key", None) or ""
    if not key:
        found = re.search(r"full_key: (\S+)", text)
        key = found.group(1) if found else ""
    detail = _first_line(str(cause))
    if "raised while composing config:" in detail:
        detail = _first_line(str(cause).split("raised while composing config:", 1)[1])
    where = _IN_CONFIG.match(text)
    if where:
        source = _config_file(project, where.group(1))
    elif key and _override_for(key, overrides):
        source = _override_for(key, overrides) or ""
    else:
        source = "the command line" if overrides else f"configs/{PRIMARY_CONFIG}.yaml"
    advice: str | None = None
    if "not in" in detail and key:
        advice = _suggest_keys(key)
    elif "+" in text and "append" in text:
        advice = _first_line(text.splitlines()[-1])
    return ConfigError(f"invalid config key '{key or '?'}' in {source}: {detail}", hint=advice)


def _override_for(key: str, overrides: Sequence[str]) -> str | None:
    """The last override that sets ``key`` (the one that wins)."""
    for item in reversed(overrides):
        name = item.lstrip("+~").split("=", 1)[0].split("@", 1)[0]
        if name == key:
            return f"command-line override '{item}'"
    return None


def _config_file(project: Project, config_path: str) -> str:
    return project.rel(project.configs / f"{config_path}.yaml")


def _group_options(project: Project, group: str) -> list[str]:
    folder = project.configs / group
    return sorted(p.stem for p in folder.glob("*.yaml")) if folder.is_dir() else []


def _suggest_keys(full_key: str) -> str | None:
    """'Did you mean' for an unknown key, from the schema's field names at that level."""
    from dataclasses import fields, is_dataclass

    from pipespec.core.config import RootConfig

    node: Any = RootConfig
    parts = full_key.split(".")
    for part in parts[:-1]:
        match = {f.name: f for f in fields(node)}.get(part)
        if match is None:
            return None
        node = match.default_factory() if callable(match.default_factory) else None
        if not is_dataclass(node):
            return None
        node = type(node)
    names = [f.name for f in fields(node)]
    prefix = ".".join(parts[:-1])
    close = difflib.get_close_matches(parts[-1], names, n=3)
    known = ", ".join(names)
    where = f"'{prefix}'" if prefix else "the top level"
    if close:
        return (
            f"Did you mean {' or '.join(repr(f'{prefix}.{c}'.lstrip('.')) for c in close)}? "
            f"Keys of {where}: {known}"
        )
    return f"Keys of {where}: {known}"


def _source_of(
    project: Project,
    key: str | KeyPath,
    choices: dict[str, str | None],
    overrides: Sequence[str],
) -> str:
    """Where ``key`` was last set: the override that sets it (or a mapping above it), else
    the last config file (in composition order) that sets it. A path (a tuple) can name a
    key that holds a dot, such as the gate ``evaluation.gates.test.auc`` written
    ``test.auc: ...`` under ``gates``."""
    path = tuple(key.split(".")) if isinstance(key, str) else key
    found = _override_for(".".join(path), overrides) or _override_above(path, overrides, choices)
    if found:
        return found
    candidates: list[tuple[Path, str]] = [(project.configs / f"{PRIMARY_CONFIG}.yaml", "")]
    for group, option in choices.items():
        if option is not None:
            candidates.append((project.configs / group / f"{option}.yaml", group.replace("/", ".")))
    last = None
    for file, package in candidates:
        if not file.is_file():
            continue
        text = file.read_text(encoding="utf-8")
        if "# @package _global_" in text:
            package = ""
        node: Any = yaml.safe_load(text) or {}
        for part in reversed(package.split(".") if package else []):
            node = {part: node}
        if _lookup(node, path) is not None:
            last = project.rel(file)
    return last or f"{project.rel(project.configs)}/"


def _override_above(
    path: KeyPath, overrides: Sequence[str], choices: dict[str, str | None]
) -> str | None:
    """The last override that sets a mapping holding ``path`` (``model.params={...}``);
    a config group's choice (``model=NAME``) is not one: its file is."""
    for item in reversed(overrides):
        name = item.lstrip("+~").split("=", 1)[0].split("@", 1)[0]
        parts = tuple(name.split("."))
        if name not in choices and len(parts) < len(path) and path[: len(parts)] == parts:
            return f"command-line override '{item}'"
    return None


def _lookup(node: Any, path: KeyPath) -> Any:
    """The value at ``path`` in a YAML document, or None; a key may hold dots."""
    if not path:
        return node
    if not isinstance(node, dict):
        return None
    keys = {str(k): v for k, v in node.items()}
    for n in range(len(path), 0, -1):
        name = ".".join(path[:n])
        if name in keys:
            found = _lookup(keys[name], path[n:])
            if found is not None:
                return found
    return None
