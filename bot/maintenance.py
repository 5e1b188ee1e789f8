"""The core's periodic work: expire approval requests nobody answered, interrupt action runs whose replica
went silent, send incident reminders that are due. Each pass is idempotent and safe on several replicas
(every change is a compare-and-set), so it needs no lease. The digests issue's scheduler will take it over."""

from __future__ import annotations

import logging

from bot.actions import service as actions
from bot.context import Context
from bot.incidents import reminders

log = logging.getLogger(__name__)

INTERVAL = 30.0


async def one_pass(ctx: Context) -> None:
    for name, work in (("expiring requests", actions.expire_due), ("recovering runs", actions.recover),
                       ("incident reminders", reminders.remind_due)):
        try:
            await work(ctx)
        except Exception:
            # One failing chore must not starve the others: each is retried on the next pass.
            log.exception("%s failed; trying again in %s s", name, INTERVAL)


async def loop(ctx: Context, interval: float = INTERVAL) -> None:
    while True:
        await ctx.clock.sleep(interval)  # start-up has just done one pass
        await one_pass(ctx)
