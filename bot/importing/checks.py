"""Commands that read a service's health, as catalog checks: `curl -f URL` and the other network probes
(`http_checks`), `pg_isready` → postgres, `redis-cli ping` / `LLEN` → redis, `df` → disk, `free` /
`docker stats` → memory, `compose ps` → containers, `logs | grep error` → log-errors, `kubectl get pods` →
kubernetes-pods, `mysqladmin ping` → mysql, `rabbitmqctl list_queues` → rabbitmq, `stats | nc` → memcached.

One family per program, in the table at the end. Not responsible for thresholds (`thresholds`: the comparison
usually follows on a later line) nor for the runbook step around a check (it is a `check` step gating on it).
"""

from __future__ import annotations

import re
from collections.abc import Callable

from bot.importing import http_checks
from bot.importing.argv import flag, hours, option, positionals, sql_sources
from bot.importing.gates import as_found, check_step, short
from bot.importing.model import (
    EVERY_KUBERNETES_SERVICE,
    HIGH,
    HOST,
    STACK,
    CheckFinding,
    Confidence,
    Data,
    Found,
    Measure,
    manual,
    medium,
)
from bot.importing.pipeline import Pipeline, env_name, stack_target, target_hint
from bot.importing.services import Resolved
from bot.importing.shell import Command
from bot.importing.thresholds import apply, from_awk
from bot.importing.variables import SHELL_TEXT, Accepts

_SELECT_ONE = re.compile(r"^\s*select\s+1\s*;?\s*$", re.IGNORECASE)
_READ_SQL = re.compile(r"^\s*(select|with)\b", re.IGNORECASE)


def recognise(p: Pipeline) -> Found | None:
    looked = _backups_looked_at(p)
    if looked is not None:
        return looked
    if p.program in ("echo", "printf") and p.rest and p.rest[0].program in ("nc", "ncat", "netcat", "telnet"):
        return http_checks.memcached(p)
    family = _FAMILIES.get(p.program)
    return family(p) if family is not None else None


def _backups_looked_at(p: Pipeline) -> Found | None:
    """`ls -la /backups/`, `gunzip -t /backups/db_*.gz`: a look at the backups the draft takes there — the
    backup-freshness check says how old the newest verified one is."""
    if p.program not in ("ls", "du", "stat", "gunzip", "gzip", "zcat", "tar", "find") or p.inside is not None:
        return None
    words = list(p.words)
    if p.program == "find" and ("-delete" in words or "-exec" in words):
        return None
    paths = [p.variables.text(word) for word in p.first.argv[1:] if not word.text.startswith("-")]
    services = [service for path in paths for directory, services in p.context.backup_directories.items()
                if path.startswith("/") and (path.rstrip("/") == directory or path.startswith(directory + "/"))
                for service in services]
    if not services:
        return None
    sure = medium("it looks at the backups: the backup-freshness check says how old the newest verified one is")
    findings = tuple(CheckFinding(service, {"type": "backup-freshness", "name": "latest backup"},
                                  ("backup-freshness",), sure) for service in dict.fromkeys(services))
    return Found(steps=tuple(check_step(finding) for finding in findings), checks=findings, sure=sure)


def potential_sql(p: Pipeline) -> CheckFinding | None:
    """`X=$(psql -t -c "SELECT count(*) …")`: an sql check, once a later comparison gives it a limit."""
    engine = "postgres" if p.program == "psql" else "mysql" if p.program in ("mysql", "mariadb") else None
    if engine is None or not p.first.literal or sql_sources(p.program, p.words) != 1:
        return None
    statement = option(list(p.words), "-c", "--command") if engine == "postgres" else option(list(p.words), "-e",
                                                                                             "--execute")
    if statement is None or not _READ_SQL.match(statement) or _SELECT_ONE.match(statement):
        return None
    if p.text(statement) is None:
        return None  # `$` or a backtick in it: a person reads it
    resolved = p.engine_service()
    if resolved.service is None:
        return None
    query = " ".join(statement.split())
    check: Data = {"type": "sql", "name": short(f"sql: {query}", 80), "dsn_env": env_name(resolved.service),
                   "query": query.rstrip(";")}
    return CheckFinding(resolved.service, check, ("sql", query), medium("the query must return one number"),
                        Measure(("limits",), high_only=False), complete=False)


# --- the families -----------------------------------------------------------------------------------------------


def _pg_isready(p: Pipeline) -> Found:
    return _database(p, "postgres", "pg_isready")


