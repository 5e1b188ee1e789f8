"""`opsbot import`: a shell word in a step's or a check's field is literal text, the value the script assigned, or a
runbook parameter where the field takes one (`registry/app:{{ params.version }}`) — never a `$VAR`, `$(…)` or
backtick copied into the draft; what cannot be resolved stays a manual step that says why."""

from __future__ import annotations

from typing import Any

import pytest

from bot.importing.draft import import_runbook
from bot.importing.shell import statements
from bot.importing.variables import Accepts, Variables
from bot.importing.words import Word
from tests.imports import checks, runbook, script, steps, unexpanded


def _variables(code: str) -> Variables:
    """What a script's assignments (and captured outputs) leave its variables holding, as the importer reads them."""
    variables = Variables()
    for statement in statements(code, 1):
        for name, word in statement.assignments_only:
            variables.assign(name, word)
        if statement.captures:
            variables.captured(statement.captures, statement.text)
    return variables


def _word(written: str) -> Word:
    [statement] = statements(f"cmd {written}", 1)
    return statement.commands[0].argv[1]


@pytest.mark.parametrize(("code", "written", "accepts", "options", "value", "parameters"), [
    # A variable named like the procedure's input is a parameter, its assignment the default; the tag's type.
    ("VERSION=1.4.2", "registry/app:$VERSION", Accepts.TEMPLATE, {"image": True}, "registry/app:{{ params.version }}",
     {"version": {"type": "image_tag", "description": "the script's $VERSION", "default": "1.4.2"}}),
    # Part of a longer value and not an input: its value (a registry), while the tag stays the input.
    ("REGISTRY=registry.example.com\nTAG=${1:-2.0}", '"$REGISTRY/app:${TAG}"', Accepts.TEMPLATE, {"image": True},
     "registry.example.com/app:{{ params.tag }}",
     {"tag": {"type": "image_tag", "description": "the script's argument $TAG", "default": "2.0"}}),
    # A field that takes no parameter (a URL) gets the value the script set.
    ("HOST=db01", "http://$HOST:8080/health", Accepts.TEXT, {}, "http://db01:8080/health", {}),
    # Numbers: the script's argument, named for the field; an assignment's default; an integer parameter each.
    ("", "$1", Accepts.NUMBER, {"hint": "replicas"}, "{{ params.replicas }}",
     {"replicas": {"type": "integer", "description": "the script's argument $1"}}),
    ("REPLICAS=${1:-3}", '"$REPLICAS"', Accepts.NUMBER, {}, "{{ params.replicas }}",
     {"replicas": {"type": "integer", "description": "the script's argument $REPLICAS", "default": 3, "max": 100}}),
    ("WAIT=30", "$WAIT", Accepts.NUMBER, {"least": 1}, "{{ params.wait }}",
     {"wait": {"type": "integer", "description": "the script's $WAIT", "min": 1, "default": 30, "max": 300}}),
    ("", "12", Accepts.NUMBER, {}, 12, {}),
    # An argv element: a whole variable is a parameter; one inside a word is filled in.
    ("DAYS=30", "--days=$DAYS", Accepts.ELEMENT, {}, "--days=30", {}),
    ("HOST=${HOST:-localhost}", "$HOST", Accepts.ELEMENT, {}, "{{ params.host }}",
     {"host": {"type": "string", "description": "the script's $HOST", "default": "localhost"}}),
    ('ROOT=/srv\nDIR="$ROOT/backups"', "$DIR/db.sql", Accepts.TEXT, {}, "/srv/backups/db.sql", {}),
    ("", "'literal text'", Accepts.TEXT, {}, "literal text", {}),
])
def test_a_word_becomes_text_the_scripts_value_or_a_parameter_by_what_the_field_takes(
        code: str, written: str, accepts: Accepts, options: dict[str, Any], value: str | int,
        parameters: dict[str, Any]) -> None:
    resolved = _variables(code).value(_word(written), accepts, **options)
    assert (resolved.value, resolved.parameters, resolved.why) == (value, parameters, "")


@pytest.mark.parametrize(("code", "written", "accepts", "why"), [
    ("", "http://$HOST:8080/health", Accepts.TEXT, "$HOST is not set in the runbook"),
    ("", "/backups/$(date +%F)", Accepts.TEXT, "$(date +%F) is worked out when the script runs"),
    ("", "`hostname`", Accepts.ELEMENT, "`hostname` is worked out when the script runs"),
    ('DIR="/backups/$(date +%F)"', "$DIR/db.sql", Accepts.TEXT,
     "$DIR holds '/backups/$(date +%F)': $(date +%F) is worked out"),
    ("STAMP=$(date +%s)", "/tmp/$STAMP", Accepts.TEXT, "$STAMP holds the output of `STAMP=$(date +%s)`"),
    ("DB_TOKEN=abc", "$DB_TOKEN", Accepts.ELEMENT, "reads the secret $DB_TOKEN"),
    ("", "'$HOME/x'", Accepts.ELEMENT, "holds a `$` that is no variable the script sets"),
    ('N="$1"', "--days=$N", Accepts.ELEMENT, "a parameter is a whole argv element"),
    ('HOST="$1"', "http://$HOST/", Accepts.TEXT, "parameters never reach a URL"),
    ("N=many", "$N", Accepts.NUMBER, "$N is 'many', not a whole number"),
    ("", "5m", Accepts.NUMBER, "`5m` is not a whole number"),
    # Template tags the runbook writes (a Go template, or opsbot's own) are its text: the catalog would fill them in.
    ("VERSION=1.2", "'{{ params.version }}'", Accepts.ELEMENT, "holds a template tag `{{`"),
    ("", "'{{.State.Health.Status}}'", Accepts.TEXT, "holds a template tag `{{`"),
    ("FORMAT='{{.Names}}'", "--format=$FORMAT", Accepts.ELEMENT, "holds a template tag `{{`"),
])
def test_what_is_not_written_out_is_never_copied_and_says_why(code: str, written: str, accepts: Accepts,
                                                              why: str) -> None:
    resolved = _variables(code).value(_word(written), accepts)
    assert resolved.value is None and resolved.parameters == {}
    assert why in resolved.why


