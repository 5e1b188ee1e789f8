"""Reading an argv the way its program does: options and their values, positional arguments, durations, and the
command a `docker exec` / `docker compose exec` / `kubectl exec` runs inside a container.

Not responsible for what a program means (`recognise` and its families).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from bot.importing.shell import Command

_DURATION = re.compile(r"^(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$")
COMPOSE_GLOBAL = frozenset({"-f", "--file", "-p", "--project-name", "--env-file", "--profile", "--project-directory"})
KUBECTL_VALUE = frozenset({"-n", "--namespace", "-c", "--container", "-l", "--selector", "--context", "--tail",
                           "--since", "--replicas", "--to-revision", "-o", "--output", "--timeout", "--sort-by",
                           "-p", "--patch", "--type"})
_EXEC_VALUE = {"docker": frozenset({"-u", "--user", "-e", "--env", "-w", "--workdir", "--env-file"}),
               "compose": frozenset({"-u", "--user", "-e", "--env", "-w", "--workdir", "--index"}),
               "kubectl": frozenset({"-n", "--namespace", "-c", "--container", "--context"})}
# curl's options that send a body: the data an http step sends as JSON, and the forms, files and URL-encoded data it
# cannot send (any of them makes curl send a request other than a GET).
CURL_DATA = ("-d", "--data", "--data-raw", "--data-binary", "--data-ascii", "--json")
CURL_OTHER_BODY = ("-F", "--form", "--form-string", "--data-urlencode", "-T", "--upload-file")
# `docker exec` / `compose exec` options that change how the command runs: its environment, user, directory, rights.
_RUNS_WITH = ("-e", "--env", "--env-file", "-u", "--user", "-w", "--workdir", "--privileged")


def option(words: tuple[str, ...] | list[str], *names: str) -> str | None:
    """The value of the first of `names` given (`-n x`, `-nx`, `--name=x`, `--name x`)."""
    return next(iter(options(words, *names)), None)


def options(words: tuple[str, ...] | list[str], *names: str) -> list[str]:
    """The value of each of `names` given, in order (`psql -c A -c B`: both)."""
    found: list[str] = []
    for index, word in enumerate(words):
        for name in names:
            if word == name and index + 1 < len(words):
                found.append(words[index + 1])
                break
            bundled = len(name) == 2 and re.fullmatch(r"-[A-Za-z]{2,}", word) and word.endswith(name[1])
            if bundled and index + 1 < len(words):  # `psql -tAc "SELECT …"`: flags, then the one taking a value
                found.append(words[index + 1])
                break
            if name.startswith("--") and word.startswith(name + "="):
                found.append(word.split("=", 1)[1])
                break
            if not name.startswith("--") and word.startswith(name) and len(word) > len(name):
                found.append(word[len(name):])
                break
    return found


# Where a database client reads SQL from besides its input: each `-c` / `-e` one statement, each `-f` a file of them.
_SQL_SOURCES = {"psql": ("-c", "--command", "-f", "--file"), "mysql": ("-e", "--execute"),
                "mariadb": ("-e", "--execute")}


def sql_sources(program: str, words: tuple[str, ...] | list[str]) -> int:
    """How many statements or files of them the client is given on its command line."""
    return len(options(list(words[1:]), *_SQL_SOURCES.get(program, ())))


# What points docker, compose or kubectl at another host or cluster than the one they would reach by default: opsbot's
# steps and checks act on the target the catalog gives, so a command aimed elsewhere is not one of them.
_ELSEWHERE_OPTIONS = {"kubectl": ("--context", "--kubeconfig", "--cluster", "--server", "-s"),
                      "docker": ("-H", "--host", "--context", "-c", "--config"),
                      "podman": ("--url", "--connection", "-c", "--remote", "-r")}
_ELSEWHERE_ENV = frozenset({"DOCKER_HOST", "DOCKER_CONTEXT", "DOCKER_CONFIG", "CONTAINER_HOST", "CONTAINER_CONNECTION",
                            "KUBECONFIG"})


def elsewhere(command: Command) -> str | None:
    """The option or variable (as written) that aims `command` at another host or cluster, if any."""
    program = command.program if command.program != "docker-compose" else "docker"
    for name, _ in command.assignments:
        if name in _ELSEWHERE_ENV and program in ("docker", "podman", "kubectl"):
            return f"{name}=…"
    names = _ELSEWHERE_OPTIONS.get(program, ())
    if program in ("docker", "podman"):  # their own options come before the subcommand (`docker -c x ps`)
        words = list(command.words[1:])
        words = words[:next((index for index, word in enumerate(words) if not word.startswith("-")), len(words))]
    else:
        words = list(command.words[1:])
    return next((word for word in words for name in names
                 if word == name or (name.startswith("--") and word.startswith(name + "="))), None)


def flag(words: tuple[str, ...] | list[str], *names: str) -> bool:
    """Whether a flag is given, alone or in a bundle of one-letter flags (`-f` in `-fsS`)."""
    for word in words:
        if word in names:
            return True
        if re.fullmatch(r"-[A-Za-z]+", word):
            letters = set(word[1:])
            if any(len(name) == 2 and name[0] == "-" and name[1] in letters for name in names):
                return True
    return False


def positionals(words: tuple[str, ...] | list[str], with_value: frozenset[str] = frozenset()) -> list[str]:
    found, skip = [], False
    for word in words:
        if skip:
            skip = False
        elif word.startswith("-") and word != "-":
            skip = word in with_value
        else:
            found.append(word)
    return found


def hours(since: str | None) -> float | None:
    """`24h`, `30m`, `1h30m`, `2d`: in hours; None when it is not a duration (a date)."""
    match = _DURATION.match(since or "")
    if not since or not match or not any(match.groups()):
        return None
    days, hrs, minutes, seconds = (int(part or 0) for part in match.groups())
    return days * 24 + hrs + minutes / 60 + seconds / 3600


def minutes(since: str | None) -> float | None:
    value = hours(since)
    return None if value is None else max(round(value * 60, 2), 1)


@dataclass(frozen=True)
class Inside:
    """`docker compose exec -T db psql …`: where the command runs, and the command."""

    platform: str  # "compose", "docker" or "kubectl"
    name: str  # the compose service, container or pod/deployment as written
    command: Command
    interactive: bool
    container: str | None = None  # kubectl -c
    namespace: str | None = None
    runs_with: tuple[str, ...] = ()  # `-e X=1`, `-u root`, `-w /srv`: as written, for saying what an exec step lacks


def inside(command: Command) -> Inside | None:
    """The command a container wrapper runs, or None when `command` is not one (or names no command)."""
    words = command.words
    program = command.program
    if program in ("docker", "podman") and len(words) > 2 and words[1] == "compose":
        return _exec(command, _compose_verb(words, 2), "compose")
    if program == "docker-compose":
        return _exec(command, _compose_verb(words, 1), "compose")
    if program in ("docker", "podman") and len(words) > 1:
        start = 2 if words[1] == "container" and len(words) > 2 else 1
        return _exec(command, start if words[start:start + 1] == ("exec",) else None, "docker")
    if program == "kubectl":
        verb = next((index for index, word in enumerate(words[1:], 1) if not word.startswith("-")), None)
        return _exec(command, verb if verb is not None and words[verb] == "exec" else None, "kubectl")
    return None


def _compose_verb(words: tuple[str, ...], start: int) -> int | None:
    index = start
    while index < len(words) and words[index].startswith("-"):
        index += 2 if words[index] in COMPOSE_GLOBAL else 1
    return index if index < len(words) and words[index] == "exec" else None


def _exec(command: Command, verb: int | None, platform: str) -> Inside | None:
    if verb is None:
        return None
    words = command.words
    with_value = _EXEC_VALUE[platform]
    options: list[str] = []
    index = verb + 1
    while index < len(words) and words[index].startswith("-") and words[index] != "--":
        options.append(words[index])
        if words[index] in with_value and index + 1 < len(words):
            options.append(words[index + 1])
            index += 1
        index += 1
    if platform == "kubectl":  # kubectl's own options may come before `exec`
        options += list(words[1:verb])
    if index >= len(words):
        return None
    name, rest = words[index], index + 1
    if platform == "kubectl" and "--" in words[rest:]:  # `kubectl exec pod -n ns -c app -- cmd`: options, then --
        separator = words.index("--", rest)
        options += list(words[rest:separator])
        rest = separator + 1
    elif words[rest:rest + 1] == ("--",):
        rest += 1
    if rest >= len(words):
        return None
    # `docker compose exec` is interactive unless -T; docker and kubectl only with -i/-t.
    if platform == "compose":
        interactive = not flag(options, "-T") and "--no-TTY" not in options
    else:
        interactive = flag(options, "-i", "-t") or "--interactive" in options or "--stdin" in options
    runs_with = tuple(word for word in options if word.split("=", 1)[0] in _RUNS_WITH or (
        re.fullmatch(r"-[a-zA-Z]{2,}", word) and set(word[1:]) & {"e", "u", "w"})) if platform != "kubectl" else ()
    return Inside(platform, name, Command(command.argv[rest:], ()), interactive,
                  container=option(options, "-c", "--container") if platform == "kubectl" else None,
                  namespace=option(options, "-n", "--namespace") if platform == "kubectl" else None,
                  runs_with=runs_with)
