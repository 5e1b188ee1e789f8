"""What every backup executor shares about its backup files: the state a refused deletion leaves, and deleting one
backup file within its directory. The `backup:` catalog models are `bot.executors.backup_targets`."""

from __future__ import annotations

import asyncio
from pathlib import Path

from bot.executors.base import Artifact, Effect, ExecutorError, TargetState

FILE_LEFT = TargetState("nothing was changed; the backup file was left as it is", Effect.UNTOUCHED)


def within(path: Path, directory: Path) -> bool:
    return path.resolve().parent == directory.resolve()


async def delete_within(directory: Path, artifact: Artifact) -> None:
    """Remove a backup file (already gone is fine), refusing one outside `directory`: retention hands in paths
    from the store, and a wrong row must not delete some other file."""
    if not within(artifact.path, directory):
        raise ExecutorError(f"{artifact.path} is not in {directory}; not deleted", state=FILE_LEFT.text,
                            effect=FILE_LEFT.effect)
    await asyncio.to_thread(artifact.path.unlink, missing_ok=True)
