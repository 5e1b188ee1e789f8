"""The `alerts:` section checked against the rest of the catalog: a route's service, runbook, parameter names and
auto-declare severity must exist, reported at their YAML path. Not responsible for the section's own shape
(bot/alerts/routing.py)."""

from __future__ import annotations

from bot.catalog import Catalog, suggest
from bot.runbooks.validation import Finding


def alert_errors(catalog: Catalog) -> list[Finding]:
    if catalog.alerts is None:
        return []
    found: list[Finding] = []
    for index, route in enumerate(catalog.alerts.routes):
        where = ("alerts", "routes", index)
        if route.service is not None and route.service not in catalog.services:
            found.append(Finding((*where, "service"), _unknown("service", route.service, catalog.service_names)))
        if route.declare is not None and catalog.incidents.severity(route.declare.severity) is None:
            names = [s.name for s in catalog.incidents.severities]
            found.append(Finding((*where, "declare", "severity"), _unknown("severity", route.declare.severity, names)))
        if route.runbook is None:
            continue
        runbook = catalog.runbooks.get(route.runbook)
        if runbook is None:
            found.append(Finding((*where, "runbook"), _unknown("runbook", route.runbook, sorted(catalog.runbooks))))
            continue
        for name in route.parameters:
            if name not in runbook.parameters:
                found.append(Finding((*where, "parameters", name),
                                     _unknown(f"parameter of runbook {route.runbook!r}", name, sorted(runbook.parameters))))
    return found


def _unknown(what: str, name: str, valid: list[str]) -> str:
    hint = suggest(name, valid)
    return f"unknown {what} {name!r}" + (f"; did you mean `{hint}`?" if hint else "") + f" (valid: {', '.join(valid) or 'none'})"
