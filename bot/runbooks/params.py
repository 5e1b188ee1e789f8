"""A runbook's parameter values: typed and checked before any plan, then substituted into step arguments as data.

Values arrive as text (from `/ops run … name=value` or a modal); they never reach a shell or SQL, only the
executors' typed arguments. Not responsible for asking for missing values (the handlers open a modal).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from bot.errors import OpsbotError
from bot.runbooks.definitions import (
    IMAGE_TAG,
    BackupParameter,
    ChoiceParameter,
    ImageTagParameter,
    IntegerParameter,
    Runbook,
    StringParameter,
)
from bot.runs.backup_ref import UnknownBackup, explain_backup_ref, find_backup, parse_backup_ref
from bot.runs.ports import BackupLedger

Value = str | int


@dataclass(frozen=True)
class Problem:
    parameter: str
    message: str  # says what is valid


class ParametersInvalid(OpsbotError):
    """Some values are missing or wrong; `problems` names each, for a modal's inline errors."""

    def __init__(self, runbook: str, problems: list[Problem], given: dict[str, str]) -> None:
        self.runbook, self.problems, self.given = runbook, problems, given
        super().__init__(f"`{runbook}` cannot be planned yet: "
                         + "; ".join(f"*{p.parameter}*: {p.message}" for p in problems))


def explain(parameter: Any) -> str:
    """What a value of this parameter may be, in words (for errors, usage and modal hints)."""
    if isinstance(parameter, StringParameter):
        return f"text matching `{parameter.pattern}`"
    if isinstance(parameter, IntegerParameter):
        return f"a whole number from {parameter.min} to {parameter.max}"
    if isinstance(parameter, ChoiceParameter):
        return "one of " + ", ".join(f"`{c}`" for c in parameter.choices)
    if isinstance(parameter, ImageTagParameter):
        return "an image tag (letters, digits, `_`, `.` and `-`, such as `2.4.1`)"
    assert isinstance(parameter, BackupParameter)
    return explain_backup_ref(parameter.service)


async def coerce(runbook_name: str, runbook: Runbook, given: dict[str, str], store: BackupLedger) -> dict[str, Value]:
    """Every declared parameter's value, typed; raises ParametersInvalid naming each missing or wrong one."""
    problems: list[Problem] = []
    unknown = sorted(set(given) - set(runbook.parameters))
    for name in unknown:
        valid = ", ".join(f"`{p}`" for p in runbook.parameters) or "none"
        problems.append(Problem(name, f"`{runbook_name}` has no parameter `{name}` (parameters: {valid})"))
    values: dict[str, Value] = {}
    for name, parameter in runbook.parameters.items():
        raw = given.get(name)
        if raw is None or raw.strip() == "":
            default = getattr(parameter, "default", None)
            if default is None:
                problems.append(Problem(name, f"is required: {explain(parameter)}"))
            else:
                values[name] = default
            continue
        try:
            values[name] = await _one(parameter, raw.strip(), store)
        except ValueError as exc:
            problems.append(Problem(name, str(exc)))
    if problems:
        raise ParametersInvalid(runbook_name, problems, given)
    return values


async def _one(parameter: Any, raw: str, store: BackupLedger) -> Value:
    if isinstance(parameter, BackupParameter):
        return await _backup(parameter, raw, store)
    return check_value(parameter, raw)


def check_value(parameter: Any, raw: str) -> Value:
    """One value typed as `/ops run` types it, without the store: a backup parameter's value is only checked for
    its form here (an id or `latest`); whether that backup exists is known when a run is planned."""
    wrong = f"{raw[:60]!r} is not {explain(parameter)}"
    if isinstance(parameter, StringParameter):
        if len(raw) > 500 or not re.fullmatch(parameter.pattern, raw):
            raise ValueError(wrong)
        return raw
    if isinstance(parameter, IntegerParameter):
        if not re.fullmatch(r"-?[0-9]{1,12}", raw) or not parameter.min <= int(raw) <= parameter.max:
            raise ValueError(wrong)
        return int(raw)
    if isinstance(parameter, ChoiceParameter):
        if raw not in parameter.choices:
            raise ValueError(wrong)
        return raw
    if isinstance(parameter, ImageTagParameter):
        if not IMAGE_TAG.match(raw):
            raise ValueError(wrong)
        return raw
    assert isinstance(parameter, BackupParameter)
    ref = parse_backup_ref(raw)
    if ref is None:
        raise ValueError(wrong)
    return ref


async def _backup(parameter: BackupParameter, raw: str, store: BackupLedger) -> int:
    """A backup id of the parameter's service, existing and not deleted; `latest` is its newest verified one
    (the same rule as `/ops restore`)."""
    ref = parse_backup_ref(raw)
    if ref is None:
        raise ValueError(f"{raw[:60]!r} is not {explain_backup_ref(parameter.service)}")
    try:
        record = await find_backup(store, parameter.service, ref)
    except UnknownBackup as exc:
        raise ValueError(str(exc).rstrip(".")) from None
    return record.id or 0


def scheduled_given(runbook: Runbook) -> dict[str, str]:
    """A runbook's `schedule_values` as the text `/ops run name=value` would pass, so both are checked alike."""
    return {name: str(value) for name, value in runbook.schedule_values.items()}


def parse_assignments(words: list[str]) -> tuple[dict[str, str], list[str]]:
    """`version=2.1 reason="db slow"`-style words: the name=value pairs, and the words that are not one."""
    given: dict[str, str] = {}
    stray: list[str] = []
    for word in words:
        name, sep, value = word.partition("=")
        if sep and re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
            given[name.lower()] = value.strip("\"'“”")
        else:
            stray.append(word)
    return given, stray