def _database(p: Pipeline, kind: str, name: str) -> Found:
    resolved = p.engine_service()
    if resolved.service is None:
        return manual(f"{p.program}: {resolved.why}", resolved.why)
    env = env_name(resolved.service)
    check: Data = {"type": kind, "name": name, "dsn_env": env}
    sure = medium(resolved.why) if resolved.why else HIGH
    return as_found(p, CheckFinding(resolved.service, check, (kind,), sure), _dsn_hint(p, kind, resolved.service, env))


def _dsn_hint(p: Pipeline, kind: str, service: str, env: str) -> str:
    words = list(p.words)
    user = option(words, "-U", "--username", "-u", "--user")
    database = option(words, "-d", "--dbname")
    names = positionals(words[1:], frozenset({"-U", "-u", "-h", "-p", "-d", "-c", "-e", "--username", "--host",
                                              "--port", "--dbname", "--user"}))
    database = database or (names[0] if names and not names[0].startswith(("-", "$")) else None)
    scheme, port = ("postgresql", 5432) if kind == "postgres" else ("mysql", 3306)
    user_part = f"{user}:…@" if user and "$" not in user else "USER:…@"
    return (f"set {env} to {scheme}://{user_part}{service}:{port}/{database or 'DB'} (the password in the "
            "environment, never in the catalog)")


def _psql(p: Pipeline) -> Found | None:
    statement = option(list(p.words), "-c", "--command") if p.program == "psql" else option(list(p.words), "-e",
                                                                                              "--execute")
    if statement is not None and _SELECT_ONE.match(statement) and sql_sources(p.program, p.words) == 1:
        kind = "postgres" if p.program == "psql" else "mysql"
        return _database(p, kind, "SELECT 1" if kind == "postgres" else "mysql")
    return None


def _mysqladmin(p: Pipeline) -> Found | None:
    if "ping" in p.words or "status" in p.words:
        return _database(p, "mysql", "mysql")
    return None


def _redis(p: Pipeline) -> Found | None:
    args = positionals(list(p.words[1:]), frozenset({"-h", "-p", "-a", "-n", "-u", "--user", "--pass"}))
    if not args or args[0].lower() not in ("ping", "llen", "info") or (
            args[0].lower() == "info" and args[1:2] not in ([], ["memory"])):
        return None
    resolved = p.engine_service()
    if resolved.service is None:
        return manual(f"redis-cli: {resolved.why}", resolved.why)
    check: Data = {"type": "redis", "name": "redis", "url_env": env_name(resolved.service)}
    measure = None
    if args[0].lower() == "llen":
        queue = p.text(args[1]) if len(args) >= 2 else None
        if queue is None:
            return None
        check["lists"] = {queue: None}
        measure = Measure(("lists", queue))
    sure = medium(resolved.why) if resolved.why else HIGH
    if args[0].lower() == "info":
        sure = sure.but(Confidence.MEDIUM, "INFO memory: the check grades used memory against maxmemory")
    return as_found(p, CheckFinding(resolved.service, check, ("redis",), sure, measure),
                    f"set {env_name(resolved.service)} to redis://{resolved.service}:6379/0 (a password in it, "
                    "never in the catalog)")


def _df(p: Pipeline) -> Found:
    names = positionals(list(p.words[1:]), frozenset({"-t", "--type", "-x", "--exclude-type", "-B", "--block-size",
                                                      "--output"}))
    written = [p.value(name, Accepts.TEXT) for name in names]
    unknown = next((value.why for value in written if value.text is None), None)
    if unknown is not None:
        return manual(f"df: {unknown}")
    paths = [value.text for value in written if value.text is not None and value.text.startswith("/")]
    sure = HIGH if paths else medium("df names no path: the check reads /")
    check: Data = {"type": "disk", "name": short("disk " + ", ".join(paths or ["/"]), 80), "paths": paths or ["/"]}
    service = HOST
    where = p.where()
    if where is not None and where.service is not None:
        service = where.service
        sure = sure.but(Confidence.LOW, f"df ran inside {where.service}: opsbot's disk check reads the paths as "
                                        "opsbot's host sees them (mount them)")
    finding = CheckFinding(service, check, ("disk", tuple(check["paths"])), sure, Measure(("usage_percent",)))
    return as_found(p, _awk_limit(p, finding))


def _awk_limit(p: Pipeline, finding: CheckFinding) -> CheckFinding:
    awk = p.later("awk")
    limit = from_awk(" ".join(awk.words[1:])) if awk is not None else None
    return apply(finding, limit)[0] if limit is not None else finding


def _free(p: Pipeline) -> Found:
    finding = CheckFinding(HOST, {"type": "memory", "name": "memory"}, ("memory",), HIGH, Measure(("memory_percent",)))
    return as_found(p, _awk_limit(p, finding))


