"""The catalog loads the check and step kinds it names and no others; every kind is still one name away."""

from __future__ import annotations

import importlib
import json
import pkgutil
import subprocess
import sys
import typing
from pathlib import Path

import pytest

from bot import checks
from bot.catalog_kinds import catalog_model
from bot.catalog_loading import CatalogInvalid, parse_catalog
from bot.checks.base import CheckSpec
from bot.runs.steps.base import REGISTRY, kind_names

ROOT = Path(__file__).resolve().parent.parent

SMALL = """\
services:
  api:
    environment: production
    checks:
      - {type: http, url: "http://127.0.0.1:9/health"}
      - {type: tcp, host: 127.0.0.1, port: 9}
runbooks:
  pause:
    services: [api]
    steps:
      - {kind: wait, seconds: 1}
"""

LARGER = SMALL.replace("      - {type: tcp, host: 127.0.0.1, port: 9}\n",
                       "      - {type: tcp, host: 127.0.0.1, port: 9}\n      - {type: redis, url: 'redis://127.0.0.1:9'}\n")

# Run in a fresh interpreter: this one has imported every kind (other tests, the schema) long ago.
PROBE = """
import json, sys
from bot.catalog_loading import CatalogInvalid, parse_catalog
from bot.checks.base import CheckSpec
import bot.app, handlers

def kinds():
    return sorted(name.rsplit(".", 1)[1] for name in sys.modules
                  if name.startswith(("bot.checks.", "bot.runs.steps.")) and not name.rsplit(".", 1)[1].startswith("_"))

said = {"start": kinds()}
parse_catalog(sys.argv[1])
said["small"] = kinds()
try:
    parse_catalog(sys.argv[1].replace("type: tcp", "type: tpc"))
except CatalogInvalid as exc:
    said["typo"] = [problem.message for problem in exc.problems]
said["after typo"] = kinds()
parse_catalog(sys.argv[2])
said["larger"] = kinds()
print(json.dumps(said))
"""


def test_a_catalog_loads_only_the_kinds_it_names_and_a_typo_still_hears_every_kind() -> None:
    result = subprocess.run([sys.executable, "-c", PROBE, SMALL, LARGER], cwd=ROOT, capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 0, result.stderr
    said = json.loads(result.stdout)
    # The app and its handlers import the parts the kinds share (helpers, the Last errors button's key) and the one
    # kind a service's settings name (`maintenance:`); of the check kinds, none.
    shared = {"base", "hosts", "last_errors", "maintenance"}
    assert set(said["start"]) <= shared
    assert set(said["small"]) - set(said["start"]) == {"http", "tcp", "wait"}
    assert said["typo"] == [f"unknown type 'tpc'; did you mean `tcp`? (valid: {', '.join(checks.KINDS)})"]
    assert said["after typo"] == said["small"]
    assert set(said["larger"]) - set(said["small"]) == {"redis"}


def test_the_model_is_reused_until_a_catalog_names_a_new_kind() -> None:
    first = catalog_model({"services": {"api": {"checks": [{"type": "http"}]}}})
    assert catalog_model({"services": {"web": {"checks": [{"type": "http"}]}}}) is first
    assert catalog_model({"services": {"web": {"checks": [{"type": "nonsense"}, "not a mapping"]}}}) is first
    grown = catalog_model({"runbooks": {"r": {"steps": [{"kind": "prune"}]}}, "services": []})
    assert grown is catalog_model({"services": {"api": {"checks": [{"type": "http"}]}}})  # it only grows
    every = catalog_model(every_kind=True)
    assert catalog_model(None) is every


def test_each_loaded_catalog_is_validated_by_its_kinds_models() -> None:
    catalog = parse_catalog(LARGER)
    assert [type(check).__name__ for check in catalog.services["api"].checks] == ["HttpCheck", "TcpCheck", "RedisCheck"]
    assert type(catalog.runbooks["pause"].steps[0]).__name__ == "WaitStep"
    with pytest.raises(CatalogInvalid) as caught:
        parse_catalog(SMALL.replace("kind: wait", "kind: wiat"))
    assert f"(valid: {', '.join(kind_names())})" in str(caught.value)


def test_the_registry_names_every_kind_without_importing_and_imports_one_when_asked() -> None:
    probe = ("import sys\nfrom bot.runs.steps.base import REGISTRY, kind_names\n"
             "print('prune' in REGISTRY, 'bot.runs.steps.prune' in sys.modules, 'nope' in REGISTRY)\n"
             "print(REGISTRY['prune'].name, 'bot.runs.steps.prune' in sys.modules)\n"
             "print(list(REGISTRY) == list(kind_names()), len(REGISTRY) == len(kind_names()))")
    result = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split("\n")[:3] == ["True False False", "prune True", "True True"]
    with pytest.raises(KeyError):
        REGISTRY["nope"]
    assert kind_names()[:3] == ("backup", "check", "collect-logs")  # the modules' order: the schema's too


def test_every_check_module_is_listed_by_the_type_its_model_takes() -> None:
    found = {}
    for module in pkgutil.iter_modules(checks.__path__):
        if module.name.startswith("_") or module.name == "base":
            continue
        loaded = importlib.import_module(f"bot.checks.{module.name}")
        for value in vars(loaded).values():
            if (isinstance(value, type) and issubclass(value, CheckSpec) and value.__module__ == loaded.__name__
                    and "type" in value.model_fields):
                [tag] = typing.get_args(value.model_fields["type"].annotation)
                found[tag] = (module.name, value.__name__)
    assert found == checks.KINDS
    assert all(checks.model(kind).__name__ == name for kind, (_, name) in checks.KINDS.items())
