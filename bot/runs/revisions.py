"""A service's deploy revisions, for `/ops history` and its Roll back buttons: read from its workload target.

Reads only; not responsible for rolling back (the `rollback` step kind) nor for how the list reads (`bot.views.runs`).
"""

from __future__ import annotations

import logging

from bot.executors.base import ExecutorError, Revision
from bot.runs import targets
from bot.runs.deps import RunDeps
from bot.runs.models import ActionKind

log = logging.getLogger(__name__)


async def of_service(ctx: RunDeps, service: str) -> list[Revision]:
    """Deploy revisions for `/ops history`; empty when the service has no workload target."""
    if ctx.catalog.services[service].target is None:
        return []
    workload = targets.workload_for(ctx, service, ActionKind.ROLLBACK)
    try:
        return await workload.revisions()
    except ExecutorError as exc:
        log.warning("could not list revisions of %s: %s", service, exc)
        return []
    finally:
        await targets.close(workload)
