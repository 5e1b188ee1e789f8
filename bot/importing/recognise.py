"""One shell statement of a runbook → catalog steps of registered kinds, or a `manual` step and why.

Not responsible for runbooks as a whole (`bot.importing.draft`) nor for validating the steps (the catalog loader
judges them). Reads the parsed argv only: nothing is executed, and a value that is not a literal is never guessed.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, urlsplit

from bot.importing import secrets
from bot.importing.services import Services
from bot.importing.shell import Command, Statement

Step = dict[str, Any]  # one catalog step as YAML data
_DURATION = re.compile(r"^(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$")
_READ_SQL = re.compile(r"^\s*(select|with|show|explain(?!\s+analy[sz]e))\b", re.IGNORECASE)
_SHELLS = frozenset({"sh", "bash", "ash", "zsh", "psql", "mysql", "redis-cli", "mongo", "mongosh", "python", "python3",
                     "vi", "vim", "nano", "less", "top", "htop"})
_READ_ONLY = frozenset({"cat", "ls", "df", "du", "ps", "env", "printenv", "pg_isready", "uptime", "free", "whoami",
                        "id", "head", "tail", "grep", "stat", "find", "nproc", "date", "hostname"})
_REDIS_READS = frozenset({"ping", "info", "dbsize", "llen", "get", "exists", "ttl", "type", "memory", "slowlog",
                          "client", "config", "scan", "keys", "lrange", "hgetall", "scard", "zcard", "--scan",
                          "--bigkeys", "--stat", "--latency"})
_OUTPUT_VIEWS = frozenset({"head", "tail", "less", "more", "cat"})


@dataclass(frozen=True)
class Mapped:
    """What one statement became: steps, or a manual step's text and why; and what a person must decide."""

    first_line: int
    last_line: int
    text: str  # as written, with literal secrets replaced by `$NAME`
    comment: str
    steps: tuple[Step, ...] = ()
    manual: str | None = None  # why it is manual; None: recognised
    decisions: tuple[str, ...] = ()
    parameters: dict[str, dict[str, Any]] = field(default_factory=dict)
    session: bool = False  # it opens an interactive session: what follows in its block is typed into it

    @property
    def services(self) -> set[str]:
        return {step["service"] for step in self.steps if isinstance(step.get("service"), str)}


@dataclass(frozen=True)
class _Result:
    steps: tuple[Step, ...] = ()
    manual: str | None = None
    decisions: tuple[str, ...] = ()
    parameters: dict[str, dict[str, Any]] = field(default_factory=dict)
    session: bool = False  # it opens an interactive session: what follows in its block is typed into it


def _manual(why: str, *decisions: str) -> _Result:
    return _Result(manual=why, decisions=decisions)


def recognise(statement: Statement, services: Services) -> Mapped:
    found = secrets.found(statement)
    text = secrets.redact(statement.text, found)
    notes = [f"a literal secret was replaced by ${secret.env} and is not in the draft: set {secret.env} in opsbot's "
             "environment and name it in the catalog's `*_env` field" for secret in found]
    notes += [f"reads ${name}: in the catalog it is an environment variable named in a `*_env` field"
              for name in secrets.referenced(statement)]
    result = _statement(statement, services, bool(found))
    return Mapped(statement.first_line, statement.last_line, text, statement.comment, result.steps, result.manual,
                  tuple(notes) + result.decisions, result.parameters, result.session)


def _statement(statement: Statement, services: Services, has_secret: bool) -> _Result:
    if statement.complex:
        return _manual("a loop, condition, function or text bash does not parse as a plain command")
    if statement.assignments_only:
        return _manual("sets a shell variable: a runbook parameter or an environment variable, for a person to decide")
    if statement.heredoc:
        return _manual("feeds a here-document into a program: a session for a person")
    if not statement.commands:
        return _manual("no command")
    first, rest = statement.commands[0], statement.commands[1:]
    if not first.literal and first.program in ("", "$"):
        return _manual("the program itself is a variable")
    result = _command(first, statement, services)
    if result.manual is None and has_secret and any(step["kind"] == "exec" for step in result.steps):
        return _manual("the command carries a secret, and an exec step's argv would copy it")
    if result.manual is None and rest and not _only_views(rest) and not _pipeline_ok(first, rest):
        return _manual(f"its output goes through `{' | '.join(c.program for c in rest)}`: the pipeline as a whole "
                       "is a person's to follow (a check may express it: not imported by this slice)")
    return result


