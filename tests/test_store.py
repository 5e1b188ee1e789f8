"""The store contract, run against both backends (SQLite file, fresh PostgreSQL database)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta, timezone

import pytest

from bot.audit import AuditEntry, Outcome
from bot.checks import Status
from bot.health import CheckResult, HealthRun
from bot.store import Store, create_store

T0 = datetime(2026, 11, 23, 9, 0, 0, 123456, tzinfo=UTC)


def make_run(at: datetime = T0, *, scope: tuple[str, ...] = (),
             statuses: tuple[Status, ...] = (Status.OK, Status.CRITICAL)) -> HealthRun:
    results = tuple(
        CheckResult(
            service=f"svc{i}", environment="production", check=f"http /c{i}", kind="http",
            status=status, reason=f"reason {i} <&>", latency_ms=12.5 + i, checked_at=at + timedelta(seconds=1),
        )
        for i, status in enumerate(statuses)
    )
    services = tuple(f"svc{i}" for i in range(len(statuses)))
    return HealthRun(scope=scope, services=services, started_at=at, finished_at=at + timedelta(seconds=2),
                     results=results, requested_by="U1", channel_id="C1")


async def test_health_run_round_trips_with_every_result_in_order(store: Store) -> None:
    run = make_run(scope=("svc0", "svc1"), statuses=(Status.OK, Status.WARNING, Status.ERROR))
    run_id = await store.save_health_run(run)

    loaded = await store.get_health_run(run_id)

    assert loaded is not None and loaded.id == run_id
    assert loaded.scope == ("svc0", "svc1")
    assert loaded.services == run.services
    assert loaded.results == run.results
    assert loaded.started_at == T0 and loaded.started_at.tzinfo is not None
    assert loaded.status is Status.ERROR
    assert (loaded.requested_by, loaded.channel_id) == ("U1", "C1")


async def test_unknown_health_run_is_none(store: Store) -> None:
    assert await store.get_health_run(999_999) is None


async def test_health_runs_since_returns_newest_first_within_the_window(store: Store) -> None:
    old = await store.save_health_run(make_run(T0 - timedelta(days=2)))
    first = await store.save_health_run(make_run(T0))
    second = await store.save_health_run(make_run(T0 + timedelta(hours=1), statuses=(Status.OK,)))

    runs = await store.health_runs_since(T0 - timedelta(minutes=1))

    assert [run.id for run in runs] == [second, first]
    assert old not in [run.id for run in runs]
    assert len(runs[1].results) == 2 and len(runs[0].results) == 1


async def test_times_in_other_zones_are_stored_as_utc(store: Store) -> None:
    paris = timezone(timedelta(hours=1))
    run_id = await store.save_health_run(make_run(T0.astimezone(paris)))
    loaded = await store.get_health_run(run_id)
    assert loaded is not None and loaded.started_at == T0
    assert loaded.started_at.utcoffset() == timedelta(0)


async def test_naive_times_are_refused(store: Store) -> None:
    with pytest.raises(ValueError, match="naive"):
        await store.save_health_run(make_run(T0.replace(tzinfo=None)))


async def test_audit_entries_are_kept_newest_first_with_every_field(store: Store) -> None:
    first = AuditEntry(at=T0, kind="command", name="/ops", outcome=Outcome.OK, actor_id="U1",
                       channel_id="C1", args="health api", detail=None, duration_ms=2012.5)
    second = AuditEntry(at=T0 + timedelta(seconds=5), kind="command", name="/ops", outcome=Outcome.REJECTED,
                        actor_id="U2", channel_id="C1", args="helth", detail="unknown subcommand", duration_ms=3.0)
    await store.record_audit(first)
    await store.record_audit(second)

    entries = await store.audit_entries()

    assert [e.args for e in entries] == ["helth", "health api"]
    assert entries[1].outcome is Outcome.OK and entries[1].duration_ms == 2012.5 and entries[1].at == T0
    assert entries[0].detail == "unknown subcommand"
    assert [e.args for e in await store.audit_entries(since=T0 + timedelta(seconds=1))] == ["helth"]


async def test_a_key_is_claimed_once(store: Store) -> None:
    assert await store.claim("slack-event:Ev1", T0) is True
    assert await store.claim("slack-event:Ev1", T0) is False
    assert await store.claim("slack-event:Ev2", T0) is True


async def test_concurrent_claims_of_one_key_have_one_winner(store: Store) -> None:
    results = await asyncio.gather(*(store.claim("race", T0) for _ in range(10)))
    assert results.count(True) == 1


async def test_migrations_are_applied_once(database_url: str) -> None:
    first, second = create_store(database_url), create_store(database_url)
    await first.open()
    await second.open()
    try:
        assert await first.migrate() == [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14]
        assert await second.migrate() == []
    finally:
        await first.close()
        await second.close()


async def test_ping_answers_while_open_and_refuses_when_closed(database_url: str) -> None:
    from bot.errors import StoreUnavailable

    store = create_store(database_url)
    await store.open()
    await store.ping()
    await store.close()
    with pytest.raises(StoreUnavailable):
        await store.ping()


async def test_a_blocked_sqlite_write_does_not_stall_the_event_loop(tmp_path) -> None:
    import sqlite3
    import time

    from bot.store.sqlite import SqliteStore

    path = tmp_path / "locked.db"
    store = SqliteStore(path)
    await store.open()
    await store.migrate()
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN EXCLUSIVE")  # another process holds the write lock
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0.01)

    ticking = asyncio.create_task(ticker())
    asyncio.get_running_loop().call_later(0.5, other.rollback)
    started = time.perf_counter()
    await store.record_audit(AuditEntry(at=T0, kind="command", name="/ops", outcome=Outcome.OK))
    waited = time.perf_counter() - started
    ticking.cancel()
    other.close()
    await store.close()

    assert waited >= 0.45, "the write should have waited for the lock"
    assert ticks >= 20, f"the event loop ran only {ticks} times while SQLite waited"
