"""HTML pages for people: the Jinja2 templates in ``bundle/templates/`` (package data, so a
wheel carries them), rendered with autoescaping (every value from a report is text, never
markup, unless the code marks it so: the drift charts' SVG). Each page includes the one
stylesheet, ``report.css``, inline: a page is one file with no scripts and no external
requests, readable offline and as a CI artifact."""

from __future__ import annotations

import functools
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipespec.core.numbers import number

if TYPE_CHECKING:
    import jinja2


@functools.cache
def environment() -> jinja2.Environment:
    """The pages' environment: templates from this package, autoescaped, undefined names
    an error (a template that names a missing field fails its test, not a reader's page)."""
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.PackageLoader("pipespec.bundle", "templates"),
        autoescape=jinja2.select_autoescape(("html",)),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters["number"] = number
    env.filters["fmt"] = format  # Python's format spec: {{ rows|fmt(",") }}
    return env


def render(template: str, **context: Any) -> str:
    """``templates/<template>`` rendered with ``context``."""
    return environment().get_template(template).render(**context)


def markup(html: str) -> Any:
    """Trusted HTML (built by pipespec, its text escaped): inserted as is."""
    import markupsafe

    return markupsafe.Markup(html)


def report_paths(path: str | os.PathLike[str]) -> tuple[Path, Path]:
    """``FILE.json`` and ``FILE.html`` for ``--report FILE`` (either suffix, or none)."""
    path = Path(path)
    base = path.with_suffix("") if path.suffix.lower() in (".json", ".html", ".htm") else path
    return base.with_name(base.name + ".json"), base.with_name(base.name + ".html")