def _only_views(rest: tuple[Command, ...]) -> bool:
    return all(command.program in _OUTPUT_VIEWS for command in rest)


def _pipeline_ok(first: Command, rest: tuple[Command, ...]) -> bool:
    # A dump through a compressor is still the dump a backup step takes.
    return first.program in ("pg_dump", "pg_dumpall", "mysqldump") and all(c.program in ("gzip", "pigz", "zstd")
                                                                            for c in rest)


def _command(command: Command, statement: Statement, services: Services) -> _Result:
    program, words = command.program, command.words
    if program in ("docker", "podman") and len(words) > 1 and words[1] == "compose":
        return _compose(words[2:], command, statement, services)
    if program == "docker-compose":
        return _compose(words[1:], command, statement, services)
    if program in ("docker", "podman"):
        return _docker(words[1:], command, statement, services)
    if program == "kubectl":
        return _kubectl(words[1:], command, statement, services)
    return _tool(command, statement, services, container=None, inside=False)


def _target(name: str, services: Services) -> tuple[str | None, tuple[str, ...]]:
    resolved = services.resolve(name)
    return resolved.service, ((resolved.why,) if resolved.why else ())


def _per_service(kind: str, names: list[str], services: Services, **extra: Any) -> _Result:
    if not names:
        return _manual(f"{kind} of every service at once: name the services (one step each)")
    steps: list[Step] = []
    decisions: list[str] = []
    for name in names:
        service, why = _target(name, services)
        decisions += why
        if service is None:
            return _manual(f"{kind}: {why[0]}", *decisions)
        steps.append({"kind": kind, "service": service, **extra})
    return _Result(tuple(steps), decisions=tuple(decisions))


def _positionals(words: tuple[str, ...] | list[str], with_value: frozenset[str] = frozenset()) -> list[str]:
    found, skip = [], False
    for word in words:
        if skip:
            skip = False
        elif word.startswith("-"):
            skip = word in with_value
        else:
            found.append(word)
    return found


def _option(words: tuple[str, ...] | list[str], *names: str) -> str | None:
    for index, word in enumerate(words):
        for name in names:
            if word == name and index + 1 < len(words):
                return words[index + 1]
            if name.startswith("--") and word.startswith(name + "="):
                return word.split("=", 1)[1]
            if not name.startswith("--") and word.startswith(name) and len(word) > len(name):
                return word[len(name):]
    return None


def _minutes(since: str | None) -> float | None:
    match = _DURATION.match(since or "")
    if not since or not match or not any(match.groups()):
        return None
    hours, minutes, seconds = (int(part or 0) for part in match.groups())
    return max(hours * 60 + minutes + seconds / 60, 1)


_COMPOSE_GLOBAL = frozenset({"-f", "--file", "-p", "--project-name", "--env-file", "--profile"})


def _compose(words: tuple[str, ...], command: Command, statement: Statement, services: Services) -> _Result:
    rest = list(words)
    while rest and rest[0].startswith("-"):
        rest = rest[2:] if rest[0] in _COMPOSE_GLOBAL else rest[1:]
    if not rest:
        return _manual("docker compose without a subcommand")
    verb, args = rest[0], _positionals(rest[1:], frozenset({"-t", "--timeout", "--since", "--tail", "-n"}))
    if verb in ("restart", "stop", "start"):
        return _per_service(verb, args, services)
    if verb == "logs":
        return _logs(args, rest[1:], services)
    if verb == "exec":
        offset = len(command.argv) - len(rest) + 1
        inner = Command(command.argv[offset:], ())
        return _exec(inner.words, inner, statement, services,
                     frozenset({"-u", "--user", "-e", "--env", "-w", "--workdir", "--index"}), "--interactive",
                     compose=True)
    if verb == "run":
        return _manual(f"docker compose {verb}: name the container with `docker exec` or make it an exec step")
    return _manual(f"docker compose {verb}: no step kind does this (the catalog's deploy, rollback and checks may)")


def _logs(names: list[str], options: list[str] | tuple[str, ...], services: Services) -> _Result:
    extra: dict[str, Any] = {}
    minutes = _minutes(_option(options, "--since"))
    if minutes is not None:
        extra["minutes"] = minutes
    if len(names) != 1:
        return _manual("logs of several services or none: name one")
    return _per_service("collect-logs", names, services, **extra)


