"""The `check` step as a health gate, in milliseconds: it runs only the checks it names, shows each one's value and
reason, fails on a warning unless told otherwise, refuses unknown names at load, and says so when the service has no
checks at all. The checks' results come from a switchboard (tests/run_harness.py's in-memory run deps).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Collection
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import pytest

from bot.catalog_loading import CatalogInvalid, parse_catalog
from bot.checks.base import CheckDeps, Status
from bot.clock import SystemClock
from bot.executors.base import Effect, ExecutorError
from bot.health import CheckResult, HealthRun, run_checks
from bot.runs import requests, runbook_plans, steps
from bot.runs.models import ActionKind, ActionRun, ActionState, PlannedStep, StepState
from bot.runs.steps.base import UndoBook
from bot.runs.steps.check import NO_CHECKS
from tests.conftest import free_port
from tests.run_harness import ALICE, CHANNEL, Deps, settle, words

CATALOG = """
services:
  shop:
    environment: staging
    target: {type: demo, app: shop, image: "shop:1.0"}
    checks:
      - {type: http, name: front, url: "http://127.0.0.1:9/health"}
      - {type: redis, name: queue, url: "redis://127.0.0.1:9/0", lists: {jobs: {warning: 10}}}
      - {type: tcp, host: 127.0.0.1, port: 9}
  bare:
    environment: staging
    target: {type: demo, app: bare, image: "bare:1.0"}
runbooks:
  gate:
    services: [shop]
    approvals: {approvals: 0}
    steps:
      - {kind: check, service: shop, checks: [queue], attempts: 3, interval: 5}
