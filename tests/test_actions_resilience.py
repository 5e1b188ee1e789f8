"""The action flow when things go wrong: two replicas, a replica that goes silent, an unreachable lock
store, and the background loop that expires requests and interrupts abandoned runs."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import aiohttp

from bot.clock import ManualClock
from bot.runs import execution
from bot.runs.models import ActionKind, ActionRun, ActionState
from bot.store import create_store
from playground.slack_api import FakeSlack
from tests.conftest import REDIS_URL, free_port, make_settings, start_bot
from tests.test_approvals import ALICE, BOB, CAROL, DAVE, catalog, click, current, requested, text

if TYPE_CHECKING:
    from tests.podman import Containers, Images, Podman

pytest_plugins = ["tests.podman"]


async def eventually(check: Callable[[], Awaitable[bool]], timeout: float = 5.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not await check():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.02)


async def test_two_replicas_approving_two_restarts_of_one_service_restart_it_once_at_a_time(
    podman: Podman, images: Images, containers: Containers, slack: FakeSlack, http: aiohttp.ClientSession,
    pg_database: str, tmp_path: Path,
) -> None:
    name, port = containers.name("api"), containers.port()
    containers.run(name, images.v1, port=port)
    slack.groups = {"S0LEADS": [BOB, DAVE]}
    yaml = f"""
approvals:
  environments:
    production: {{default: {{approvals: 1, approvers: [S0LEADS]}}}}
services:
  api:
    environment: production
    target: {{type: docker, container: {name}, docker_host: "{podman.base_url}", start_timeout: 20, poll_interval: 0.3}}
