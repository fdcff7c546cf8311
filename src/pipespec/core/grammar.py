"""The grammars of config values that pipespec writes into files other programs read.

A value that reaches a shell line, a Dockerfile, Python code or a manifest is first checked
against the grammar of what it stands for there (a Kubernetes name, an image reference, a
Python version, a path inside the project, an identifier), at composition
(``core/value_checks.py``) and again by the exporters, then written through the target's own
quoting. Each function returns None for a good value, or what is wrong with it.
"""

from __future__ import annotations

import re
from pathlib import PurePosixPath

# Kubernetes (apimachinery's validation): a DNS-1123 label names a Deployment or a Service;
# a label value is at most 63 characters of these.
DNS1123_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
LABEL_VALUE = re.compile(r"([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?")
# Kubernetes resource quantities ("250m", "1", "512Mi", "1.5Gi", "1e3").
QUANTITY = re.compile(r"[+]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][-+]?[0-9]+|[KMGTPE]i|[numkMGTPE])?")
# An image reference (the distribution/reference grammar): [host[:port]/]path[:tag][@digest].
_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_HOST_PART = r"[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?"
_HOST = rf"(?:{_HOST_PART}(?:\.{_HOST_PART})*(?::[0-9]+)?/)"
IMAGE_NAME = re.compile(rf"{_HOST}?{_COMPONENT}(?:/{_COMPONENT})*")
IMAGE_TAG = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}")
IMAGE_REFERENCE = re.compile(
    rf"{IMAGE_NAME.pattern}(?::{IMAGE_TAG.pattern})?(?:@sha256:[0-9a-f]{{64}})?"
)
PYTHON_VERSION = re.compile(r"[0-9]+\.[0-9]+(\.[0-9]+)?")
IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
# A word that no command line reads as an option: a DVC remote's name, a runner label.
WORD = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.+-]*")
# Prometheus durations ("10m", "1h30m", "500ms").
DURATION = re.compile(
    r"(?=[0-9])([0-9]+y)?([0-9]+w)?([0-9]+d)?([0-9]+h)?([0-9]+m)?([0-9]+s)?([0-9]+ms)?"
)
# The characters of a project path pipespec writes into a Dockerfile or a manifest: POSIX's
# portable file name characters and '/', so no quoting, variable or option can hide in it.
_PATH_CHARS = re.compile(r"[A-Za-z0-9._/-]+")
GITHUB_EXPRESSION = "${{"


def match(pattern: re.Pattern[str], value: str, what: str, max_length: int = 0) -> str | None:
    """None when ``value`` is a whole ``pattern`` (and at most ``max_length`` long)."""
    if max_length and len(value) > max_length:
        return f"{value!r} is longer than {max_length} characters ({what})"
    if not pattern.fullmatch(value):
        return f"{value!r} is not {what}"
    return None


def dns_label(value: str) -> str | None:
    """A Kubernetes object name (DNS-1123 label: lower-case letters, digits, '-')."""
    return match(
        DNS1123_LABEL,
        value,
        "a DNS-1123 label (lower-case letters, digits and '-', starting and ending with a "
        "letter or digit)",
        63,
    )


def project_path(value: str) -> str | None:
    """A relative path inside the project, made of portable file name characters."""
    if not value:
        return "an empty path"
    if value.startswith("/"):
        return f"{value!r} is an absolute path: give a path relative to the project"
    parts = PurePosixPath(value).parts
    if ".." in parts:
        return f"{value!r} leaves the project ('..')"
    if not _PATH_CHARS.fullmatch(value):
        return f"{value!r} holds characters other than letters, digits, '.', '_', '-' and '/'"
    if any(part.startswith("-") for part in parts):
        return f"{value!r} has a part starting with '-' (read as an option)"
    return None


def single_line(value: str) -> str | None:
    """No line break or other control character (what a Dockerfile line cannot hold)."""
    if any(ord(c) < 32 or ord(c) == 127 for c in value):
        return f"{value!r} holds a line break or another control character"
    return None
