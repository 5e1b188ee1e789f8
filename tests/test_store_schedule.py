"""The scheduler's tables on both backends: cursors only move forward, a claim bumps the attempt, only the
latest attempt may finish, a post's intent is recorded once."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from bot.scheduling.models import OccurrenceState
from bot.store import Store

T0 = datetime(2026, 11, 23, 9, tzinfo=UTC)


async def test_a_jobs_cursor_starts_when_first_seen_and_only_moves_forward(store: Store) -> None:
    assert await store.register_job("digest:daily", T0) == T0
    assert await store.register_job("digest:daily", T0 + timedelta(hours=1)) == T0  # already known
    await store.record_occurrences("digest:daily", [T0 + timedelta(minutes=5)], [], T0 + timedelta(minutes=5))
    await store.record_occurrences("digest:daily", [T0 + timedelta(minutes=5)], [], T0 + timedelta(minutes=1))  # a slow replica
    assert await store.register_job("digest:daily", T0) == T0 + timedelta(minutes=5)
    assert [o.due_at for o in await store.open_occurrences(["digest:daily"])] == [T0 + timedelta(minutes=5)]


async def test_only_the_latest_attempt_may_finish_an_occurrence(store: Store) -> None:
    await store.register_job("backup:db", T0)
    await store.record_occurrences("backup:db", [T0], [], T0)
    first = await store.claim_occurrence("backup:db", T0, "replica-a", T0)
    second = await store.claim_occurrence("backup:db", T0, "replica-b", T0 + timedelta(seconds=20))  # a took too long
    assert (first.attempt, second.attempt) == (1, 2)  # type: ignore[union-attr]
    assert not await store.finish_occurrence("backup:db", T0, OccurrenceState.DONE, "a's late word", T0, attempt=1)
    assert await store.finish_occurrence("backup:db", T0, OccurrenceState.FAILED, "b's", T0, attempt=2)
    assert await store.claim_occurrence("backup:db", T0, "replica-c", T0) is None  # finished is final
    [occurrence] = await store.occurrences("backup:db")
    assert (occurrence.state, occurrence.owner, occurrence.detail) == (OccurrenceState.FAILED, "replica-b", "b's")
    assert (await store.latest_finished(["backup:db", "digest:daily"])).keys() == {"backup:db"}


async def test_a_missed_occurrence_is_skipped_and_skipping_needs_it_pending(store: Store) -> None:
    await store.register_job("digest:weekly", T0)
    await store.record_occurrences("digest:weekly", [T0], [(T0 - timedelta(days=7), "missed")], T0)
    assert await store.finish_occurrence("digest:weekly", T0, OccurrenceState.SKIPPED, "late", T0)
    assert not await store.finish_occurrence("digest:weekly", T0, OccurrenceState.SKIPPED, "again", T0)
    assert {o.state for o in await store.occurrences("digest:weekly")} == {OccurrenceState.SKIPPED}


async def test_a_posts_intent_is_recorded_once_and_its_ts_after(store: Store) -> None:
    first = await store.begin_post("digest:daily@x:C0OPS", "C0OPS", T0)
    again = await store.begin_post("digest:daily@x:C0OPS", "C0OPS", T0 + timedelta(seconds=5))
    assert (first.new, again.new, again.ts, again.created_at) == (True, False, None, T0)
    await store.set_posted("digest:daily@x:C0OPS", "1700000000.000100")
    assert (await store.begin_post("digest:daily@x:C0OPS", "C0OPS", T0)).ts == "1700000000.000100"
