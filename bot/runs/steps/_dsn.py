"""Which database a sql or terminate-queries step connects to: its `dsn_env`, or the service's postgres backup's.

Not responsible for connecting (`bot.executors.databases`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from bot.runs.steps.base import StepDeps, refused

if TYPE_CHECKING:
    from bot.catalog import Service


def dsn(deps: StepDeps, service: str, args: dict[str, Any]) -> str:
    env = args.get("dsn_env") or getattr(deps.catalog.services[service].backup, "dsn_env", None)
    value = deps.environ.get(env or "")
    if not value:
        raise refused(f"environment variable {env} is not set (the database to connect to)")
    return value


def needs_dsn(service: Service, step: Any) -> list[tuple[str, str]]:
    if step.dsn_env is None and (getattr(step, "engine", "postgres") != "postgres" or service.backup is None
                                 or service.backup.type != "postgres"):
        return [("dsn_env", f"is required: services.{step.service} has no postgres `backup:` whose DSN it could use")]
    return []
