"""One shell statement → what it is for the catalog: a backup, a schedule, a check, runbook steps, or a manual step
and why. The families are tried in that order; literal secrets are replaced and reported first.

Not responsible for the statements around it (`script`: thresholds, outcome tests, loops) nor for validating the
result (the catalog loader judges the assembled draft). Reads the parsed argv only: nothing is executed.
"""

from __future__ import annotations

from dataclasses import asdict, replace
from typing import Any

from bot.importing import backups, checks, schedules, secrets, steps
from bot.importing.argv import elsewhere
from bot.importing.context import Context
from bot.importing.model import Found, Lines, Mapped, manual
from bot.importing.pipeline import Pipeline
from bot.importing.shell import Statement
from bot.importing.variables import Variables


def recognise(statement: Statement, context: Context, variables: Variables) -> Mapped:
    found = secrets.found(statement)
    text = secrets.redact(statement.text, found)
    notes = [f"a literal secret was replaced by ${secret.env} and is not in the draft: set {secret.env} in opsbot's "
             "environment and name it in the catalog's `*_env` field" for secret in found]
    notes += [f"reads ${name}: in the catalog it is an environment variable named in a `*_env` field"
              for name in secrets.referenced(statement)]
    result = _statement(statement, context, variables)
    if result.manual is None and found and any(step["kind"] == "exec" for step in result.steps):
        result = manual("the command carries a secret, and an exec step's argv would copy it")
    elif result.manual is None and _copies(result, found):  # `?token=…` in a URL a check or step would keep
        result = manual("the command carries a secret, and the draft's fields would copy it")
    result = replace(result, decisions=tuple(notes) + result.decisions)
    return Mapped(Lines(context.source, statement.first_line, statement.last_line), text, statement.comment, result,
                  statement=statement)


def _copies(result: Found, found: list[secrets.Secret]) -> bool:
    """Whether any field of what the command became holds one of its literal secrets."""
    values = {secret.value for secret in found}
    stack: list[Any] = [asdict(replace(result, decisions=()))]
    while stack:
        value = stack.pop()
        if isinstance(value, str):
            if any(secret in value for secret in values):
                return True
        elif isinstance(value, dict):
            stack += [*value.keys(), *value.values()]
        elif isinstance(value, list | tuple):
            stack += list(value)
    return False


def _statement(statement: Statement, context: Context, variables: Variables) -> Found:
    if statement.complex:
        return manual("a loop, condition, function or text bash does not parse as a plain command")
    if statement.heredoc and not statement.writes:
        return manual("feeds a here-document into a program: a session for a person")
    if not statement.commands or not statement.commands[0].argv:
        return manual("no command")
    first = statement.commands[0]
    if not first.argv[0].literal:
        return manual("the program itself is a variable")
    aimed = elsewhere(first)
    if aimed is not None:
        return manual(f"{first.program} {aimed} aims it at another host or cluster: opsbot acts on the target the "
                      "catalog gives its service; a person runs it")
    p = Pipeline.of(statement, context, variables)
    if not p.first.argv:
        return manual("no command")
    for family in (backups.recognise, schedules.recognise):
        found = family(p)
        if found is not None:
            return found
    checked = checks.recognise(p)
    if checked is not None and checked.manual is None:
        return checked
    stepped = steps.recognise(p)
    if checked is not None:
        if stepped.manual is None and p.inside is not None and checked.checks:
            # An incomplete check (a queue's name missing) run in its container is still a diagnostic exec step.
            return stepped.plus(Found(checks=checked.checks))
        return checked
    if statement.captures:
        potential = checks.potential_sql(p)
        if potential is not None:
            return stepped.plus(Found(checks=(potential,)))
    return stepped
