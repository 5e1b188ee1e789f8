"""Checks of the `runbooks:` section against the rest of the catalog: services, their targets, parameters.

Returns problems as YAML paths (errors refuse the catalog, warnings are printed by `check-config`); the shapes
themselves are pydantic's job in `bot.runbooks.definitions`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from itertools import islice, takewhile
from typing import Any

from bot.catalog import Catalog, suggest
from bot.runbooks.approvals import configured_approvers, policies
from bot.runbooks.definitions import (
    PARAM_REFERENCE,
    BackupParameter,
    IntegerParameter,
    Runbook,
    StringParameter,
    on_failure,
    references,
)
from bot.runbooks.params import check_value, explain, scheduled_given
from bot.runs import targets
from bot.runs.steps import REGISTRY

Path = tuple[str | int, ...]

# Fields that take a number or one parameter reference: the smallest value each accepts.
_NUMBER_FIELDS = {"replicas": 0, "seconds": 0, "attempts": 1}
_NEEDS = {"target": "a `target:` (docker or kubernetes)", "backup": "a `backup:` (postgres or directory)",
          "maintenance": "a `maintenance:` (configmap or http)"}


@dataclass(frozen=True)
class Finding:
    path: Path
    message: str


def errors(catalog: Catalog) -> list[Finding]:
    found: list[Finding] = []
    services = catalog.service_names

    def unknown(path: Path, name: str, what: str = "service") -> None:
        hint = suggest(name, services)
        valid = ", ".join(services) or "none"
        found.append(Finding(path, f"unknown {what} {name!r}" + (f"; did you mean `{hint}`?" if hint else "")
                             + f" (services: {valid})"))

    for name, runbook in catalog.runbooks.items():
        base: Path = ("runbooks", name)
        for index, service in enumerate(runbook.services):
            if service not in catalog.services:
                unknown((*base, "services", index), service)
        for pname, parameter in runbook.parameters.items():
            found.extend(_parameter(catalog, (*base, "parameters", pname), parameter))
        for index, step in enumerate(runbook.steps):
            found.extend(_step(catalog, runbook, (*base, "steps", index), step, unknown))
        found.extend(_approvers(catalog, name, runbook))
        found.extend(_schedule(catalog, base, runbook))
    for name, entry in catalog.services.items():
        for index, runbook_name in enumerate(entry.runbooks):
            path: Path = ("services", name, "runbooks", index)
            offered = catalog.runbooks.get(runbook_name)
            if offered is None:
                hint = suggest(runbook_name, sorted(catalog.runbooks))
                found.append(Finding(path, f"unknown runbook {runbook_name!r}" + (f"; did you mean `{hint}`?" if hint else "")
                                     + f" (runbooks: {', '.join(sorted(catalog.runbooks)) or 'none'})"))
            elif name not in offered.services:
                found.append(Finding(path, f"runbook {runbook_name!r} does not touch {name} (its services: "
                                           f"{', '.join(offered.services)})"))
    return found


def _schedule(catalog: Catalog, base: Path, runbook: Runbook) -> list[Finding]:
    """A scheduled run has nobody to ask for a missing or wrong value: every one is checked now, as `/ops run`
    would check it, and the run needs the ops channel for its message and its failure alerts."""
    if runbook.schedule is None:
        if runbook.schedule_values:
            return [Finding((*base, "schedule_values"), "has no `schedule:` to use these values; add one or remove them")]
        return []
    found = []
    if catalog.schedules.channel is None:
        found.append(Finding((*base, "schedule"), "a scheduled run posts its steps and failure alerts to the ops "
                                                  "channel: set `schedules.channel`"))
    valid = ", ".join(f"`{p}`" for p in runbook.parameters) or "none"
    given = scheduled_given(runbook)
    for pname in given:
        if pname not in runbook.parameters:
            found.append(Finding((*base, "schedule_values", pname), f"is not a parameter of this runbook (parameters: {valid})"))
    for pname, parameter in runbook.parameters.items():
        raw = given.get(pname, "").strip()
        if not raw:
            if getattr(parameter, "default", None) is None:
                found.append(Finding((*base, "schedule_values"), f"`{pname}` is required and has no default: "
                                                                 f"give it a value here ({explain(parameter)})"))
            continue
        try:
            check_value(parameter, raw)
        except ValueError as exc:
            found.append(Finding((*base, "schedule_values", pname), str(exc)))
    return found


def _approvers(catalog: Catalog, name: str, runbook: Runbook) -> list[Finding]:
    configured = configured_approvers(policies(catalog, name, runbook))
    if len(configured) > 1:
        return [Finding(("runbooks", name), "its services' approval policies name different approvers ("
                        + "; ".join(f"{s}: {', '.join(a)}" for a, s in configured.items())
                        + "); give the runbook its own `approvals:`")]
    return []


def _parameter(catalog: Catalog, path: Path, parameter: Any) -> list[Finding]:
    if isinstance(parameter, BackupParameter):
        service = catalog.services.get(parameter.service)
        if service is None:
            return [Finding((*path, "service"), f"unknown service {parameter.service!r}")]
        if service.backup is None:
            return [Finding((*path, "service"), f"{parameter.service} has no `backup:`, so it has no backups to choose")]
    if (isinstance(parameter, StringParameter) and parameter.default is not None
            and not re.fullmatch(parameter.pattern, parameter.default)):
        return [Finding((*path, "default"), f"{parameter.default!r} does not match the pattern {parameter.pattern!r}")]
    return []


def _step(catalog: Catalog, runbook: Runbook, path: Path, step: Any, unknown: Any) -> list[Finding]:
    found: list[Finding] = []
    for field in type(step).model_fields:
        value = getattr(step, field)
        where = (*path, "json" if field == "json_body" else field)
        for name in references(value):
            if name not in runbook.parameters:
                valid = ", ".join(runbook.parameters) or "none declared"
                found.append(Finding(where, f"uses parameter {name!r}, which is not declared (parameters: {valid})"))
        if field in _NUMBER_FIELDS and isinstance(value, str):
            found.extend(_number(runbook, where, value, _NUMBER_FIELDS[field]))
    service_name = getattr(step, "service", None)
    if service_name is None:
        return found
    service = catalog.services.get(service_name)
    if service is None:
        unknown((*path, "service"), service_name)
        return found
    if service_name not in runbook.services:
        found.append(Finding((*path, "service"), f"{service_name} is not among this runbook's services "
                                                 f"({', '.join(runbook.services)}); add it there"))
    kind = REGISTRY[step.kind]
    need = kind.traits.needs
    if need is not None and getattr(service, need) is None:
        found.append(Finding((*path, "kind"), f"`{step.kind}` needs {_NEEDS[need]} on services.{service_name}"))
    if need != "target" or service.target is not None:  # no target at all is said once, above
        found.extend(_capability(service_name, service, path, step.kind, kind.needs_capabilities(service)))
    found.extend(Finding((*path, field), message) for field, message in kind.validate(runbook, service, step))
    return found


def _capability(name: str, service: Any, path: Path, kind: str, wanted: tuple[type, ...]) -> list[Finding]:
    """A step whose target cannot do what the kind asks of it (a ConfigMap on a Docker target) is refused now,
    not when it runs."""
    if not wanted:
        return []
    what = " or ".join(targets.words(c) for c in wanted)
    able = " or ".join(sorted({t for c in wanted for t in targets.CAPABILITIES if targets.offers(t, c)}))
    if service.target is None:
        return [Finding((*path, "kind"), f"`{kind}` needs a `target:` that can {what} on services.{name} ({able})")]
    if not any(targets.offers(service.target.type, c) for c in wanted):
        return [Finding((*path, "kind"), f"`{kind}` needs a target that can {what}, but services.{name}.target is "
                                         f"{service.target.type}, which cannot; use a {able} target")]
    return []


def _number(runbook: Runbook, where: Path, value: str, least: int) -> list[Finding]:
    """A numeric field given as text must be exactly one reference to an integer parameter within its bounds."""
    whole = PARAM_REFERENCE.fullmatch(value.strip())
    declared = runbook.parameters.get(whole.group(1)) if whole else None
    if whole is None:
        return [Finding(where, f"{value!r} is not a number, nor {{{{ params.<name> }}}} of an integer parameter")]
    if declared is None:
        return []  # said above: not declared
    if not isinstance(declared, IntegerParameter):
        return [Finding(where, f"needs a number, but parameter {whole.group(1)!r} is a {declared.type}")]
    if declared.min < least:
        return [Finding(where, f"parameter {whole.group(1)!r} may be {declared.min}, but this needs at least {least}: "
                               f"give it `min: {least}`")]
    return []


def warnings(catalog: Catalog) -> list[Finding]:
    """Undo-less changes that a later failure's rollback cannot reverse, and scheduled runbooks that start with a
    scheduled backup of one of their services: said, not refused."""
    found = _collisions(catalog)
    for name, runbook in catalog.runbooks.items():
        lasting = []  # (index, kind, the first later step whose failure rolls back)
        for index, step in enumerate(runbook.steps):
            traits = REGISTRY[step.kind].traits_for(step.model_dump())
            # A step that changes nothing (`wait`, a check, one marked `read_only`) leaves nothing to undo.
            if not traits.changes or getattr(step, "read_only", False) or traits.undo is not None:
                continue
            later = [i for i, s in enumerate(runbook.steps[index + 1:], index + 1) if on_failure(s) == "rollback"]
            if later:
                lasting.append((index, step.kind, later[0]))
        if len(lasting) == 1:
            index, kind, later_index = lasting[0]
            found.append(Finding(("runbooks", name, "steps", index),
                                 f"`{kind}` has no undo: if step {later_index + 1} or a later one fails and rolls "
                                 "back, this step's change stays"))
        elif lasting:  # said once for the runbook, not once per step
            steps = ", ".join(f"{index + 1} (`{kind}`)" for index, kind, _ in lasting)
            found.append(Finding(("runbooks", name, "steps"),
                                 f"{len(lasting)} steps have no undo: {steps}; if a later step fails and rolls back, "
                                 "their changes stay"))
    return found


COLLISION_HORIZON_DAYS = 366  # long enough to meet a monthly or first-Sunday schedule a few times
COLLISION_OCCURRENCES = 2000  # …and at most this many occurrences of each schedule (an hourly one: about 12 weeks)


def _collisions(catalog: Catalog) -> list[Finding]:
    """Two scheduled runs of one service at the same minute cannot both run: the second finds it busy and fails
    (alerted). Warn about a scheduled runbook that starts with a scheduled backup of one of its services, or with
    another scheduled runbook sharing a service."""
    start = datetime(2026, 1, 1, tzinfo=UTC)  # a fixed start: the same warnings on every run of check-config
    horizon = start + timedelta(days=COLLISION_HORIZON_DAYS)

    def upcoming(schedule: Any) -> set[datetime]:  # bounded, so a per-minute schedule costs no more than a yearly one
        return set(takewhile(lambda at: at <= horizon, islice(schedule.occurrences(start), COLLISION_OCCURRENCES)))

    scheduled = {name: (runbook, upcoming(runbook.schedule)) for name, runbook in catalog.runbooks.items()
                 if runbook.schedule is not None}
    found = []
    for name, (runbook, mine) in scheduled.items():
        others: list[tuple[str, str, set[datetime]]] = []  # (what, service, its occurrences)
        for service in dict.fromkeys(runbook.services):
            entry = catalog.services.get(service)
            if entry is not None and entry.backup is not None and entry.backup.schedule is not None:
                others.append((f"services.{service}.backup.schedule", service, upcoming(entry.backup.schedule)))
        for other, (other_runbook, theirs) in scheduled.items():
            shared = [s for s in runbook.services if s in other_runbook.services]
            if other < name and shared:  # each pair once, on the later name
                others.append((f"runbooks.{other}.schedule", shared[0], theirs))
        for what, service, theirs in others:
            both = sorted(mine & theirs)
            if both:
                found.append(Finding(("runbooks", name, "schedule"), f"starts at the same time as {what} (e.g. "
                                     f"{both[0]:%a %Y-%m-%d %H:%M} UTC): one of the two finds {service} busy and "
                                     "fails; start one after the other has had time to finish"))
    return found
