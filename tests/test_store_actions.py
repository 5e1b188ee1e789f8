"""Store contract for Docker deploy history, on both backends.

The run ports (runs, steps, decisions, backups, leases) are held to one contract by every backend, the in-memory one
included: tests/test_run_store_contract.py.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from bot.store import Store

T0 = datetime(2026, 11, 23, 3, 0, tzinfo=UTC)


async def test_deploy_history_keeps_the_first_time_an_image_was_seen(store: Store) -> None:
    await store.record_deploy("api", "registry/api:1", "sha256:1", T0)
    await store.record_deploy("api", "registry/api:2", None, T0 + timedelta(days=1))
    await store.record_deploy("api", "registry/api:1", "sha256:1", T0 + timedelta(days=2))
    history = await store.deploy_history("api")
    assert [(r.image, r.created_at) for r in history] == [("registry/api:2", T0 + timedelta(days=1)), ("registry/api:1", T0)]
    assert await store.deploy_history("other") == []
