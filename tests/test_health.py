"""Health runs: scope resolution, concurrency under a bound, and recording a run."""

from __future__ import annotations

import time

import aiohttp
import pytest

from bot.catalog_loading import parse_catalog
from bot.checks import CheckDeps, Status
from bot.clock import SystemClock
from bot.errors import UnknownService
from bot.health import resolve_scope, run_and_record, run_checks
from bot.store import Store
from tests.targets import Targets

CATALOG = parse_catalog("services:\n  api: {environment: prod}\n  db: {environment: prod}\n  web: {environment: prod}\n")


@pytest.mark.parametrize(("typed", "scope"),
                         [([], ()), (["all"], ()), (["ALL"], ()), (["all", "api"], ()), (["db", "api", "db"], ("db", "api"))])
def test_scope_from_what_was_typed(typed: list[str], scope: tuple[str, ...]) -> None:
    assert resolve_scope(CATALOG, typed) == scope


def test_unknown_service_names_the_valid_ones_and_the_closest() -> None:
    with pytest.raises(UnknownService) as caught:
        resolve_scope(CATALOG, ["api", "wbe"])
    assert caught.value.given == "wbe" and caught.value.suggestion == "web"
    assert caught.value.valid == ["all", "api", "db", "web"]


def slow_catalog(targets: Targets, services: int, concurrency: int, ms: int = 300) -> str:
    entries = "".join(
        f"  s{i}:\n    environment: prod\n    checks:\n      - {{type: http, url: '{targets.url(f'/slow?ms={ms}')}'}}\n"
        for i in range(services)
    )
    return f"health:\n  concurrency: {concurrency}\nservices:\n{entries}"


async def test_checks_run_concurrently(targets: Targets, http: aiohttp.ClientSession) -> None:
    catalog = parse_catalog(slow_catalog(targets, services=8, concurrency=16))
    started = time.perf_counter()
    run = await run_checks(catalog, (), CheckDeps(http=http), SystemClock())
    elapsed = time.perf_counter() - started
    assert [r.status for r in run.results] == [Status.OK] * 8
    assert elapsed < 8 * 0.3 / 2, f"8 checks of 300 ms took {elapsed:.2f} s: not concurrent"


async def test_concurrency_is_bounded_by_the_catalog(targets: Targets, http: aiohttp.ClientSession) -> None:
    catalog = parse_catalog(slow_catalog(targets, services=4, concurrency=1, ms=200))
    started = time.perf_counter()
    await run_checks(catalog, (), CheckDeps(http=http), SystemClock())
    assert time.perf_counter() - started >= 4 * 0.2, "with concurrency 1 the checks must run one at a time"


async def test_a_recorded_run_keeps_who_where_and_every_result(store: Store, targets: Targets,
                                                               http: aiohttp.ClientSession) -> None:
    catalog = parse_catalog(slow_catalog(targets, services=2, concurrency=4, ms=10))
    run = await run_and_record(store, catalog, ("s1",), CheckDeps(http=http), SystemClock(), requested_by="U1", channel_id="C1")
    stored = await store.get_health_run(run.id or 0)
    assert stored is not None
    assert stored.services == ("s1",) and [r.service for r in stored.results] == ["s1"]
    assert (stored.requested_by, stored.channel_id) == ("U1", "C1")
