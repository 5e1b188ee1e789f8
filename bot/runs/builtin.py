"""The built-in actions as plans the one engine runs: restart, rollback, backup and restore, each a few typed steps.

restart = restart, check health; rollback = roll back, check health; backup = back up, apply retention;
restore = restore (the restore kind takes a safety backup first, and its undo restores that), check health. No
health step when the service has no checks. Not responsible for running them (`bot.runs.engine`) nor for asking
and approving (`bot.runs.requests`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from bot.runs import steps, targets
from bot.runs.backup_ref import LATEST, UnknownBackup, explain_backup_ref, find_backup, parse_backup_ref
from bot.runs.deps import RunDeps
from bot.runs.models import ActionKind, ActionStep, BackupRecord
from bot.runs.steps import PlannedStep

HEALTH_ATTEMPTS, HEALTH_INTERVAL = 3, 2.0


async def plan_of(ctx: RunDeps, service: str, kind: ActionKind, params: dict[str, Any]) -> tuple[str, list[PlannedStep]]:
    """What the action will touch, in words, and its steps. Reads only; resolves a restore's `latest` into
    `params["backup_id"]`, so what runs is the backup the plan shows even if a newer one lands meanwhile."""
    assert kind is not ActionKind.RUNBOOK
    health = ([await _step(ctx, "check", service, {"attempts": HEALTH_ATTEMPTS, "interval": HEALTH_INTERVAL})]
              if ctx.catalog.services[service].checks else [])
    if kind in (ActionKind.RESTART, ActionKind.ROLLBACK):
        workload = targets.workload_for(ctx, service, kind)
        try:
            if kind is ActionKind.RESTART:
                first = await _step(ctx, "restart", service, {}, workload.restart_plan())
            else:
                to = params.get("to")
                first = await _step(ctx, "rollback", service, {"to": to}, workload.rollback_plan(to))
            return workload.describe(), [first, *health]
        finally:
            await targets.close(workload)
    backups = targets.backups_for(ctx, service, kind)
    if kind is ActionKind.BACKUP:
        return backups.describe(), [await _step(ctx, "backup", service, {}, backups.backup_plan()),
                                    await _step(ctx, "retention", service, {})]
    record = await _backup_to_restore(ctx, service, params)
    does = [*(f"Safety backup: {title}" for title in backups.backup_plan()),
            *backups.restore_plan(steps.artifact_of(record))]
    return backups.describe(), [await _step(ctx, "restore", service, {"backup": record.id}, does), *health]


# Long enough for the executors' own waits (a container's start timeout, a large dump): a step cut short by its
# timeout is one whose effect is unknown, so these are backstops, not estimates.
_TIMEOUTS = {"restart": 3600.0, "rollback": 3600.0, "backup": 6 * 3600.0, "restore": 6 * 3600.0,
             "retention": 3600.0}


async def _step(ctx: RunDeps, kind: str, service: str, args: dict[str, Any], does: list[str] | None = None) -> PlannedStep:
    """One built-in step. A built-in plan never undoes by itself: a failed step stops the run, and people choose
    Resume or Roll back (retention's own `continue` kept: an old file that will not go fails nothing)."""
    given = {**args, **({"timeout": _TIMEOUTS[kind]} if kind in _TIMEOUTS else {}),
             **({} if kind == "retention" else {"on_failure": "stop"})}
    step = await steps.plan_builtin(ctx, kind, service, given)
    if does:  # what the executor will do, as the plan shows the approvers (a container, a dump, a verify)
        step = replace(step, probe=" · ".join(filter(None, [step.probe, "what it does: " + "; ".join(does)])))
    return step


async def _backup_to_restore(ctx: RunDeps, service: str, params: dict[str, Any]) -> BackupRecord:
    """The backup a restore names: an id, or `latest`, resolved here to the id the approvers will see."""
    ref = params.get("backup_id")
    if not (isinstance(ref, int) or ref == LATEST):
        ref = parse_backup_ref(str(ref))
    if ref is None:
        raise UnknownBackup(f"`{params.get('backup_id')}` is not {explain_backup_ref(service)}.")
    record = await find_backup(ctx.store, service, ref)
    params["backup_id"] = record.id
    return record


def rows_of(plan: Sequence[PlannedStep]) -> tuple[ActionStep, ...]:
    """A new run's step rows: one waiting row per plan step, titled as the step."""
    return tuple(ActionStep(i, step.title) for i, step in enumerate(plan))
