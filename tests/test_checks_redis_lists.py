"""The `redis` check's `lists:` against the real Redis: queue lengths graded, wrong types, worst outcome, failures."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest
import redis.asyncio as aioredis

from bot.catalog_loading import CatalogInvalid, parse_catalog
from bot.checks import CheckDeps, Status
from bot.checks.base import Thresholds
from bot.checks.redis import RedisCheck
from tests.checks import run
from tests.conftest import REDIS_URL, free_port

LIMITS = {"warning": 5, "critical": 20}


class Keys:
    """Keys under one prefix unique to the test on a Redis server, deleted afterwards."""

    def __init__(self, client: aioredis.Redis) -> None:
        self.client = client
        self.prefix = f"opsbot-test:{uuid.uuid4().hex[:10]}:"

    async def fill(self, name: str, items: int) -> str:
        key = self.prefix + name
        if items:
            await self.client.rpush(key, *[f"job-{index}" for index in range(items)])
        return key

    async def clean(self) -> None:
        async for key in self.client.scan_iter(match=self.prefix + "*"):
            await self.client.delete(key)


async def keys_on(url: str) -> AsyncIterator[Keys]:
    client = aioredis.from_url(url)
    keys = Keys(client)
    try:
        yield keys
    finally:
        await keys.clean()
        await client.aclose()


@pytest.fixture
async def keys() -> AsyncIterator[Keys]:
    async for made in keys_on(REDIS_URL):
        yield made


def redis_check(lists: dict, url: str = REDIS_URL, **extra: object) -> dict:
    return {"type": "redis", "url": url, "lists": lists, **extra}


async def test_short_lists_are_ok(keys: Keys, deps: CheckDeps) -> None:
    queue, dead = await keys.fill("queue:default", 3), await keys.fill("dead_letters", 0)
    status, reason = await run(redis_check({queue: LIMITS, dead: {"warning": 1, "critical": 10}}), deps)
    assert status is Status.OK and reason.startswith("PONG, ")
    assert reason.endswith(f"; {queue}: 3 items; {dead}: 0 items"), reason


async def test_list_at_warning_names_the_limit(keys: Keys, deps: CheckDeps) -> None:
    queue = await keys.fill("queue:default", 7)
    status, reason = await run(redis_check({queue: LIMITS}), deps)
    assert status is Status.WARNING and reason.endswith(f"; {queue}: 7 items (limit 5)"), reason


async def test_worst_list_wins(keys: Keys, deps: CheckDeps) -> None:
    queue, dead = await keys.fill("queue:default", 7), await keys.fill("dead_letters", 12)
    status, reason = await run(redis_check({queue: LIMITS, dead: {"warning": 1, "critical": 10}}), deps)
    assert status is Status.CRITICAL
    assert reason.endswith(f"; {queue}: 7 items (limit 5); {dead}: 12 items (limit 10)"), reason


async def test_missing_key_is_an_empty_list(keys: Keys, deps: CheckDeps) -> None:
    status, reason = await run(redis_check({keys.prefix + "never-used": {"warning": 1, "critical": 2}}), deps)
    assert status is Status.OK and reason.endswith(f"{keys.prefix}never-used: 0 items")


async def test_a_list_without_limits_has_its_length_shown_and_is_never_graded(keys: Keys, deps: CheckDeps) -> None:
    backlog, queue = await keys.fill("backlog", 100_000), await keys.fill("queue", 1)
    lists = {backlog: None, queue: {"warning": 5}}  # the judged one beside it, to show the other is not
    status, reason = await run(redis_check(lists), deps)
    assert status is Status.OK and reason.endswith(f"; {backlog}: 100000 items; {queue}: 1 item"), reason
    await keys.fill("queue", 4)
    status, reason = await run(redis_check(lists), deps)
    assert status is Status.WARNING and reason.endswith(f"; {backlog}: 100000 items; {queue}: 5 items (limit 5)"), reason


def test_a_list_without_limits_is_written_as_a_key_with_nothing_after_it() -> None:
    catalog = parse_catalog("services:\n  cache:\n    environment: prod\n    checks:\n      - type: redis\n"
                            "        url_env: REDIS_URL\n        lists:\n          jobs:backlog:\n"
                            "          jobs:dead: {critical: 1}\n", "opsbot.yml")
    [check] = catalog.services["cache"].checks
    assert isinstance(check, RedisCheck) and check.lists == {"jobs:backlog": None, "jobs:dead": Thresholds(critical=1)}


async def test_a_list_may_have_a_single_or_strict_level(keys: Keys, deps: CheckDeps) -> None:
    dead = await keys.fill("dead", 0)
    more_than_none = {dead: {"critical": 0, "strict": True}}
    status, reason = await run(redis_check(more_than_none), deps)
    assert status is Status.OK and reason.endswith(f"; {dead}: 0 items"), reason
    await keys.fill("dead", 1)
    status, reason = await run(redis_check(more_than_none), deps)
    assert status is Status.CRITICAL and reason.endswith(f"; {dead}: 1 item (limit: more than 0)"), reason


async def test_key_of_another_type_is_an_error_naming_it(keys: Keys, deps: CheckDeps) -> None:
    settings, queue = keys.prefix + "settings", await keys.fill("queue", 1)
    await keys.client.hset(settings, "a", "1")
    status, reason = await run(redis_check({settings: LIMITS, queue: LIMITS}), deps)
    assert status is Status.ERROR and reason.endswith(f"; {settings} is a hash, not a list; {queue}: 1 item"), reason


async def test_memory_and_lists_together_worst_wins(redis_with_maxmemory: str, deps: CheckDeps) -> None:
    async for keys in keys_on(redis_with_maxmemory):
        queue = await keys.fill("queue", 2)
        memory = {"warning": 0.01, "critical": 50}
        status, reason = await run(redis_check({queue: LIMITS}, redis_with_maxmemory, memory_percent=memory), deps)
        assert status is Status.WARNING and "maxmemory" in reason and "(limit 0.01 %)" in reason
        assert reason.endswith(f"; {queue}: 2 items"), reason
        await keys.fill("queue", 30)
        status, reason = await run(redis_check({queue: LIMITS}, redis_with_maxmemory, memory_percent=memory), deps)
        assert status is Status.CRITICAL and reason.endswith(f"; {queue}: 32 items (limit 20)"), reason


async def test_unreachable_is_critical(deps: CheckDeps) -> None:
    port = free_port()
    status, reason = await run(redis_check({"queue": LIMITS}, f"redis://127.0.0.1:{port}/0", timeout=2), deps)
    assert status is Status.CRITICAL and reason.startswith(f"cannot reach 127.0.0.1:{port}: "), reason


async def test_server_that_never_answers_times_out(silent_port: int, deps: CheckDeps) -> None:
    spec = redis_check({"queue": LIMITS}, f"redis://127.0.0.1:{silent_port}/0", timeout=0.5)
    assert await run(spec, deps) == (Status.ERROR, "timed out after 0.5 s")


@pytest.mark.parametrize(("lists", "message"), [
    ("{'': {warning: 1, critical: 2}}", "must not be empty"),
    ("{queue: {warning: 10, critical: 1}}", "must not be above critical"),
    ("[queue]", "lists"),
    ("{queue: 100}", "lists.queue"),
])
def test_bad_lists_are_refused(lists: str, message: str) -> None:
    with pytest.raises(CatalogInvalid) as caught:
        parse_catalog(f"services:\n  cache:\n    environment: prod\n    checks:\n      - {{type: redis, url_env: REDIS_URL, "
                      f"lists: {lists}}}\n", "opsbot.yml")
    [problem] = str(caught.value).splitlines()
    assert message in problem, problem
