"""The catalog's generated reference: `opsbot schema`, docs/opsbot.schema.json and docs/catalog.md stay what the
models say, and the catalogs we ship validate against the schema editors use."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest
import yaml

from bot import catalog_schema
from bot.catalog_kinds import catalog_model
from bot.cli import main
from bot.runs.steps import REGISTRY

ROOT = Path(__file__).resolve().parent.parent
SHIPPED = [*sorted((ROOT / "examples").glob("*.yml")), ROOT / "opsbot.example.yml"]


def test_the_checked_in_schema_and_reference_are_what_the_models_generate() -> None:
    for path, text in catalog_schema.generated().items():
        checked_in = path.read_text(encoding="utf-8") if path.exists() else ""
        assert checked_in == text, (f"{path.relative_to(ROOT)} is out of date with the catalog's models: "
                                    f"run `{catalog_schema.REGENERATE}` and commit the result")


def test_opsbot_schema_prints_a_valid_draft_2020_12_schema(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["schema"]) == 0
    schema = json.loads(capsys.readouterr().out)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    jsonschema.Draft202012Validator.check_schema(schema)
    assert schema["$defs"]["CheckStep"]["properties"]["interval"]["description"]


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.name)
def test_every_shipped_catalog_validates_against_the_schema_and_names_it(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    assert text.splitlines()[0].startswith("# yaml-language-server: $schema="), "the editor modeline comes first"
    schema_ref = text.splitlines()[0].split("$schema=", 1)[1]
    assert (path.parent / schema_ref).resolve() == catalog_schema.SCHEMA_PATH
    errors = list(jsonschema.Draft202012Validator(catalog_schema.json_schema()).iter_errors(yaml.safe_load(text)))
    assert not errors, [f"{list(e.absolute_path)}: {e.message[:200]}" for e in errors]


def test_the_schema_takes_the_shorthands_the_models_take() -> None:
    validator = jsonschema.Draft202012Validator(catalog_schema.json_schema())
    shorthand = {"services": {"db": {"environment": "prod", "checks": [
        {"type": "http", "url": "http://db/", "expect_status": 204},
        {"type": "http-json", "url": "http://db/", "fields": {"status": "ok"}}],
        "backup": {"type": "directory", "paths": ["/srv"], "directory": "/b", "schedule": "0 2 * * *"}}}}
    assert not list(validator.iter_errors(shorthand))
    catalog_model(shorthand).model_validate(shorthand)  # and the models take it too
    assert list(validator.iter_errors({"services": {"db": {"environment": "prod", "colour": "red"}}}))


def test_the_reference_names_every_key_of_every_step_kind_and_check_type() -> None:
    reference = catalog_schema.reference_text()
    schema = catalog_schema.json_schema()
    for kind in REGISTRY:
        assert f"### Step `kind: {kind}`" in reference
    for name, model in schema["$defs"].items():
        body = catalog_schema._body(model)
        for key in body.get("properties", {}):
            assert f"| `{key}` |" in reference, (name, key)
    assert "| `retries` | whole number | `0` | ≥ 0; ≤ 5 |" in reference  # type in words, default, limits
