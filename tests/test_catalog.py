"""Catalog validation: every problem reported with its YAML path, its line and a reason a person can act on."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.catalog_loading import CatalogInvalid, load_catalog, parse_catalog
from bot.checks import KINDS
from bot.errors import UnknownService

ROOT = Path(__file__).resolve().parent.parent
# Every check kind's `type:`, in the order the catalog's error lists them.
CHECK_TYPES = ", ".join(KINDS)


def problems(text: str) -> list[str]:
    with pytest.raises(CatalogInvalid) as caught:
        parse_catalog(text, "opsbot.yml")
    return str(caught.value).splitlines()


def test_the_example_catalog_is_valid() -> None:
    catalog = load_catalog(ROOT / "opsbot.example.yml")
    assert catalog.service_names == ["api", "cache", "db", "host"]
    assert catalog.services["api"].checks[1].label == "api port"
    assert catalog.secret_envs() == [("services.db.checks[0]", "OPSBOT_DB_URL")]


def test_bad_value_is_reported_with_path_line_and_reason() -> None:
    text = """\
services:
  api:
    environment: production
    checks:
      - type: http
        url: http://127.0.0.1/healthz
      - type: tcp
        host: 127.0.0.1
        port: 80
        timeout: 0
"""
    assert problems(text) == ["opsbot.yml:10: services.api.checks[1].timeout: must be > 0"]


def test_every_problem_is_reported_at_once() -> None:
    text = """\
services:
  api:
    environmnt: production
    checks:
      - type: htp
  db:
    environment: production
    checks:
      - {type: postgres}
"""
    assert problems(text) == [
        "opsbot.yml:2: services.api.environment: is required",
        ("opsbot.yml:3: services.api.environmnt: unknown key; did you mean `environment`? (valid: approvals, backup, channel, "
         "checks, description, environment, maintenance, owners, runbooks, target)"),
        f"opsbot.yml:5: services.api.checks[0]: unknown type 'htp'; did you mean `http`? (valid: {CHECK_TYPES})",
        "opsbot.yml:9: services.db.checks[0]: give exactly one of `dsn` and `dsn_env`",
    ]


@pytest.mark.parametrize(
    ("check", "message"),
    [
        ("{type: postgres, dsn: 'postgresql://app:hunter2@db/app'}", "`dsn` must not contain a password"),
        ("{type: redis, url: 'redis://:hunter2@cache:6379'}", "`url` must not contain a password"),
        ("{type: http, url: 'https://user:hunter2@example.com/'}", "must not contain a password"),
        ("{type: postgres, dsn_env: 'not a name'}", "is not an environment variable name"),
    ],
)
def test_secrets_cannot_be_written_inline(check: str, message: str) -> None:
    [problem] = problems(f"services:\n  db:\n    environment: prod\n    checks:\n      - {check}\n")
    assert message in problem and "hunter2" not in problem


def test_duplicate_keys_are_refused_not_silently_overridden() -> None:
    text = "services:\n  api:\n    environment: a\n  api:\n    environment: b\n"
    assert problems(text) == ["opsbot.yml:4: not valid YAML: duplicate key 'api' (first on line 2)"]


@pytest.mark.parametrize(
    ("name", "reason"),
    [("API", "not a valid service name"), ("all", "is reserved"), ("-x", "not a valid service name")],
)
def test_service_names_people_can_type(name: str, reason: str) -> None:
    [problem] = problems(f"services:\n  '{name}':\n    environment: prod\n")
    assert f"services.{name}: " in problem and reason in problem


def test_owners_must_be_slack_ids() -> None:
    [problem] = problems("services:\n  api:\n    environment: prod\n    owners: [U012AB3CD, '@alice']\n")
    assert "services.api.owners: '@alice' is not a Slack user ID" in problem


def test_two_checks_with_one_label_are_refused() -> None:
    text = ("services:\n  api:\n    environment: prod\n    checks:\n"
            "      - {type: tcp, host: a, port: 1, name: x}\n      - {type: tcp, host: b, port: 2, name: x}\n")
    assert "two checks are named 'x'" in problems(text)[0]


def test_thresholds_must_be_ordered() -> None:
    text = ("services:\n  h:\n    environment: prod\n    checks:\n"
            "      - {type: disk, paths: [/], usage_percent: {warning: 95, critical: 90}}\n")
    assert problems(text) == ["opsbot.yml:5: services.h.checks[0].usage_percent: warning (95) must not be above critical (90)"]


def test_unknown_top_level_key_and_bad_yaml() -> None:
    assert "unknown key" in problems("service:\n  api: {}\n")[0]
    assert "not valid YAML" in problems("services: [unclosed\n")[0]
    assert "must be a mapping" in problems("- a\n- b\n")[0]


def test_missing_file_says_how_to_point_at_one(tmp_path: Path) -> None:
    with pytest.raises(CatalogInvalid, match="OPSBOT_CONFIG"):
        load_catalog(tmp_path / "nope.yml")


def test_an_empty_catalog_is_valid() -> None:
    assert parse_catalog("").services == {}


def test_unknown_service_lookup_suggests_the_closest_name() -> None:
    catalog = parse_catalog("services:\n  payments: {environment: prod}\n  search: {environment: prod}\n")
    with pytest.raises(UnknownService) as caught:
        catalog.service("paymnts")
    assert caught.value.suggestion == "payments"
    assert "`search`" in str(caught.value)


def test_messages_never_show_library_internals_and_number_steps_from_1() -> None:
    text = """\
