"""The backup-freshness check against the real store (SQLite and PostgreSQL) and a clock the test sets."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiohttp
import asyncpg
import pytest

from bot.catalog_loading import CatalogInvalid, parse_catalog
from bot.checks import CheckDeps, Status
from bot.clock import ManualClock
from bot.health import _probe
from bot.runs.models import BackupLabel, BackupRecord
from bot.store import Store, create_store
from tests.checks import CHECK

NOW = datetime(2026, 3, 10, 9, 0, tzinfo=UTC)


def deps(http: aiohttp.ClientSession, store: Store | None, service: str = "db") -> CheckDeps:
    return CheckDeps(http=http, clock=ManualClock(NOW), backups=store, service=service)


async def backup(store: Store, service: str, days_ago: float, *, verified: bool = True, deleted: bool = False) -> int:
    taken = NOW - timedelta(days=days_ago)
    record = BackupRecord(service=service, kind="postgres", path=Path(f"/b/{service}-{days_ago}.dump"), size=1024,
                          sha256="0" * 64, created_at=taken, label=BackupLabel.SCHEDULED,
                          verified_at=taken + timedelta(minutes=5) if verified else None)
    backup_id = await store.add_backup(record)
    if deleted:
        await store.mark_backup_deleted(backup_id, NOW)
    return backup_id


async def run(spec: dict, check_deps: CheckDeps) -> tuple[Status, str]:
    return await _probe(CHECK.validate_python({"type": "backup-freshness", **spec}), check_deps)


async def test_a_recent_verified_backup_is_ok(store: Store, http: aiohttp.ClientSession) -> None:
    await backup(store, "db", 3)
    await backup(store, "db", 0.25)
    assert await run({}, deps(http, store)) == (Status.OK, "last verified backup 6.0 hours ago")


async def test_an_old_backup_warns_with_the_limit(store: Store, http: aiohttp.ClientSession) -> None:
    await backup(store, "db", 8.2)
    assert await run({}, deps(http, store)) == (Status.WARNING, "last verified backup 8.2 days ago (limit 7 days)")


async def test_a_very_old_backup_is_critical_and_fractional_days_work(store: Store, http: aiohttp.ClientSession) -> None:
    await backup(store, "db", 2)
    assert await run({"age_days": {"warning": 0.5, "critical": 1.5}}, deps(http, store)) == (
        Status.CRITICAL, "last verified backup 2.0 days ago (limit 1.5 days)")


async def test_unverified_and_deleted_backups_do_not_count(store: Store, http: aiohttp.ClientSession) -> None:
    await backup(store, "db", 20)
    await backup(store, "db", 1, deleted=True)
    await backup(store, "db", 0.1, verified=False)
    assert await run({}, deps(http, store)) == (Status.CRITICAL, "last verified backup 20.0 days ago (limit 14 days)")


async def test_no_verified_backup_at_all_is_critical(store: Store, http: aiohttp.ClientSession) -> None:
    assert await run({}, deps(http, store)) == (Status.CRITICAL, "no verified backup of db yet")
    await backup(store, "db", 0.1, verified=False)
    assert await run({}, deps(http, store)) == (Status.CRITICAL, "no verified backup of db yet (1 unverified)")


async def test_another_service_is_named_by_service(store: Store, http: aiohttp.ClientSession) -> None:
    await backup(store, "db", 1)
    await backup(store, "shop-db", 9)
    assert (await run({"service": "shop-db"}, deps(http, store, service="db")))[0] is Status.WARNING


async def test_without_a_store_the_check_cannot_run(http: aiohttp.ClientSession) -> None:
    # The "unreachable" case of this kind: nothing to read the ledger from.
    assert await run({}, deps(http, None)) == (Status.ERROR, "cannot run: no backup ledger to read (the store is not connected)")


async def test_a_store_that_never_answers_times_out(pg_database: str, http: aiohttp.ClientSession) -> None:
    # A real stall: another session holds an exclusive lock on the backups table, as a long migration would.
    store = create_store(pg_database)
    await store.open()
    await store.migrate()
    locker = await asyncpg.connect(pg_database)
    try:
        async with locker.transaction():
            await locker.execute("LOCK TABLE backups IN ACCESS EXCLUSIVE MODE")
            assert await run({"timeout": 0.5}, deps(http, store)) == (Status.ERROR, "timed out after 0.5 s")
    finally:
        await locker.close()
        await store.close()


# --- the catalog: the named service must exist and have `backup:` -------------------------------------------

CATALOG = """\
services:
  db:
    environment: prod
    backup: {type: directory, paths: [/srv], directory: /b}
  api:
    environment: prod
    checks:
      - %s
"""


def problems(check: str) -> list[str]:
    with pytest.raises(CatalogInvalid) as caught:
        parse_catalog(CATALOG % check)
    return [f"{p.path}: {p.message}" for p in caught.value.problems]


def test_a_check_on_a_service_with_backups_loads() -> None:
    catalog = parse_catalog(CATALOG % "{type: backup-freshness, service: db, age_days: {warning: 1.5, critical: 3}}")
    assert catalog.services["api"].checks[0].label == "backup freshness db"


@pytest.mark.parametrize(("check", "problem"), [
    ("{type: backup-freshness}",
     "services.api.checks[0]: service 'api' has no `backup:`, so it has no backups whose age could be checked"),
    ("{type: backup-freshness, service: dbb}", "services.api.checks[0]: service 'dbb' is not in the catalog (valid: api, db)"),
    ("{type: backup-freshness, service: db, age_days: {warning: 14, critical: 7}}",
     "services.api.checks[0].age_days: warning (14) must not be above critical (7)"),
])
def test_the_catalog_refuses_what_cannot_be_checked(check: str, problem: str) -> None:
    assert problems(check) == [problem]