def _docker(p: Pipeline) -> Found | None:
    words = list(p.words)
    verb = words[1] if len(words) > 1 else ""
    if p.program == "docker-compose" or verb == "compose":
        return _compose(p)
    if verb == "stats":
        return as_found(p, CheckFinding(HOST, {"type": "memory", "name": "memory"}, ("memory",),
                                        medium("docker stats shows each container's use; the memory check reads the "
                                               "host's (and its load)"), Measure(("memory_percent",))))
    if verb == "system" and words[2:3] == ["df"]:
        return as_found(p, CheckFinding(HOST, {"type": "disk", "name": "disk /var/lib/docker",
                                               "paths": ["/var/lib/docker"]}, ("disk", ("/var/lib/docker",)),
                                        medium("docker system df: the filesystem of Docker's data directory"),
                                        Measure(("usage_percent",))))
    if verb == "ps":
        return _containers(p)
    if verb == "logs":
        names = positionals(words[2:], frozenset({"--since", "--tail", "-n", "--until"}))
        return _log_errors(p, names[0] if len(names) == 1 else None, words[2:], "docker")
    return None


def _compose(p: Pipeline) -> Found | None:
    words = list(p.words)
    index = 2 if p.program != "docker-compose" else 1
    while index < len(words) and words[index].startswith("-"):
        index += 2 if words[index] in ("-f", "--file", "-p", "--project-name", "--env-file", "--profile",
                                       "--project-directory") else 1
    verb, rest = (words[index], words[index + 1:]) if index < len(words) else ("", [])
    if verb == "ps":
        return _containers(p)
    if verb == "logs":
        names = positionals(rest, frozenset({"--since", "--tail", "-n", "--until"}))
        return _log_errors(p, names[0] if len(names) == 1 else None, rest, "compose")
    return None


def _containers(p: Pipeline) -> Found:
    stack = stack_target(p.context)
    project = stack.target["labels"]["com.docker.compose.project"]
    check: Data = {"type": "containers", "name": "containers", "project": project}
    found = as_found(p, CheckFinding(STACK, check, ("containers",), stack.sure))
    return Found(steps=found.steps, checks=found.checks, targets=(stack,), sure=found.sure)


def _log_errors(p: Pipeline, name: str | None, options: list[str], platform: str) -> Found | None:
    grep = p.later("grep")
    if grep is None or flag(options, "-f") or "--follow" in options:
        return None  # the logs themselves (a collect-logs step), or followed as they come
    after = p.commands[p.commands.index(grep) + 1:]
    if any(command.program not in ("wc", "tail", "head") for command in after):
        return None  # the matching lines are worked on further: not a count of them
    pattern = _grep_pattern(grep)
    if pattern is None:
        return None
    sure = HIGH
    if name is None and platform == "compose":
        stack = stack_target(p.context)
        service, targets, sure = STACK, (stack,), stack.sure
    else:
        resolved = p.context.named(p.text(name) or name) if name is not None else Resolved(
            None, "logs of no one service")
        if resolved.service is None:
            return manual(f"logs | grep: {resolved.why}", resolved.why)
        service = resolved.service
        targets = (target_hint(platform, p.text(name) or service, service, p.context,
                               p.namespace(option(options, "-n", "--namespace"))),)
    window = hours(p.text(option(options, "--since")))  # `--since "$WINDOW"`: the value the script set
    check: Data = {"type": "log-errors", "name": short(f"/{pattern}/ in logs" if pattern != "error" else
                                                         "errors in logs", 80), "pattern": pattern}
    if window is not None:
        check["window_hours"] = round(window, 4)
    else:
        sure = sure.but(Confidence.MEDIUM, "no --since: the check counts the last 24 h")
    counted = p.later("wc") is not None
    if not counted:
        sure = sure.but(Confidence.MEDIUM, "the script shows the lines; the check counts them (limits 10 and 100 "
                                           "unless a comparison says otherwise)")
    finding = CheckFinding(service, check, ("log-errors", pattern), sure, Measure(("lines",)))
    found = as_found(p, finding)
    return Found(steps=found.steps, checks=found.checks, targets=targets, sure=found.sure)


