"""The catalog's reference, generated from its pydantic models: the JSON Schema (`opsbot schema`,
docs/opsbot.schema.json) and the Markdown reference (docs/catalog.md); `python -m bot.catalog_schema` rewrites both.

Not responsible for the models or their descriptions (`bot.catalog` and the modules it imports), nor for reading a
catalog (`bot.catalog_loading`).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import GenerateJsonSchema, NoDefault
from pydantic_core import core_schema

from bot.catalog_kinds import catalog_model
from bot.catalog_loading import load_catalog

ROOT = Path(__file__).resolve().parent.parent
SCHEMA_PATH = ROOT / "docs" / "opsbot.schema.json"
REFERENCE_PATH = ROOT / "docs" / "catalog.md"
REGENERATE = "python3 -m bot.catalog_schema"
# Where the reference finds an example of a key whose model gives none: the catalogs we ship (the demo's is left
# out: its URLs are filled in by `opsbot dev`).
EXAMPLE_CATALOGS = (ROOT / "opsbot.example.yml", *sorted(p for p in (ROOT / "examples").glob("*.yml")
                                                         if p.name != "demo.yml"))
EXAMPLE_WIDTH = 70  # longer values are left out of the table
SCHEMA_URL = "https://json-schema.org/draft/2020-12/schema"

# The sections of the reference, in the catalog's own order; a model reached from two places is described once,
# under the first. Each union's members (checks by type, steps by kind) get a heading named by their tag.
_UNION_GROUPS = {"checks": "Check", "target": "Target", "backup": "Backup", "steps": "Step",
                 "parameters": "Parameter", "maintenance": "Maintenance"}


class _WithFactoryDefaults(GenerateJsonSchema):
    """Pydantic's generator, also showing the defaults that a factory makes (`owners: []`, `nudge_severities`)."""

    def get_default_value(self, schema: core_schema.WithDefaultSchema) -> Any:
        factory = schema.get("default_factory")
        if factory is not None and not schema.get("default_factory_takes_data"):
            return factory()  # type: ignore[call-arg]
        return schema.get("default", NoDefault)


def json_schema() -> dict[str, Any]:
    """The catalog's JSON Schema (Draft 2020-12, as pydantic emits it), with the draft and a title named."""
    schema = catalog_model(every_kind=True).model_json_schema(schema_generator=_WithFactoryDefaults)
    return {"$schema": SCHEMA_URL, "title": "opsbot catalog (opsbot.yml)",
            "description": "The service catalog: services, their checks and targets, runbooks, incidents, schedules, "
                           "approvals and alerts. Reference: docs/catalog.md.",
            **{key: value for key, value in schema.items() if key != "title"}}


def schema_text() -> str:
    return json.dumps(json_schema(), indent=2, ensure_ascii=False) + "\n"


# --- the Markdown reference -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Section:
    name: str  # the $defs key
    title: str


def reference_text() -> str:
    schema = json_schema()
    seen = shipped_examples()
    defs: dict[str, Any] = schema["$defs"]
    sections = list(_sections(schema, defs))
    anchors = {section.name: _anchor(section.name) for section in sections}
    out = [
        "# The catalog (`opsbot.yml`) reference",
        "",
        f"<!-- Generated from the catalog's models by `{REGENERATE}`; do not edit by hand. -->",
        "",
        "Every key the catalog takes, generated from the same models that read it, so it cannot drift from the code.",
        "`opsbot check-config` checks a catalog against them; `opsbot schema` prints the JSON Schema",
        "([docs/opsbot.schema.json](opsbot.schema.json)), which editors use when the file starts with",
        "`# yaml-language-server: $schema=<path or URL of opsbot.schema.json>`.",
        "",
        "Conventions: durations are in the unit their key names (`_minutes`, `_days`, seconds when unnamed) and may be",
        "fractional (`0.5`); a key marked *required* has no default; unknown keys are refused. In check-config messages,",
        "runbook steps are numbered from 1 (`runbooks.deploy.steps[1]` is the first step), like in run messages;",
        "other lists count from 0. Secrets are never written in the catalog, only the names of environment variables",
        "that hold them (`*_env` keys).",
        "",
        "## Contents",
        "",
    ]
    out += [f"- [{section.title}](#{anchors[section.name]})" for section in sections]
    out.append("")
    out += _model_section("Catalog", "The top level", schema, anchors, {})
    for section in sections:
        out += _model_section(section.name, section.title, defs[section.name], anchors, seen.get(section.name, {}))
    return "\n".join(out).rstrip() + "\n"


