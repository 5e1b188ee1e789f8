"""Catalog templates (channel names, post-mortems) rendered with Jinja2's sandbox: a template can read
the values it is given and nothing else."""

from __future__ import annotations

from typing import Any

from jinja2 import StrictUndefined, TemplateError
from jinja2.sandbox import SandboxedEnvironment

_ENV = SandboxedEnvironment(undefined=StrictUndefined, autoescape=False, keep_trailing_newline=True,
                            trim_blocks=True, lstrip_blocks=True)


def check_template(source: str, where: str) -> None:
    """Raise ValueError (for the catalog's error report) when the template does not parse."""
    try:
        _ENV.parse(source)
    except TemplateError as exc:
        raise ValueError(f"{where} is not a valid template: {exc}") from None


def render(source: str, values: dict[str, Any]) -> str:
    return _ENV.from_string(source).render(**values)