def _docker(words: tuple[str, ...], command: Command, statement: Statement, services: Services) -> _Result:
    if not words:
        return _manual("docker without a subcommand")
    verb, rest = words[0], words[1:]
    if verb == "container" and rest:
        verb, rest = rest[0], rest[1:]
    if verb in ("restart", "stop", "start"):
        return _per_service(verb, _positionals(rest, frozenset({"-t", "--time"})), services)
    if verb == "logs":
        return _logs(_positionals(rest, frozenset({"--since", "--tail", "-n", "--until"})), rest, services)
    if verb == "exec":
        return _exec(rest, command, statement, services,
                     frozenset({"-u", "--user", "-e", "--env", "-w", "--workdir", "--env-file"}), "--interactive")
    return _manual(f"docker {verb}: no step kind does this")


_KUBECTL_VALUE = frozenset({"-n", "--namespace", "-c", "--container", "-l", "--selector", "--context", "--tail",
                            "--since", "--replicas", "--to-revision", "-o", "--output", "--timeout"})


def _kubectl(words: tuple[str, ...], command: Command, statement: Statement, services: Services) -> _Result:
    args = _positionals(words, _KUBECTL_VALUE)
    if not args:
        return _manual("kubectl without a subcommand")
    verb = args[0]
    if verb == "rollout" and len(args) >= 3:
        name = _resource(args[2:])
        if args[1] == "restart":
            return _per_service("restart", [name], services)
        if args[1] == "undo":
            revision = _option(words, "--to-revision")
            extra = {"to": revision} if revision else {}
            return _per_service("rollback", [name], services, **extra)
        if args[1] == "status":
            return _per_service("check", [name], services)
    if verb == "scale" and len(args) >= 2:
        replicas = _option(words, "--replicas")
        if replicas is None or not replicas.isdigit():
            return _manual("kubectl scale without a literal --replicas: a parameter to decide")
        return _per_service("scale", [_resource(args[1:])], services, replicas=int(replicas))
    if verb == "set" and len(args) >= 4 and args[1] == "image":
        image = args[3].split("=", 1)[-1]
        return _per_service("deploy", [_resource(args[2:])], services, image=image)
    if verb == "logs" and len(args) >= 2:
        return _logs([_resource(args[1:])], words, services)
    if verb == "logs":
        selector = _option(words, "-l", "--selector")
        if selector and "=" in selector:
            return _logs([selector.split("=", 1)[1]], words, services)
    if verb == "exec":
        return _exec(words[1:], command, statement, services,
                     frozenset({"-n", "--namespace", "-c", "--container", "--context"}), "--stdin")
    return _manual(f"kubectl {verb}: no step kind does this")


def _resource(args: list[str]) -> str:
    """`deployment/x`, or `deployment x`: the name."""
    if "/" in args[0] or len(args) < 2:
        return args[0]
    return args[1]


def _exec(words: tuple[str, ...], command: Command, statement: Statement, services: Services,
          with_value: frozenset[str], interactive_flag: str, *, compose: bool = False) -> _Result:
    options: list[str] = []
    index = 0
    while index < len(words) and words[index].startswith("-") and words[index] != "--":
        options.append(words[index])
        if words[index] in with_value:
            options.append(words[index + 1] if index + 1 < len(words) else "")
            index += 1
        index += 1
    if index >= len(words):
        return _manual("exec without a container")
    name, inner_words = words[index], list(words[index + 1:])
    if inner_words[:1] == ["--"]:
        inner_words = inner_words[1:]
    # `docker compose exec` is interactive unless -T; docker and kubectl only with -i/-t.
    interactive = ("-T" not in options) if compose else any(opt in ("-it", "-ti", "-i", interactive_flag)
                                                             for opt in options)
    container = _option(options, "-c", "--container")
    inner_argv = command.argv[len(command.argv) - len(inner_words):] if inner_words else ()
    if not inner_argv:
        return _manual("exec without a command")
    inner = Command(tuple(inner_argv), ())
    return _tool(inner, statement, services, container=container, inside=True, name=name, interactive=interactive)