def _sections(schema: dict[str, Any], defs: dict[str, Any]) -> Iterator[_Section]:
    """Every model reachable from the top, depth first in the order keys are declared, each once."""
    seen: set[str] = set()
    pending: list[tuple[str, str | None]] = []  # (def name, the key that led to it)

    def refs_of(node: Any) -> list[str]:
        if isinstance(node, dict):
            found = [node["$ref"].rsplit("/", 1)[-1]] if "$ref" in node else []
            for key, value in node.items():
                if key not in ("discriminator", "default", "examples"):
                    found += refs_of(value)
            return found
        if isinstance(node, list):
            return [ref for item in node for ref in refs_of(item)]
        return []

    def visit(name: str, via: str | None) -> Iterator[_Section]:
        if name in seen:
            return
        seen.add(name)
        model = _body(defs[name])
        yield _Section(name, _title(name, model, via))
        for key, prop in model.get("properties", {}).items():
            for ref in refs_of(prop):
                yield from visit(ref, key)

    for key, prop in schema.get("properties", {}).items():
        pending += [(ref, key) for ref in refs_of(prop)]
    for name, via in pending:
        yield from visit(name, via)


def _body(model: dict[str, Any]) -> dict[str, Any]:
    """The object a definition describes; one that also takes a shorthand (a bare cron string) is an anyOf."""
    if "properties" in model:
        return model
    return next((member for member in model.get("anyOf", []) if "properties" in member), model)


def _title(name: str, model: dict[str, Any], via: str | None) -> str:
    tag_key = next((k for k in ("type", "kind") if "const" in model.get("properties", {}).get(k, {})), None)
    if tag_key is not None and via in _UNION_GROUPS:
        return f"{_UNION_GROUPS[via]} `{tag_key}: {model['properties'][tag_key]['const']}`"
    if via is not None:
        return f"`{via}`: {name}"
    return name


def _anchor(name: str) -> str:
    return f"def-{name.lower()}"


def _model_section(name: str, title: str, model: dict[str, Any], anchors: dict[str, str],
                   seen: dict[str, Any]) -> list[str]:
    heading = "## The top level" if name == "Catalog" else f"### {title}"
    out = [f'<a id="{_anchor(name)}"></a>', "", heading, ""]
    shorthands = [m for m in model.get("anyOf", []) if "properties" not in m]
    model = _body(model)
    if model.get("description"):
        out += [_oneline(model["description"]), ""]
    out += [f"Also written as {_type_words(m, anchors)}: {_oneline(m.get('description', ''))}." for m in shorthands]
    out += [""] if shorthands else []
    properties: dict[str, Any] = model.get("properties", {})
    required = set(model.get("required", []))
    if not properties:
        out += [f"Type: {_type_words(model, anchors)}.", ""]
        return out
    out += ["| Key | Type | Default | Limits | Meaning | Example |", "|---|---|---|---|---|---|"]
    for key, prop in properties.items():
        default = "*required*" if key in required else _value(prop["default"]) if "default" in prop else "none"
        cells = [f"`{key}`", _type_words(prop, anchors), default, _limits(prop),
                 _oneline(prop.get("description", "")), _example(prop, seen.get(key, _NONE))]
        out.append("| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |")
    out.append("")
    return out


def _oneline(text: str) -> str:
    return " ".join(text.split())


def _value(value: Any) -> str:
    if value is None:
        return "none"
    text = json.dumps(value, ensure_ascii=False)
    return f"`{text}`" if len(text) <= 60 or not isinstance(value, dict | list) else "each key's own default"


_WORDS = {"string": "text", "integer": "whole number", "number": "number", "boolean": "true or false",
          "null": "none"}


