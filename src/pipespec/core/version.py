"""pipespec's version: the one place the package writes it (``pyproject.toml`` holds the same
string for the build, and ``tests/cli/test_main.py`` keeps the two equal)."""

from __future__ import annotations

__version__ = "0.1.0"
