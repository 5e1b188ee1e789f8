"""Whether a command run in a container only reads — an exec step marked `read_only`, whose failure or timeout leaves
its service untouched — by its program and, where a program also writes in some forms, by its arguments.

Not responsible for whether the command becomes an exec step (`steps`).
"""

from __future__ import annotations

from collections.abc import Callable

from bot.importing.argv import flag, positionals

_READ_ONLY = frozenset({"cat", "ls", "df", "du", "ps", "env", "printenv", "pg_isready", "uptime", "free", "whoami",
                        "id", "head", "tail", "grep", "stat", "find", "nproc", "date", "hostname", "ping", "nslookup",
                        "dig", "netstat", "ss", "pip-audit", "composer", "wc", "echo"})
_READ_ONLY_VERBS = {"rabbitmqctl": ("list_", "status", "ping", "node_health_check", "cluster_status", "environment"),
                    "composer": ("outdated", "audit", "show")}
# Redis commands by their whole name (GETDEL, GETSET and GETEX start like GET and write): each that only reads, with
# the subcommands that only read where it has some (MEMORY PURGE and SLOWLOG RESET write).
_REDIS_READS: dict[str, frozenset[str] | None] = {
    **dict.fromkeys(("ping", "info", "dbsize", "llen", "get", "exists", "ttl", "pttl", "type", "scan", "lrange",
                     "hgetall", "hget", "scard", "zcard", "strlen", "--scan", "--bigkeys", "--memkeys", "--stat",
                     "--latency")),
    "memory": frozenset({"usage", "stats", "doctor"}), "slowlog": frozenset({"get", "len"})}
# Read-only programs that change something in some forms: the form, from the arguments after the program.
_WRITES_WHEN: dict[str, Callable[[list[str]], bool]] = {
    "env": lambda args: bool(positionals(args, frozenset({"-u", "--unset"}))),  # `env CMD …` runs CMD
    "date": lambda args: flag(args, "-s") or any(arg.startswith("--set") for arg in args) or any(
        not arg.startswith("+") for arg in positionals(args, frozenset({"-d", "--date", "-r", "--reference", "-f",
                                                                          "--file"}))),
    "hostname": lambda args: bool(positionals(args)) or flag(args, "-F") or "--file" in args,
    "find": lambda args: bool({"-delete", "-exec", "-execdir", "-ok", "-okdir", "-fprint", "-fprint0", "-fprintf",
                               "-fls"} & set(args)),
    "ss": lambda args: flag(args, "-K") or "--kill" in args,
    "pip-audit": lambda args: "--fix" in args,
}


def read_only(program: str, words: list[str]) -> bool:
    """`words` (the program first) change nothing."""
    if program == "redis-cli":
        args = [arg.lower() for arg in positionals(words[1:], frozenset({"-h", "-p", "-a", "-n", "-u", "--user",
                                                                         "--pass"}))]
        flags = [word for word in words[1:] if word in _REDIS_READS]  # `--bigkeys`, `--scan`
        if not args:
            return bool(flags)
        if args[0] not in _REDIS_READS:
            return False
        subcommands = _REDIS_READS[args[0]]
        return subcommands is None or (len(args) > 1 and args[1] in subcommands)
    verbs = _READ_ONLY_VERBS.get(program)
    if verbs is not None:
        args = positionals(words[1:], frozenset({"-h", "-p", "-a", "-n"}))
        return bool(args) and args[0].lower().startswith(verbs)
    writes = _WRITES_WHEN.get(program)
    return program in _READ_ONLY and (writes is None or not writes(words[1:]))