def _tool(command: Command, statement: Statement, services: Services, *, container: str | None, inside: bool,
          name: str | None = None, interactive: bool = False) -> _Result:
    """A program run on a host, or inside container `name`: a kind when one does what it does, else exec or manual."""
    program, words = command.program, list(command.words)
    host = name if inside else (_option(words, "-h", "--host") if program != "curl" else None)

    def on(kind: str, **extra: Any) -> _Result:
        if host is None:
            return _manual(f"{program}: no host or container names the service")
        return _per_service(kind, [host], services, **extra)

    if program == "pg_isready" or (program == "mysqladmin" and "ping" in words):
        return on("check")
    if program == "redis-cli" and _positionals(words[1:], frozenset({"-h", "-p", "-n", "-a"}))[:1] == ["ping"]:
        return on("check")
    if program in ("pg_dump", "pg_dumpall", "mysqldump"):
        return on("backup")
    if program == "pg_restore" or (program in ("psql", "mysql") and statement.redirect_in and not statement.heredoc):
        if host is None:
            return _manual(f"{program}: no host or container names the service")
        service, why = _target(host, services)
        if service is None:
            return _manual(f"restore: {why[0]}", *why)
        return _Result(({"kind": "restore", "service": service, "backup": "{{ params.backup }}"},), decisions=why,
                       parameters={"backup": {"type": "backup", "service": service,
                                              "description": f"the backup of {service} to restore"}})
    if program in ("psql", "mysql"):
        statement_text = _option(words, "-c", "--command") if program == "psql" else _option(words, "-e", "--execute")
        if statement_text is not None:
            engine = "postgres" if program == "psql" else "mysql"
            if not command.literal:
                return _manual(f"{program}: the statement is not written out (it holds a shell variable)")
            kind = "query" if _READ_SQL.match(statement_text) else "sql"
            return on(kind, statement=statement_text.strip(), engine=engine)
    if program == "sleep" and len(words) == 2 and words[1].isdigit() and not inside:
        return _Result(({"kind": "wait", "seconds": int(words[1])},))
    if program == "curl" and not inside:
        return _curl(words, services)
    if not inside or name is None:
        return _manual(f"`{program}` on a host: no step kind runs it (an exec step runs commands in containers)")
    args = _positionals(words[1:])
    scripted = any(_option(words, flag) is not None for flag in ("-c", "-e", "-f", "--command", "--execute"))
    if interactive and program in _SHELLS and not scripted and (program != "redis-cli" or not args):
        return _Result(manual=f"an interactive {program} session: a person types into it", session=True)
    if not command.literal:
        return _manual("the command holds a shell variable: make it a runbook parameter (a whole argv element)")
    read_only = program in _READ_ONLY or (program == "redis-cli" and bool(args) and args[0].lower() in _REDIS_READS)
    extra: dict[str, Any] = {"command": words}
    if container:
        extra["container"] = container
    if read_only:
        extra["read_only"] = True
    return on("exec", **extra)


def _curl(words: list[str], services: Services) -> _Result:
    urls = [word for word in words[1:] if word.startswith(("http://", "https://"))]
    if len(urls) != 1:
        return _manual("curl without one literal URL")
    url = quote(urls[0], safe=":/?&=%#[]@!$'()*+,;~")  # what curl sends for a space, and a URL the step accepts
    method = (_option(words, "-X", "--request") or "").upper()
    body = _option(words, "-d", "--data", "--data-raw")
    method = method or ("POST" if body is not None else "GET")
    if method == "GET" and body is None:
        host = urlsplit(url).hostname or ""
        resolved = services.resolve(host)
        if resolved.service is not None and services.known:
            return _Result(({"kind": "check", "service": resolved.service},),
                           decisions=((f"the health check of {url}: {resolved.service}'s catalog checks must "
                                       "include it (an http check)"),))
        return _Result(({"kind": "http", "method": "GET", "url": url},))
    step: Step = {"kind": "http", "method": method, "url": url}
    if body is not None:
        try:
            parsed = json.loads(body)
        except ValueError:
            return _manual("curl with a body that is not JSON")
        if not isinstance(parsed, dict):
            return _manual("curl with a JSON body that is not an object")
        step["json"] = parsed
    if method not in ("POST", "PUT", "PATCH", "GET", "DELETE"):
        return _manual(f"curl -X {method}: not a method an http step sends")
    return _Result((step,))
