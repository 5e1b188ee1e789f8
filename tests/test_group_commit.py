"""The audit log's group commit: concurrent requests' entries share a transaction, a lone one is written at once, and
each caller still gets its own id, its own rows or its own error. The batching is rehearsed against an in-memory
transaction (milliseconds); a burst on both real backends checks every entry lands as its own row."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import UTC, datetime

import pytest

from bot.audit import AuditEntry, Outcome
from bot.errors import StoreUnavailable
from bot.store import Store
from bot.store.group_commit import GroupCommit, Rows
from bot.store.sql import Statement

T0 = datetime(2026, 11, 23, 3, 0, tzinfo=UTC)


class Transactions:
    """An in-memory `_atomic`: each call is one transaction; a statement naming `refused` is refused by the database,
    and while `down` every transaction fails as an outage. It answers on the next turn of the loop, like a store."""

    def __init__(self) -> None:
        self.written: list[list[str]] = []
        self.down = False

    async def __call__(self, statements: Sequence[Statement]) -> list[Rows]:
        await asyncio.sleep(0)
        if self.down:
            raise StoreUnavailable("the store is down")
        if any(sql == "refused" for sql, _ in statements):
            raise ValueError("the database refused a statement")
        self.written.append([sql for sql, _ in statements])
        return [[{"id": args[0]}] for _, args in statements]


async def test_a_lone_statement_is_written_at_once_in_its_own_transaction() -> None:
    transactions = Transactions()
    commit = GroupCommit(transactions)
    assert await commit.run(("a", [1])) == [{"id": 1}]
    assert transactions.written == [["a"]]


async def test_statements_asked_for_while_one_is_written_share_the_next_transaction() -> None:
    transactions = Transactions()
    commit = GroupCommit(transactions)
    first = asyncio.ensure_future(commit.run(("s0", [0])))
    await asyncio.sleep(0)  # s0 is being written: the burst waits for it, then goes in one transaction
    rows = await asyncio.gather(*(commit.run((f"s{i}", [i])) for i in range(1, 50)))
    assert await first == [{"id": 0}]
    assert rows == [[{"id": i}] for i in range(1, 50)], "each caller gets its own statement's rows"
    assert [len(t) for t in transactions.written] == [1, 49]
    assert [sql for t in transactions.written for sql in t] == [f"s{i}" for i in range(50)], "in the order asked"


async def test_statements_asked_for_in_the_same_turn_of_the_loop_share_one_transaction() -> None:
    transactions = Transactions()
    commit = GroupCommit(transactions)
    await asyncio.gather(*(commit.run((f"s{i}", [i])) for i in range(20)))
    assert [len(t) for t in transactions.written] == [20]


async def test_a_burst_longer_than_one_transaction_takes_is_written_in_several() -> None:
    transactions = Transactions()
    commit = GroupCommit(transactions, most=10)
    await asyncio.gather(*(commit.run((f"s{i}", [i])) for i in range(25)))
    assert [len(t) for t in transactions.written] == [10, 10, 5]


async def test_a_statement_the_database_refuses_fails_only_its_own_caller() -> None:
    transactions = Transactions()
    commit = GroupCommit(transactions)
    first = asyncio.ensure_future(commit.run(("s0", [0])))
    await asyncio.sleep(0)  # s0's transaction is under way: the next three wait for one together
    results = await asyncio.gather(commit.run(("s1", [1])), commit.run(("refused", [2])), commit.run(("s3", [3])),
                                   return_exceptions=True)
    assert await first == [{"id": 0}]
    assert results[0] == [{"id": 1}] and results[2] == [{"id": 3}]
    assert isinstance(results[1], ValueError)
    assert transactions.written == [["s0"], ["s1"], ["s3"]], "the refused batch is written again one by one"


async def test_an_outage_fails_every_caller_of_its_transaction_and_the_next_burst_is_written_once_it_is_over() -> None:
    transactions = Transactions()
    commit = GroupCommit(transactions)
    transactions.down = True
    results = await asyncio.gather(*(commit.run((f"s{i}", [i])) for i in range(5)), return_exceptions=True)
    assert all(isinstance(r, StoreUnavailable) for r in results)
    assert transactions.written == []
    transactions.down = False
    assert await asyncio.gather(*(commit.run((f"t{i}", [i])) for i in range(3))) == [[{"id": i}] for i in range(3)]


async def test_a_caller_that_stops_waiting_has_its_statement_written_all_the_same() -> None:
    transactions = Transactions()
    commit = GroupCommit(transactions)
    waiting = asyncio.ensure_future(commit.run(("s0", [0])))
    await asyncio.sleep(0)
    waiting.cancel()
    assert await commit.run(("s1", [1])) == [{"id": 1}]
    assert [sql for t in transactions.written for sql in t] == ["s0", "s1"]


# --- both real backends ------------------------------------------------------------------------------------------


async def test_a_burst_of_requests_each_get_their_own_entry_and_outcome(store: Store) -> None:
    ids = await asyncio.gather(*(store.record_audit(AuditEntry(
        at=T0, kind="command", name="/ops", outcome=Outcome.REQUESTED, actor_id=f"U{i}", args=f"help {i}"))
        for i in range(60)))
    assert len(set(ids)) == 60
    changed = await asyncio.gather(*(store.finish_audit(audit_id, Outcome.OK, f"done {i}", float(i))
                                     for i, audit_id in enumerate(ids)))
    assert all(changed)
    assert not any(await asyncio.gather(*(store.finish_audit(audit_id, Outcome.ERROR, "twice", 1.0)
                                          for audit_id in ids[:5])))
    found = {e.id: e for e in await store.audit_entries(limit=100)}
    for i, audit_id in enumerate(ids):
        entry = found[audit_id]
        assert (entry.actor_id, entry.args, entry.outcome, entry.detail, entry.duration_ms) == (
            f"U{i}", f"help {i}", Outcome.OK, f"done {i}", float(i))


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_a_burst_on_sqlite_takes_a_few_transactions_not_one_each(store: Store) -> None:
    calls: list[int] = []
    atomic = store._atomic  # type: ignore[attr-defined]

    async def counted(statements: Sequence[Statement]) -> list[Rows]:
        calls.append(len(statements))
        return await atomic(statements)

    store._atomic = counted  # type: ignore[attr-defined]
    await asyncio.gather(*(store.record_audit(AuditEntry(at=T0, kind="command", name="/ops", outcome=Outcome.REQUESTED))
                           for _ in range(40)))
    assert sum(calls) == 40 and len(calls) <= 3


async def test_with_several_writers_a_burst_goes_in_transactions_at_once_and_each_caller_gets_its_own() -> None:
    in_flight, most = 0, 0
    release = asyncio.Event()

    async def slow(statements: Sequence[Statement]) -> list[Rows]:
        nonlocal in_flight, most
        in_flight += 1
        most = max(most, in_flight)
        await release.wait()
        in_flight -= 1
        return [[{"id": args[0]}] for _, args in statements]

    commit = GroupCommit(slow, writers=2)
    first = asyncio.ensure_future(commit.run(("s0", [0])))
    await asyncio.sleep(0)
    second = asyncio.ensure_future(commit.run(("s1", [1])))  # s0's transaction is still open: a second one starts
    await asyncio.sleep(0)
    rest = asyncio.gather(*(commit.run((f"s{i}", [i])) for i in range(2, 30)))  # both busy: they wait, together
    await asyncio.sleep(0.01)
    assert in_flight == 2
    release.set()
    assert (await first, await second) == ([{"id": 0}], [{"id": 1}])
    assert await rest == [[{"id": i}] for i in range(2, 30)]
    assert most == 2


async def test_a_writer_cut_short_leaves_its_waiting_statements_to_the_others_and_the_last_one_fails_them() -> None:
    release = asyncio.Event()

    async def blocked(statements: Sequence[Statement]) -> list[Rows]:
        await release.wait()
        return [[{"id": args[0]}] for _, args in statements]

    commit = GroupCommit(blocked, writers=1)
    first = asyncio.ensure_future(commit.run(("s0", [0])))
    await asyncio.sleep(0)
    waiting = asyncio.ensure_future(commit.run(("s1", [1])))
    await asyncio.sleep(0)
    for writer in list(commit._writers):  # the loop closing under it
        writer.cancel()
    with pytest.raises(asyncio.CancelledError):
        await first
    with pytest.raises(asyncio.CancelledError):
        await waiting


async def test_a_statement_asked_for_right_after_the_last_one_was_written_is_written_too() -> None:
    # The caller wakes before the finished writer is forgotten: the next statement must not wait for it.
    transactions = Transactions()
    commit = GroupCommit(transactions)
    for i in range(3):
        assert await asyncio.wait_for(commit.run((f"s{i}", [i])), timeout=2) == [{"id": i}]
    assert transactions.written == [["s0"], ["s1"], ["s2"]]
