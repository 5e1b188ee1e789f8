"""What "Last errors" shows for a log-errors check: the key a button carries, finding the check it names in the
current catalog, and reading its last matching lines again. Apart from the kind (`bot.checks.log_errors`) so that
the health report's views and the button's handler do not import the kind for a catalog that has no such check.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

from bot.checks.base import CheckDeps

if TYPE_CHECKING:
    from bot.checks.log_errors import LogErrorsCheck, LogLine

LAST = 20  # lines "Last errors" shows
MAX_KEY = 143  # a Slack menu option's value holds 150 characters, "errors:" included


@dataclass(frozen=True)
class LastErrors:
    """What "Last errors" shows: the check, how many lines matched, and the last of them, oldest first."""

    service: str
    check: LogErrorsCheck
    matched: int
    lines: list[LogLine]
    partial: str = ""  # "only the first 64 MB of api-1's logs read": `matched` is then a lower bound


def errors_key(service: str, label: str) -> str:
    """What a button carries to name a service's log-errors check: `service:label`, or the label's digest when
    that would not fit in a menu option's value."""
    key = f"{service}:{label}"
    return key if len(key) <= MAX_KEY else f"{service}:#{hashlib.sha256(label.encode()).hexdigest()[:16]}"


def find(catalog: Any, key: str) -> tuple[str, LogErrorsCheck] | None:
    """The service and log-errors check a button's `errors_key` names in the current catalog, if it still has it."""
    service_name, _, _ = key.partition(":")
    service = catalog.services.get(service_name)
    for check in service.checks if service is not None else []:
        if check.type == "log-errors" and errors_key(service_name, check.label) == key:
            return service_name, cast("LogErrorsCheck", check)
    return None


async def last_errors(catalog: Any, deps: CheckDeps, key: str, limit: int = LAST) -> LastErrors | None:
    """Read the logs again for the check `key` names and keep its last `limit` matching lines; None when the
    catalog no longer has that check."""
    found = find(catalog, key)
    if found is None:
        return None
    service, check = found
    matched = await check.matches(deps.for_service(service, catalog.services[service].target))
    return LastErrors(service, check, matched.matched, matched.lines[-limit:], matched.partial())
