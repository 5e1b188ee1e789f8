"""Helpers for the `opsbot import` tests: a runbook written inline → its draft, the draft's YAML as data, and the
draft through the catalog loader (every test's draft must load)."""

from __future__ import annotations

import textwrap
from typing import Any

import yaml

from bot.catalog import Catalog
from bot.catalog_loading import parse_catalog
from bot.importing.draft import Draft, import_runbook, render
from bot.runs.steps.base import PARAM_REFERENCE


def runbook(*sections: tuple[str, str]) -> str:
    """A Markdown runbook: each (title, bash) a `##` heading and one ```bash block."""
    parts = ["# Runbook"]
    for title, code in sections:
        parts += [f"## {title}", "```bash", textwrap.dedent(code).strip("\n"), "```"]
    return "\n".join(parts) + "\n"


def imported(text: str, services: tuple[str, ...] = ()) -> tuple[Draft, dict[str, Any], Catalog]:
    """The draft of `text`, its YAML as data, and the catalog the loader reads from it."""
    draft = import_runbook(text, "ops.md", services)
    rendered = render(draft)
    return draft, yaml.safe_load(rendered), parse_catalog(rendered, "draft.yml")


def script(code: str, services: tuple[str, ...] = ()) -> tuple[Draft, dict[str, Any], Catalog]:
    return imported(runbook(("Procedure", code)), services)


def checks(data: dict[str, Any], service: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = data["services"][service].get("checks", [])
    return found


def steps(data: dict[str, Any], name: str = "procedure") -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = data["runbooks"][name]["steps"]
    return found


def kinds(data: dict[str, Any], name: str = "procedure") -> list[tuple[str, str | None]]:
    return [(step["kind"], step.get("service")) for step in steps(data, name)]


def unexpanded(data: dict[str, Any] | None) -> list[str]:
    """What a draft copied from the shell without resolving it: every field of a check, a target, a backup or a
    non-manual step that holds `$` or a backtick (a manual step's text is the runbook's, verbatim, and a step's
    `name` is the comment above it, a label), and every `{{ params.x }}` a runbook uses but does not declare."""
    found: list[str] = []
    for name, service in ((data or {}).get("services") or {}).items():
        found += [f"services.{name}.{path}: {value!r}" for path, value in _shell_text(service)]
    for name, book in ((data or {}).get("runbooks") or {}).items():
        for index, step in enumerate(book["steps"]):
            if step["kind"] != "manual":
                fields = {key: value for key, value in step.items() if key != "name"}
                found += [f"runbooks.{name}.steps[{index}].{path}: {value!r}" for path, value in _shell_text(fields)]
        used = set(PARAM_REFERENCE.findall(yaml.safe_dump(book["steps"])))
        found += [f"runbooks.{name}: {{{{ params.{parameter} }}}} is not declared"
                  for parameter in sorted(used - set(book.get("parameters") or {}))]
    return found


def _shell_text(value: Any, path: str = "") -> list[tuple[str, str]]:
    if isinstance(value, str):
        return [(path, value)] if "$" in value or "`" in value else []
    if isinstance(value, dict):
        return [found for key, item in value.items() for found in _shell_text(item, f"{path}.{key}".lstrip("."))]
    if isinstance(value, list):
        return [found for index, item in enumerate(value) for found in _shell_text(item, f"{path}[{index}]")]
    return []