health: {per_host: abc}
services:
  api:
    environment: prod
    owners: U123
    checks:
      - {type: http, url: http://api/, latency_ms: 5}
runbooks:
  r:
    services: [api]
    steps:
      - {kind: wait, seconds: 1}
      - {kind: check, service: api, attempts: 0}
"""
    found = problems(text)
    assert found == [
        "opsbot.yml:1: health.per_host: must be a whole number",
        "opsbot.yml:5: services.api.owners: must be a list",
        "opsbot.yml:7: services.api.checks[0].latency_ms: must be a mapping (key: value)",
        "opsbot.yml:13: runbooks.r.steps[2].attempts: must be >= 1",
    ]
    for internal in ("constrained-int", "function-after", "Thresholds", "Input should", "union_tag"):
        assert not any(internal in line for line in found), internal


def test_unset_environment_variables_are_said_once_with_the_count() -> None:
    from bot.catalog_loading import missing_envs

    used = [(f"runbooks.r.steps[{i}]", env) for i, env in enumerate(["A", "B", "C"] * 5, 1)]
    assert missing_envs(used, {}) == "3 environment variables are not set here: A, B, C — used by 15 steps"
    assert missing_envs(used, {"A": "x", "B": "x", "C": "x"}) is None
    assert missing_envs([("services.db.checks[0]", "DB")], {}) == "services.db.checks[0]: environment variable DB is not set here"
    mixed = missing_envs([("services.db.checks[0]", "DB"), ("services.db.backup", "DB")], {})
    assert mixed == "environment variable not set here: DB — used by 2 places (1 checks, 1 backups)"


# A service with a docker target and a runbook on it, whose steps follow.
UNDO_BASE = """\
services:
  db:
    environment: prod
    checks: [{type: tcp, host: db, port: 5432}]
    target: {type: docker, container: db}
runbooks:
  r:
    services: [db]
    steps:
"""


def test_the_no_undo_warning_ignores_steps_that_change_nothing_and_is_said_once_per_runbook() -> None:
    from bot.catalog_loading import catalog_warnings

    base = UNDO_BASE
    quiet = base + "      - {kind: wait, seconds: 1}\n      - {kind: check, service: db}\n      - {kind: restart, service: db}\n"
    assert catalog_warnings(parse_catalog(quiet)) == []
    loud = base + ("      - {kind: restart, service: db}\n      - {kind: wait, seconds: 1}\n"
                   "      - {kind: restart, service: db}\n      - {kind: restart, service: db}\n")
    assert catalog_warnings(parse_catalog(loud)) == [
        ("runbooks.r.steps: 2 steps have no undo: 1 (`restart`), 3 (`restart`); if a later step fails and rolls back, "
        "their changes stay")]


@pytest.mark.parametrize("step", [
    "{kind: wait, seconds: 1}",
    "{kind: check, service: db, checks: [tcp db:5432]}",
    "{kind: query, service: db, dsn_env: DB_URL, statement: SELECT 1}",
    "{kind: notify, text: starting}",
    "{kind: exec, service: db, command: [pg_isready], read_only: true}",
])
def test_check_config_says_nothing_about_undo_for_a_step_that_changes_nothing(step: str) -> None:
    from bot.catalog_loading import catalog_warnings

    # Each before a gate whose failure rolls back: a step that changed something would be warned about.
    runbook = UNDO_BASE + "      - STEP\n      - {kind: check, service: db}\n"
    assert catalog_warnings(parse_catalog(runbook.replace("STEP", step))) == []
    changing = catalog_warnings(parse_catalog(runbook.replace("STEP", "{kind: exec, service: db, command: [vacuumdb]}")))
    assert changing == [("runbooks.r.steps[1]: `exec` has no undo: if step 2 or a later one fails and rolls back, "
                         "this step's change stays")]


def test_a_value_no_member_of_a_union_takes_is_said_once_at_its_key() -> None:
    text = """\
services:
  api: {environment: prod}
runbooks:
  r:
    services: [api]
    steps:
      - {kind: http, url: "http://api/", json: {tags: [1]}}
      - {kind: scale, service: api, replicas: [1]}
"""
    assert problems(text) == [
        "opsbot.yml:7: runbooks.r.steps[1].json.tags: must be text, a whole number, a number or true or false",
        "opsbot.yml:8: runbooks.r.steps[2].replicas: must be a whole number or text",
    ]