"""


@dataclass
class Gates(Deps):
    """The run deps with a switchboard for the checks: each check label's (status, reason), OK unless set; a list
    of them is used one per try."""

    found: dict[str, Any] = field(default_factory=dict)
    asked: list[tuple[str, ...]] = field(default_factory=list)

    async def check(self, service: str, only: Collection[str] = ()) -> HealthRun:
        self.asked.append(tuple(only))
        now = self.clock.now()
        results = []
        for spec in self.catalog.services[service].checks:
            if only and spec.label not in only:
                continue
            given = self.found.get(spec.label, (Status.OK, "fine"))
            status, reason = given.pop(0) if isinstance(given, list) and len(given) > 1 else (
                given[0] if isinstance(given, list) else given)
            results.append(CheckResult(service, "staging", spec.label, spec.type, status, reason, 1.0, now))
        return HealthRun((service,), now, now, tuple(results), services=(service,))


@pytest.fixture
async def deps() -> AsyncIterator[Gates]:
    deps = Gates(catalog=parse_catalog(CATALOG))
    yield deps
    await deps.tasks.drain(timeout=0)


async def gate(deps: Gates, **args: Any) -> PlannedStep:
    return await steps.plan_builtin(deps, "check", args.pop("service", "shop"), args)


async def perform(deps: Gates, step: PlannedStep) -> tuple[str, list[str]]:
    notes: list[str] = []

    async def note(text: str) -> None:
        notes.append(text)

    run = ActionRun(service="shop", kind=ActionKind.RUNBOOK, environment="staging", target="shop", requested_by=ALICE,
                    created_at=deps.clock.now(), expires_at=deps.clock.now())
    book = UndoBook({}, _discard)
    return await steps.perform(deps, run, step, book, note), notes


async def _discard(data: dict[str, Any]) -> None:
    return None


# --- which checks, and what the step says ------------------------------------------------------------------------


async def test_a_gate_runs_only_the_checks_it_names_and_shows_each_ones_value_and_reason(deps: Gates) -> None:
    deps.found = {"front": (Status.CRITICAL, "HTTP 503"), "queue": (Status.OK, "PONG, 1.0 MiB used; jobs: 3 items")}
    step = await gate(deps, checks=["queue"])

    detail, _ = await perform(deps, step)

    assert deps.asked == [("queue",)]  # the failing `front` was not even run
    assert detail == "queue: ok, PONG, 1.0 MiB used; jobs: 3 items"
    assert step.title == "Check queue of shop" and step.probe == "waits on queue; a warning fails it"


async def test_a_gate_naming_no_checks_waits_on_every_check_and_shows_each(deps: Gates) -> None:
    deps.found = {"front": (Status.OK, "HTTP 200 in 3 ms")}
    step = await gate(deps)

    detail, _ = await perform(deps, step)

    assert deps.asked == [()]
    assert detail == "front: ok, HTTP 200 in 3 ms; queue: ok, fine; tcp 127.0.0.1:9: ok, fine"
    assert step.title == "Check the health of shop"
    assert step.probe == "waits on front, queue, tcp 127.0.0.1:9; a warning fails it"


async def test_a_warning_fails_the_gate_by_default(deps: Gates) -> None:
    deps.found = {"queue": (Status.WARNING, "jobs: 12 items (limit 10)")}

    with pytest.raises(ExecutorError) as failed:
        await perform(deps, await gate(deps, checks=["queue", "front"]))

    assert str(failed.value) == "shop is not healthy: queue: warning, jobs: 12 items (limit 10)"
    assert failed.value.effect is Effect.UNTOUCHED


async def test_a_gate_may_let_a_warning_pass(deps: Gates) -> None:
    deps.found = {"queue": (Status.WARNING, "jobs: 12 items (limit 10)")}
    step = await gate(deps, checks=["queue"], warning_passes=True)

    detail, _ = await perform(deps, step)

    assert detail == "queue: warning, jobs: 12 items (limit 10)" and step.probe == "waits on queue; a warning passes"


@pytest.mark.parametrize("status", [Status.CRITICAL, Status.ERROR])
async def test_critical_and_errors_fail_even_where_warnings_pass(deps: Gates, status: Status) -> None:
    deps.found = {"queue": (status, "cannot reach redis://127.0.0.1:9/0")}
    with pytest.raises(ExecutorError, match=f"queue: {status.value}, cannot reach"):
        await perform(deps, await gate(deps, checks=["queue"], warning_passes=True))


async def test_tries_again_showing_what_failed_then_says_on_which_try_it_passed(deps: Gates) -> None:
    deps.found = {"queue": [(Status.WARNING, "jobs: 12 items (limit 10)"), (Status.OK, "jobs: 2 items")]}

    detail, notes = await perform(deps, await gate(deps, checks=["queue"], attempts=3, interval=5))

    assert detail == "queue: ok, jobs: 2 items (on try 2)"
    assert notes == ["try 2 of 3 in 5 s (last: queue: warning, jobs: 12 items (limit 10))"]
    assert deps.asked == [("queue",), ("queue",)] and deps.clock.slept == [5.0]


async def test_after_its_last_try_the_gate_fails_naming_the_tries(deps: Gates) -> None:
    deps.found = {"front": (Status.CRITICAL, "HTTP 503")}
    with pytest.raises(ExecutorError, match=r"^shop is not healthy after 2 tries: front: critical, HTTP 503$"):
        await perform(deps, await gate(deps, checks=["front"], attempts=2, interval=1))


# --- no checks, and names the catalog does not have ----------------------------------------------------------------


async def test_a_gate_on_a_service_without_checks_says_so_in_the_plan_and_the_result(deps: Gates) -> None:
    step = await gate(deps, service="bare")

    detail, _ = await perform(deps, step)

    assert step.probe == NO_CHECKS == "no health checks in the catalog" and detail == NO_CHECKS
    assert deps.asked == []  # nothing to run


async def test_a_named_check_gone_from_the_catalog_since_planning_refuses_the_step(deps: Gates) -> None:
    step = await gate(deps, checks=["queue"])
    deps.catalog = parse_catalog(CATALOG.replace("name: queue", "name: jobs queue").replace("checks: [queue]",
                                                                                           "checks: [jobs queue]"))
    with pytest.raises(ExecutorError, match=r"shop has no check named queue any more \(its checks: front, jobs queue, "
                                            r"tcp 127.0.0.1:9\)") as refused:
        await perform(deps, step)
    assert refused.value.effect is Effect.UNTOUCHED and deps.asked == []


def test_an_unknown_check_name_is_refused_at_load_with_the_valid_names() -> None:
    with pytest.raises(CatalogInvalid) as refused:
        parse_catalog(CATALOG.replace("checks: [queue]", "checks: [queue, quue, disk]"))
    text = str(refused.value)
    assert "services.shop has no check named 'quue'; did you mean `queue`? (its checks: front, queue, tcp 127.0.0.1:9)" in text
    assert "services.shop has no check named 'disk' (its checks: front, queue, tcp 127.0.0.1:9)" in text
    assert "'queue'" not in text.replace("`queue`", "")


def test_a_check_named_twice_is_refused_at_load() -> None:
    with pytest.raises(CatalogInvalid, match="names queue more than once"):
        parse_catalog(CATALOG.replace("checks: [queue]", "checks: [queue, queue]"))


async def test_a_plan_stored_before_gates_chose_checks_still_runs_every_check(deps: Gates) -> None:
    # A migrated row: its args have neither `checks` nor `warning_passes`.
    old = PlannedStep(kind="check", service="shop", args={"attempts": 1, "interval": 2.0}, title="Check the health of shop",
                      undo=None, on_failure="stop", timeout=600, retries=0)
    deps.found = {"tcp 127.0.0.1:9": (Status.WARNING, "slow connect")}
    with pytest.raises(ExecutorError, match=r"tcp 127\.0\.0\.1:9: warning, slow connect"):
        await perform(deps, old)
    assert deps.asked == [()]


# --- through a run: the run message ---------------------------------------------------------------------------------


async def test_the_run_message_shows_the_gated_checks_value_and_reason(deps: Gates) -> None:
    deps.found = {"queue": [(Status.WARNING, "jobs: 12 items (limit 10)"), (Status.OK, "jobs: 4 items")],
                  "front": (Status.CRITICAL, "HTTP 503")}
    draft = await runbook_plans.plan(deps, "gate", {}, requested_by=ALICE, channel_id=CHANNEL)
    assert draft.plan[0].probe == "waits on queue; a warning fails it"
    await requests.request(deps, draft.id or 0, ALICE)
    await settle(deps)

    run = await deps.store.get_action(draft.id or 0)
    assert run is not None and run.state is ActionState.SUCCEEDED, run
    assert [(s.state, s.detail) for s in run.steps] == [(StepState.SUCCEEDED, "queue: ok, jobs: 4 items (on try 2)")]
    assert "queue: ok, jobs: 4 items (on try 2)" in words(deps.chat.updated[run.message_ts or ""])


# --- the runner: only the chosen checks run ------------------------------------------------------------------------


async def test_the_health_runner_runs_only_the_checks_a_gate_names(http: aiohttp.ClientSession) -> None:
    # Two real checks on ports nobody listens on: each would fail; the one not named is never tried.
    closed = free_port()
    catalog = parse_catalog(f"""
services:
  shop:
    environment: staging
    checks:
      - {{type: tcp, name: db port, host: 127.0.0.1, port: {closed}, timeout: 1}}
      - {{type: tcp, name: cache port, host: 127.0.0.1, port: {closed}, timeout: 1}}
""")
    only = await run_checks(catalog, ("shop",), CheckDeps(http=http), SystemClock(), only=("cache port",))
    every = await run_checks(catalog, ("shop",), CheckDeps(http=http), SystemClock())
    assert [(r.check, r.status) for r in only.results] == [("cache port", Status.CRITICAL)]
    assert [r.check for r in every.results] == ["db port", "cache port"]