"""
    settings = make_settings(slack, pg_database, redis_url=REDIS_URL, redis_prefix=f"opsbot-test-{port}:")
    one, runner_one = await start_bot(settings, yaml, slack, http)
    two, runner_two = await start_bot(settings, yaml, slack, http)
    try:
        first, _ = await requested(one, "restart api")
        second, _ = await requested(two, "restart api", user=CAROL)
        await asyncio.gather(click(one, "approval.approve", str(first), BOB), click(two, "approval.approve", str(second), DAVE))
        await asyncio.gather(one.settle(), two.settle())
        states = sorted([(await one.ctx.store.get_action(first)).state.value,
                         (await one.ctx.store.get_action(second)).state.value])  # type: ignore[union-attr]
        assert states == ["failed", "succeeded"]
        loser = next(r for r in [await one.ctx.store.get_action(first), await one.ctx.store.get_action(second)] if r
                     and r.state is ActionState.FAILED)
        assert "is running on `api`" in loser.outcome and "nothing ran" in loser.target_state
    finally:
        await runner_one.cleanup()
        await runner_two.cleanup()


async def test_a_silent_replicas_run_is_interrupted_by_the_loop_and_a_live_one_is_not(
    slack: FakeSlack, database_url: str, http: aiohttp.ClientSession, tmp_path: Path,
) -> None:
    clock = ManualClock(datetime(2026, 11, 23, 3, 0, tzinfo=UTC))
    bot, runner = await start_bot(make_settings(slack, database_url), catalog(tmp_path), slack, http, clock=clock)
    try:
        now = clock.now()
        run_id = await bot.ctx.store.create_action(ActionRun(
            service="files", kind=ActionKind.BACKUP, environment="production", target="x", requested_by=ALICE,
            created_at=now, expires_at=now + timedelta(hours=1), state=ActionState.APPROVED))
        await bot.ctx.store.transition_action(run_id, ActionState.RUNNING, expect={ActionState.APPROVED}, lease_owner="replica-b",
                                              heartbeat_at=now)
        assert await execution.recover(bot.ctx) == 0, "a fresh heartbeat means a live run"

        # replica-b went silent: a lease later its run is stale, and the loop's next chore pass sees it.
        clock.advance(bot.ctx.settings.lease_seconds + bot.ctx.settings.chore_seconds + 1)

        async def interrupted() -> bool:
            run = await bot.ctx.store.get_action(run_id)
            return run is not None and run.state is ActionState.INTERRUPTED
        await eventually(interrupted)
    finally:
        await runner.cleanup()


class SteppedClock(ManualClock):
    """A manual clock that, moved on, waits until whoever it woke (the scheduler's loop) is asleep again: each
    step's pass has then run to the end."""

    def __init__(self, start: datetime) -> None:
        super().__init__(start)
        self.naps = 0
        self.deadlines: list[float] = []

    async def sleep(self, seconds: float) -> None:
        self.naps += 1
        deadline = self.monotonic() + max(seconds, 0.0)
        self.deadlines.append(deadline)
        try:
            await super().sleep(seconds)
        finally:
            self.deadlines.remove(deadline)

    async def step(self, seconds: float) -> None:
        woken = sum(1 for at in self.deadlines if at <= self.monotonic() + seconds)
        naps = self.naps
        self.advance(seconds)

        async def asleep_again() -> bool:
            return self.naps >= naps + woken
        await eventually(asleep_again)


def silent_run(now: datetime) -> ActionRun:
    return ActionRun(service="files", kind=ActionKind.BACKUP, environment="production", target="x", requested_by=ALICE,
                     created_at=now, expires_at=now + timedelta(hours=1), state=ActionState.APPROVED)


async def test_a_live_replica_sees_a_dead_peers_run_within_30_s_by_default(
    slack: FakeSlack, database_url: str, http: aiohttp.ClientSession, tmp_path: Path,
) -> None:
    clock = SteppedClock(datetime(2026, 11, 23, 3, 0, tzinfo=UTC))
    bot, runner = await start_bot(make_settings(slack, database_url), catalog(tmp_path), slack, http, clock=clock)
    try:
        run_id = await bot.ctx.store.create_action(silent_run(clock.now()))
        # replica-b's last heartbeat, then it is SIGKILLed.
        await bot.ctx.store.transition_action(run_id, ActionState.RUNNING, expect={ActionState.APPROVED},
                                              lease_owner="replica-b", heartbeat_at=clock.now())
        seen_at, interrupted = None, None
        for second in range(1, 41):
            await clock.step(1)
            run = await bot.ctx.store.get_action(run_id)
            if run is not None and run.state is ActionState.INTERRUPTED:
                seen_at, interrupted = second, run
                break
        assert seen_at is not None and bot.ctx.settings.lease_seconds <= seen_at <= 30, seen_at
        assert interrupted is not None and interrupted.outcome == "Interrupted: opsbot stopped while this was running."
    finally:
        await runner.cleanup()


async def test_a_replica_that_starts_interrupts_stale_runs_at_once_and_leaves_live_ones(
    slack: FakeSlack, database_url: str, http: aiohttp.ClientSession, tmp_path: Path,
) -> None:
    now = datetime(2026, 11, 23, 3, 0, tzinfo=UTC)
    settings = make_settings(slack, database_url)
    store = create_store(database_url)
    await store.open()
    await store.migrate()
    try:
        # A replica killed 25 s ago (by default its lease lapsed 5 s ago), and a live peer that renewed 3 s ago.
        assert settings.lease_seconds < 25
        dead = await store.create_action(silent_run(now))
        await store.transition_action(dead, ActionState.RUNNING, expect={ActionState.APPROVED}, lease_owner="replica-b",
                                      heartbeat_at=now - timedelta(seconds=25))
        live = await store.create_action(silent_run(now))
        await store.transition_action(live, ActionState.RUNNING, expect={ActionState.APPROVED}, lease_owner="replica-c",
                                      heartbeat_at=now - timedelta(seconds=3))
    finally:
        await store.close()
    bot, runner = await start_bot(settings, catalog(tmp_path), slack, http, clock=ManualClock(now))
    try:  # started and serving; the clock has not moved
        assert (await bot.ctx.store.get_action(dead)).state is ActionState.INTERRUPTED  # type: ignore[union-attr]
        assert (await bot.ctx.store.get_action(live)).state is ActionState.RUNNING  # type: ignore[union-attr]
    finally:
        await runner.cleanup()


async def test_the_background_loop_expires_requests(slack: FakeSlack, database_url: str, http: aiohttp.ClientSession,
                                                    tmp_path: Path) -> None:
    slack.groups = {"S0LEADS": [BOB], "S0OPS": [ALICE]}
    clock = ManualClock(datetime(2026, 11, 23, 3, 0, tzinfo=UTC))
    bot, runner = await start_bot(make_settings(slack, database_url), catalog(tmp_path), slack, http, clock=clock)
    try:
        run_id, _ = await requested(bot, "backup files")
        clock.advance(31 * 60)

        async def expired() -> bool:
            run = await bot.ctx.store.get_action(run_id)
            return run is not None and run.state is ActionState.EXPIRED
        await eventually(expired)
        await eventually(lambda: _async("⌛ Expired" in text(current(bot, run_id))))
    finally:
        await runner.cleanup()


async def _async(value: bool) -> bool:
    return value


async def test_an_unreachable_lock_store_refuses_to_act_and_says_so(slack: FakeSlack, http: aiohttp.ClientSession,
                                                                    tmp_path: Path) -> None:
    slack.groups = {"S0LEADS": [BOB], "S0OPS": [ALICE]}
    settings = make_settings(slack, f"sqlite:///{tmp_path / 'o.db'}", redis_url=f"redis://127.0.0.1:{free_port()}/0")
    bot, runner = await start_bot(settings, catalog(tmp_path), slack, http)
    try:
        run_id, _ = await requested(bot, "backup files")
        await click(bot, "approval.approve", str(run_id), BOB)
        run = await bot.ctx.store.get_action(run_id)
        assert run is not None and run.state is ActionState.FAILED
        assert "cannot reach its lock store (Redis)" in run.outcome and "nothing was run" in run.outcome
        assert "❌ Failed" in text(current(bot, run_id)) and await bot.ctx.store.backups("files") == []
        async with http.get(f"{bot.url}/healthz") as response:
            assert response.status == 503
    finally:
        await runner.cleanup()
