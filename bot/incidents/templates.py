"""Catalog templates (channel names, post-mortems, alert routes' parameters) rendered with Jinja2's sandbox: a
template can read the values it is given and nothing else. Not responsible for which values a template gets.

Jinja2 (about 2 MB) is imported the first time a template is checked or rendered (`bot.adapters.module`), so a
replica whose catalog sets no template holds it only once it declares an incident.
"""

from __future__ import annotations

from functools import cache
from typing import TYPE_CHECKING, Any

from bot import adapters

if TYPE_CHECKING:
    from jinja2.sandbox import SandboxedEnvironment


@cache
def _env() -> SandboxedEnvironment:
    jinja2 = adapters.module("jinja2")
    sandbox: SandboxedEnvironment = adapters.module("jinja2.sandbox").SandboxedEnvironment(
        undefined=jinja2.StrictUndefined, autoescape=False, keep_trailing_newline=True, trim_blocks=True,
        lstrip_blocks=True)
    return sandbox


def check_template(source: str, where: str) -> None:
    """Raise ValueError (for the catalog's error report) when the template does not parse."""
    env = _env()
    try:
        env.parse(source)
    except adapters.module("jinja2").TemplateError as exc:
        raise ValueError(f"{where} is not a valid template: {exc}") from None


def render(source: str, values: dict[str, Any]) -> str:
    """`source` rendered with `values`; raises what Jinja2 raises (its `TemplateError`s, or whatever the template's
    own expressions raise)."""
    return _env().from_string(source).render(**values)
