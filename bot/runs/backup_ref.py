"""Which backup a person means: an id, or `latest` (the service's newest verified backup). One rule for
`/ops restore` and for runbook parameters of `type: backup`.

Not responsible for restoring (the `restore` step kind) nor for the policy around it.
"""

from __future__ import annotations

from typing import Literal

from bot.errors import OpsbotError
from bot.ids import parse_id
from bot.runs.models import BackupRecord
from bot.runs.ports import BackupLedger

LATEST: Literal["latest"] = "latest"
BackupRef = int | Literal["latest"]
SEARCHED = 20  # `latest` looks this far back for a verified backup


class UnknownBackup(OpsbotError):
    """No such backup of the service (or no verified one for `latest`); the text names what there is."""


def parse_backup_ref(text: str) -> BackupRef | None:
    """`12` → 12, `latest` (any case) → `latest`; None for anything else."""
    if text.strip().lower() == LATEST:
        return LATEST
    return parse_id(text.strip())


def explain_backup_ref(service: str) -> str:
    return f"a backup id of {service} (`/ops backups {service}`), or `latest` (its newest verified backup)"


async def find_backup(store: BackupLedger, service: str, ref: BackupRef) -> BackupRecord:
    """The backup `ref` names, of `service` and not deleted; raises UnknownBackup saying what there is."""
    if ref == LATEST:
        verified = [b for b in await store.backups(service, limit=SEARCHED) if b.verified_at is not None]
        if not verified:
            raise UnknownBackup(f"`{service}` has no verified backup yet; take one with `/ops backup {service}`.")
        return verified[0]
    record = await store.get_backup(ref)
    if record is None or record.service != service or record.deleted_at is not None:
        available = [f"`{b.id}`" for b in await store.backups(service, limit=10)]
        if not available:
            raise UnknownBackup(f"`{service}` has no backup `{ref}`, nor any other yet: take one with `/ops backup {service}`.")
        raise UnknownBackup(f"`{service}` has no backup `{ref}`. Its latest: {', '.join(available)}, or `latest` "
                            f"(`/ops backups {service}` lists them).")
    return record
