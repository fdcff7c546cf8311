"""``pipespec export docker``: ``deploy/docker/Dockerfile`` and its serving requirements.

The image holds the serving path only: pipespec installed with ``--no-deps`` over
``requirements-serve.txt``, which pins the packages ``pipespec serve`` imports (FastAPI,
uvicorn, LightGBM, pandas, pyarrow, ...) and everything they need, at the versions of this
environment, and nothing of training (no Hydra, DVC, Optuna, Dask, scikit-learn). It runs as
a non-root user, checks ``/health``, and carries the bundle's SHA-256 and versions as labels.
Build it from the project root: ``docker build -f deploy/docker/Dockerfile .``.

pipespec itself comes from ``deploy/docker/wheels/``: the export writes a wheel of the
pipespec that runs it (``wheel``), built in-process and byte-reproducible (sorted entries,
fixed timestamps and modes), so the image needs no index that has pipespec, and
``pipespec export --check`` finds the wheel stale when pipespec's own code changed.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import re
import shlex
import zipfile
from importlib import metadata
from pathlib import Path

from pipespec import __version__
from pipespec.core import grammar
from pipespec.core.errors import ConfigError
from pipespec.engine.export.base import ExportContext, header

DOCKERFILE = "deploy/docker/Dockerfile"
REQUIREMENTS = "deploy/docker/requirements-serve.txt"
WHEELS = "deploy/docker/wheels"
# What `pipespec serve` imports (pipespec.cli, .bundle, .core), by distribution name; jinja2
# for the HTML reports of `pipespec monitor` and `pipespec test` on the serving host.
SERVE = ("fastapi", "uvicorn", "lightgbm", "numpy", "pandas", "pyarrow", "scipy", "rich",
         "jinja2")  # fmt: skip
OPTIONAL_SERVE = ("prometheus-client",)  # once pipespec depends on it (GET /metrics)
NEVER = ("hydra-core", "omegaconf", "dvc", "optuna", "dask", "distributed", "scikit-learn")
UID = 10001


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def serving_requirements(python: str) -> list[str]:
    """``name==version`` for the serving packages and their dependencies, sorted.

    Versions are this environment's; environment markers are evaluated for the image (Linux,
    Python ``python``), so keep ``deploy.python`` at the Python you train with."""
    from packaging.markers import default_environment
    from packaging.requirements import Requirement

    declared = {
        _norm(Requirement(r).name)
        for r in metadata.requires("pipespec") or []
        if "extra ==" not in r
    }
    wanted = [n for n in (*SERVE, *OPTIONAL_SERVE) if n in SERVE or _norm(n) in declared]
    env = {str(k): str(v) for k, v in default_environment().items()} | {
        "extra": "",
        "python_version": python,
        "sys_platform": "linux",
        "platform_system": "Linux",
        "os_name": "posix",
    }
    pins: dict[str, str] = {}
    todo = [_norm(n) for n in wanted]
    while todo:
        name = todo.pop()
        if name in pins:
            continue
        dist = metadata.distribution(name)
        pins[name] = dist.version
        for text in dist.requires or []:
            req = Requirement(text)
            if req.marker is not None and not req.marker.evaluate(env):
                continue
            todo.append(_norm(req.name))
    return [f"{name}=={version}" for name, version in sorted(pins.items())]


def _value(deploy: dict[str, object], key: str) -> str:
    """``deploy.KEY`` as text for a Dockerfile line: composition checked its grammar; a line
    break (a new instruction) is refused here again, naming the key."""
    value = str(deploy[key])
    problem = grammar.single_line(value)
    if problem:
        raise ConfigError(f"deploy.{key}: {problem}", hint="A Dockerfile line holds one line.")
    return value


def _system_packages(python: str) -> str:
    """The apt-get line for the system libraries the serving packages' compiled code links
    (read from this environment's shared objects: ``syslibs``); empty when none is needed."""
    from pipespec.engine.export import syslibs

    names = [req.split("==", 1)[0] for req in serving_requirements(python)]
    wanted = syslibs.packages(names)
    if not wanted:
        return ""
    listed = " ".join(shlex.quote(p) for p in wanted)
    return (
        "# system libraries the serving packages link (their shared objects' NEEDED entries);\n"
        "# the base image's Debian release fixes their versions (a pin breaks on its updates)\n"
        "# hadolint ignore=DL3008\n"
        f"RUN apt-get update && apt-get install -y --no-install-recommends {listed} \\\n"
        " && rm -rf /var/lib/apt/lists/*\n"
    )


def dockerfile(ctx: ExportContext) -> str:
    """The Dockerfile's text. Config values reach it only as checked words (the Python
    version, the bundle's project path) or quoted (labels, ``CMD`` and ``HEALTHCHECK`` in
    JSON-array form)."""
    deploy = ctx.group("deploy")
    port = int(deploy["port"])
    python = _value(deploy, "python")
    bundle = _value(deploy, "bundle").rstrip("/")
    labels = {
        "org.opencontainers.image.title": _value(deploy, "image"),
        "org.opencontainers.image.version": _value(deploy, "version"),
        "dev.pipespec.version": __version__,
        "dev.pipespec.bundle.sha256": ctx.bundle_sha256(),
    }
    label_lines = " \\\n      ".join(f"{k}={json.dumps(v)}" for k, v in labels.items())
    health = (
        "import urllib.request; "
        f"urllib.request.urlopen('http://127.0.0.1:{port}/health', timeout=3)"
    )
    serve = ["pipespec", "serve", "--bundle", "/app/bundle", "--host", "0.0.0.0"]
    return (
        header("docker")
        + "# Build from the project root: docker build -f deploy/docker/Dockerfile .\n"
        + "# pipespec comes from the wheel this export wrote in deploy/docker/wheels/.\n"
        + f"FROM python:{python}-slim\n"
        + _system_packages(python)
        + f"LABEL {label_lines}\n"
        + "ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_DISABLE_PIP_VERSION_CHECK=1\n"
        + f'ENV PIPESPEC_EXPECT_SHA256="{ctx.bundle_sha256()}" '  # serve refuses other bundles
        + f'PIPESPEC_ALLOW_CUSTOM="{_allow_custom(ctx)}"\n'
        + f"RUN useradd --no-log-init --create-home --uid {UID} pipespec\n"
        + "WORKDIR /app\n"
        + "COPY deploy/docker/ /app/docker/\n"
        + "RUN pip install --no-cache-dir -r /app/docker/requirements-serve.txt \\\n"
        + " && pip install --no-cache-dir --no-deps --find-links /app/docker/wheels "
        + f"pipespec=={__version__}\n"
        + f"COPY --chown={UID}:{UID} {bundle}/ /app/bundle/\n"
        + f"USER {UID}\n"
        + f"EXPOSE {port}\n"
        + f"HEALTHCHECK --interval=30s --timeout=5s CMD {json.dumps(['python', '-c', health])}\n"
        + f"CMD {json.dumps([*serve, '--port', str(port)])}\n"
    )


def _allow_custom(ctx: ExportContext) -> str:
    """``production.allow_custom`` for the image's server: module names, comma-separated."""
    names = [str(m) for m in ctx.group("production").get("allow_custom") or []]
    bad = [m for m in names if not all(p.isidentifier() for p in m.split("."))]
    if bad:
        raise ConfigError(f"production.allow_custom: '{bad[0]}' is not a module name")
    return ",".join(names)


WHEEL_TAG = "py3-none-any"
_EPOCH = (1980, 1, 1, 0, 0, 0)  # the zip format's earliest date: no build time in the bytes


def wheel_name() -> str:
    """``deploy/docker/wheels/pipespec-VERSION-py3-none-any.whl``."""
    return f"{WHEELS}/pipespec-{__version__}-{WHEEL_TAG}.whl"


def wheel() -> bytes:
    """A wheel of the running pipespec: its package files (no bytecode) plus the installed
    distribution's ``METADATA`` and ``entry_points.txt``, which hold the version, the
    requirements and the ``pipespec`` command. Pure Python, so one tag fits every image."""
    import pipespec

    package = Path(pipespec.__file__).parent
    dist = metadata.distribution("pipespec")
    info = f"pipespec-{__version__}.dist-info"
    entries: dict[str, bytes] = {}
    for path in sorted(package.rglob("*")):
        rel = path.relative_to(package)
        if path.is_file() and "__pycache__" not in rel.parts and path.suffix != ".pyc":
            entries[f"pipespec/{rel.as_posix()}"] = path.read_bytes()
    entries[f"{info}/METADATA"] = (dist.read_text("METADATA") or "").encode()
    entries[f"{info}/WHEEL"] = (
        f"Wheel-Version: 1.0\nGenerator: pipespec {__version__}\n"
        f"Root-Is-Purelib: true\nTag: {WHEEL_TAG}\n"
    ).encode()
    entries[f"{info}/entry_points.txt"] = (dist.read_text("entry_points.txt") or "").encode()
    record = []
    for name, data in entries.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        record.append(f"{name},sha256={digest},{len(data)}")
    entries[f"{info}/RECORD"] = ("\n".join([*record, f"{info}/RECORD,,"]) + "\n").encode()
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        for name, data in entries.items():
            item = zipfile.ZipInfo(name, date_time=_EPOCH)
            item.external_attr = 0o644 << 16
            item.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(item, data)
    return out.getvalue()


def export(ctx: ExportContext) -> dict[str, str | bytes]:
    requirements = (
        header("docker")
        + "# The serving path only: install pipespec itself with `pip install --no-deps`.\n"
        + "\n".join(serving_requirements(_value(ctx.group("deploy"), "python")))
        + "\n"
    )
    return {DOCKERFILE: dockerfile(ctx), REQUIREMENTS: requirements, wheel_name(): wheel()}