def test_the_image_tag_of_a_deploy_is_a_parameter_defaulting_to_the_scripts_version() -> None:
    _, data, catalog = script("""
        # Deploy a version
        VERSION=1.4.2
        kubectl set image deployment/app app=registry/app:$VERSION
    """)
    assert steps(data) == [{"kind": "deploy", "service": "app", "image": "registry/app:{{ params.version }}"}]
    assert data["runbooks"]["procedure"]["parameters"] == {
        "version": {"type": "image_tag", "description": "the script's $VERSION", "default": "1.4.2"}}
    assert catalog.runbooks["procedure"].parameters["version"].type == "image_tag"
    assert unexpanded(data) == []


def test_a_urls_host_from_a_variable_is_its_value_and_an_unset_one_leaves_the_command_to_a_person() -> None:
    draft, data, _ = script("""
        HOST=db01
        curl -f http://$HOST:8080/health
        curl -f "http://${API_HOST}/ready"
    """)
    assert checks(data, "db01") == [{"type": "http", "name": "http /health", "url": "http://db01:8080/health"}]
    assert steps(data)[1] == {"kind": "manual", "instructions": 'curl -f "http://${API_HOST}/ready"'}
    unset = next(item for item in draft.mapped if "API_HOST" in item.text)
    assert unset.manual is not None and "$API_HOST is not set in the runbook" in unset.manual
    assert unexpanded(data) == []


def test_replicas_and_a_pause_from_the_scripts_arguments_are_integer_parameters() -> None:
    _, data, catalog = script("""
        WAIT=${2:-30}
        kubectl -n shop scale deployment/checkout --replicas=$1
        sleep "$WAIT"
    """)
    assert steps(data) == [{"kind": "scale", "service": "checkout", "replicas": "{{ params.replicas }}"},
                           {"kind": "wait", "seconds": "{{ params.wait }}"}]
    assert data["runbooks"]["procedure"]["parameters"] == {
        "replicas": {"type": "integer", "description": "the script's argument $1"},
        "wait": {"type": "integer", "description": "the script's argument $WAIT", "default": 30, "max": 300}}
    assert {name: parameter.type for name, parameter in catalog.runbooks["procedure"].parameters.items()} == {
        "replicas": "integer", "wait": "integer"}


def test_a_path_made_by_date_is_not_copied_and_the_step_says_why() -> None:
    draft, data, _ = script("""
        docker compose exec -T app ls /backups/$(date +%F)
        tar czf /backups/logs.tgz /var/log/app/`date +%F`
    """)
    assert [step["kind"] for step in steps(data)] == ["manual"]
    reasons = [item.manual for item in draft.mapped]
    assert reasons == ["an exec step's argv: $(date +%F) is worked out when the script runs: not copied",
                       ("tar of paths that are not written out: `date +%F` is worked out when the script runs: not "
                        "copied")]
    assert unexpanded(data) == []


def test_secrets_in_a_field_are_never_parameters_and_names_stay_environment_variables() -> None:
    draft, data, _ = script("""
        API_TOKEN=abc123
        docker compose exec -T app ./manage.py sync --token "$API_TOKEN"
    """)
    assert steps(data) == [{"kind": "manual",
                            "instructions": 'docker compose exec -T app ./manage.py sync --token "$API_TOKEN"'}]
    assert "parameters" not in data["runbooks"]["procedure"] and "abc123" not in str(data)
    assert any("reads the secret $API_TOKEN" in (item.manual or "") for item in draft.mapped)


def test_a_variable_set_in_one_block_and_the_namespace_and_service_it_names() -> None:
    draft = import_runbook(runbook(("Roll", """
        NS=shop
        APP=checkout
        kubectl -n "$NS" rollout restart deployment/$APP
        kubectl -n $OTHER rollout restart deployment/api
    """)), "ops.md")
    restart = next(item for item in draft.mapped if "$APP" in item.text)
    assert restart.steps == ({"kind": "restart", "service": "checkout"},)
    assert restart.found.targets[0].target == {"type": "kubernetes", "namespace": "shop", "deployment": "checkout"}
    other = next(item for item in draft.mapped if "$OTHER" in item.text)
    assert other.manual == "restart: the namespace $OTHER is not written out"


def test_a_template_tag_written_in_the_runbook_never_becomes_a_parameter_of_the_step() -> None:
    draft, data, _ = script("""
        VERSION=1.2
        docker exec app echo '{{ params.version }}'
    """)
    assert steps(data) == [{"kind": "manual", "instructions": "docker exec app echo '{ { params.version } }'"}]
    assert "holds a template tag" in (draft.mapped[-1].manual or "")
