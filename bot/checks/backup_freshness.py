"""Backup freshness: how long ago the latest verified backup of a service was taken, against limits in days.

It reads the backup ledger (the store); taking, verifying and pruning backups is `bot.executors`.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from bot.checks.base import CheckDeps, CheckSpec, Probe, Status, Thresholds, limit_note

# Enough rows to get past a run of failed (unverified) attempts to the last good backup.
SCAN = 500


class BackupFreshnessCheck(CheckSpec):
    """Age of the latest verified, not deleted backup in opsbot's store ("last verified backup 8.2 days ago (limit 7
    days)"); no verified backup at all is critical."""

    type: Literal["backup-freshness"]
    service: str | None = Field(default=None, min_length=1,
                                description="whose backups (that service must have a `backup:`); default: the check's own")
    age_days: Thresholds = Field(default=Thresholds(warning=7, critical=14), description="days; fractions allowed")

    def default_label(self) -> str:
        return f"backup freshness {self.service}" if self.service else "backup freshness"

    def catalog_errors(self, service: str, catalog: Any) -> list[str]:
        name = self.service or service
        if name not in catalog.services:
            return [f"service {name!r} is not in the catalog (valid: {', '.join(catalog.service_names)})"]
        if catalog.services[name].backup is None:
            return [f"service {name!r} has no `backup:`, so it has no backups whose age could be checked"]
        return []

    async def probe(self, deps: CheckDeps) -> Probe:
        name = self.service or deps.service
        if deps.backups is None or name is None:
            return Probe(Status.ERROR, "cannot run: no backup ledger to read (the store is not connected)")
        records = await deps.backups.backups(name, limit=SCAN)  # newest first, deleted ones left out
        verified = next((record for record in records if record.verified_at is not None), None)
        if verified is None:
            unverified = f" ({len(records)} unverified)" if records else ""
            return Probe(Status.CRITICAL, f"no verified backup of {name} yet{unverified}")
        # The age that matters is the data's: when the backup was taken, not when it was checked.
        days = (deps.clock.now() - verified.created_at).total_seconds() / 86400
        status = self.age_days.grade(days)
        return Probe(status, f"last verified backup {_ago(days)}{limit_note(status, self.age_days, ' days')}")


def _ago(days: float) -> str:
    if days < 1:
        return f"{max(days, 0) * 24:.1f} hours ago"
    return f"{days:.1f} days ago"