def _grep_pattern(grep: Command) -> str | None:
    words = list(grep.words[1:])
    if flag(words, "-v", "-c") and not flag(words, "-i", "-E"):
        return None
    if flag(words, "-v"):
        return None
    pattern = option(words, "-e", "--regexp")
    if pattern is None:
        names = positionals(words, frozenset({"-A", "-B", "-C", "-m", "--max-count"}))
        if not names:
            return None
        pattern = names[0]
    if not grep.literal or not pattern or SHELL_TEXT.search(pattern):
        return None  # `error$`: the regex anchor is a `$`, which a check never holds (a person reads it)
    extended = flag(words, "-E") or "--extended-regexp" in words
    if not extended:  # basic regular expressions: `\|` is alternation, `(` and `|` are themselves
        pattern = pattern.replace("\\|", "\0").replace("(", "\\(").replace(")", "\\)").replace("|", "\\|")
        pattern = pattern.replace("\0", "|")
    try:
        re.compile(pattern)
    except re.error:
        return None
    return pattern


def _kubectl(p: Pipeline) -> Found | None:
    words = list(p.words)
    args = positionals(words[1:], frozenset({"-n", "--namespace", "-l", "--selector", "--context", "-o", "--output",
                                             "--sort-by", "--since", "--tail", "-c", "--container"}))
    if args[:2] in (["get", "pods"], ["get", "pod"], ["get", "po"], ["top", "pods"], ["top", "pod"], ["top", "nodes"],
                    ["top", "node"]):
        if flag(words, "-w") or "--watch" in words:
            return None
        selector = option(words, "-l", "--selector")
        namespace = p.namespace(option(words, "-n", "--namespace"))
        sure = HIGH if args[0] == "get" else medium(f"kubectl top {args[1]} shows usage; the check grades readiness "
                                                    "and restarts: add cpu_percent / memory_percent (or nodes:) "
                                                    "limits to grade usage")
        check: Data = {"type": "kubernetes-pods", "name": "pods"}
        if selector and re.fullmatch(r"(app|name|app\.kubernetes\.io/name)=([a-z0-9][a-z0-9-]*)", selector):
            name = selector.split("=", 1)[1]
            resolved = p.context.named(name)
            if resolved.service is None:
                return manual(f"kubectl get pods: {resolved.why}", resolved.why)
            hint = target_hint("kubectl", name, resolved.service, p.context, namespace)
            found = as_found(p, CheckFinding(resolved.service, check, ("kubernetes-pods",), sure))
            return Found(steps=found.steps, checks=found.checks, targets=(hint,), sure=found.sure)
        if args[1].startswith("node"):
            sure = sure.but(Confidence.MEDIUM, "kubectl top nodes: each deployment's pods are checked (their nodes "
                                              "with nodes: limits)")
        finding = CheckFinding(EVERY_KUBERNETES_SERVICE, check, ("kubernetes-pods",), sure)
        return Found(steps=(check_step(finding),), checks=(finding,), sure=sure)
    if args[:1] == ["logs"]:
        selector = option(words, "-l", "--selector")
        named = args[1].split("/")[-1] if len(args) > 1 else None
        if named is None and selector and "=" in selector:
            named = selector.split("=", 1)[1]
        return _log_errors(p, named, words, "kubectl")
    return None


def _rabbitmq(p: Pipeline) -> Found | None:
    args = positionals(list(p.words[1:]), frozenset({"-n", "--node", "-p", "--vhost"}))
    if not args or args[0] not in ("list_queues", "status", "ping", "node_health_check"):
        return None
    resolved = p.engine_service()
    if resolved.service is None:
        return manual(f"rabbitmqctl: {resolved.why}", resolved.why)
    grep = p.later("grep")
    queue = _grep_pattern(grep) if grep is not None else None
    check: Data = {"type": "rabbitmq", "name": "rabbitmq queues", "url_env": env_name(resolved.service)}
    if queue is not None and re.fullmatch(r"[\w.:-]+", queue):
        check["queues"] = [{"name": queue}]
        return as_found(p, CheckFinding(resolved.service, check, ("rabbitmq",), HIGH))
    check["queues"] = [{"name": "QUEUE"}]
    return as_found(p, CheckFinding(resolved.service, check, ("rabbitmq",), HIGH, complete=False,
                                    missing="the names of the queues to watch (`queues: [{name: …}]`)"))


_FAMILIES: dict[str, Callable[[Pipeline], Found | None]] = {
    "curl": http_checks.curl, "wget": http_checks.wget, "nc": http_checks.nc,
    "pg_isready": _pg_isready, "psql": _psql, "mysql": _psql, "mariadb": _psql, "mysqladmin": _mysqladmin,
    "redis-cli": _redis, "rabbitmqctl": _rabbitmq, "df": _df, "free": _free,
    "docker": _docker, "podman": _docker, "docker-compose": _compose, "kubectl": _kubectl,
}