def _type_words(prop: dict[str, Any], anchors: dict[str, str]) -> str:
    if "$ref" in prop:
        name = prop["$ref"].rsplit("/", 1)[-1]
        return f"[{name}](#{anchors.get(name, _anchor(name))})"
    if "const" in prop:
        return f"`{json.dumps(prop['const'])}`"
    if "enum" in prop:
        return "one of " + ", ".join(f"`{value}`" for value in prop["enum"])
    for union in ("oneOf", "anyOf"):
        if union in prop:
            members = [m for m in prop[union] if m.get("type") != "null"]
            words = " or ".join(dict.fromkeys(_type_words(m, anchors) for m in members))
            if "discriminator" in prop:
                words = f"one of ({words}), chosen by `{prop['discriminator']['propertyName']}`"
            return words
    kind = prop.get("type")
    if kind == "array":
        return "list of " + _type_words(prop.get("items", {}), anchors)
    if kind == "object":
        values = prop.get("additionalProperties")
        return f"mapping of names to {_type_words(values, anchors)}" if isinstance(values, dict) else "mapping"
    if kind == "string" and prop.get("format"):
        return f"text ({prop['format']})"
    return _WORDS.get(str(kind), "any value")


_LIMITS = (("minimum", "≥ {}"), ("exclusiveMinimum", "> {}"), ("maximum", "≤ {}"), ("exclusiveMaximum", "< {}"),
           ("minLength", "at least {} character{s}"), ("maxLength", "at most {} character{s}"),
           ("minItems", "at least {} item{s}"), ("maxItems", "at most {} item{s}"), ("pattern", "matches `{}`"))


def _limits(prop: dict[str, Any]) -> str:
    found: list[str] = []

    def collect(node: dict[str, Any]) -> None:
        found.extend(words.format(node[key], s="" if node[key] == 1 else "s") for key, words in _LIMITS if key in node)
        for union in ("anyOf", "oneOf"):
            for member in node.get(union, []):
                collect(member)
        if isinstance(node.get("items"), dict):
            collect(node["items"])

    collect(prop)
    return "; ".join(dict.fromkeys(found))


_NONE = object()


def _example(prop: dict[str, Any], seen: Any) -> str:
    examples = prop.get("examples") or ([] if seen is _NONE else [seen])
    shown = [json.dumps(example, ensure_ascii=False) for example in examples[:2]]
    return "; ".join(f"`{text}`" for text in shown if len(text) <= EXAMPLE_WIDTH)


def shipped_examples() -> dict[str, dict[str, Any]]:
    """The first value each model's key has in the shipped catalogs, by model name (its $defs key) and key."""
    found: dict[str, dict[str, Any]] = {}

    def walk(value: Any) -> None:
        if isinstance(value, BaseModel):
            dumped = value.model_dump(mode="json", by_alias=True, exclude_unset=True)
            mine = found.setdefault(type(value).__name__, {})
            for name, field in type(value).model_fields.items():
                key = field.alias or name
                if key in dumped:
                    mine.setdefault(key, dumped[key])
                    walk(getattr(value, name))
        elif isinstance(value, dict):
            for item in value.values():
                walk(item)
        elif isinstance(value, list | tuple):
            for item in value:
                walk(item)

    for path in EXAMPLE_CATALOGS:
        walk(load_catalog(path))
    return found


# --- regenerating and checking the checked-in files ---------------------------------------------------------------


def generated() -> dict[Path, str]:
    """The files this module writes, with their content."""
    return {SCHEMA_PATH: schema_text(), REFERENCE_PATH: reference_text()}


def stale() -> list[Path]:
    """The checked-in files that differ from what the models generate now."""
    return [path for path, text in generated().items()
            if not path.exists() or path.read_text(encoding="utf-8") != text]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog=REGENERATE, description="regenerate docs/catalog.md and docs/opsbot.schema.json")
    parser.add_argument("--check", action="store_true", help="only say whether they are up to date (exit 1 if not)")
    args = parser.parse_args(argv)
    if args.check:
        out_of_date = stale()
        for path in out_of_date:
            print(f"{path.relative_to(ROOT)} is out of date: run `{REGENERATE}`", file=sys.stderr)
        return 1 if out_of_date else 0
    for path, text in generated().items():
        path.write_text(text, encoding="utf-8")
        print(f"wrote {path.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
