"""The `rabbitmq` check against the real RabbitMQ on 127.0.0.1:5672: depth, consumers, missing queues, failures."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import aio_pika
import aiohttp
import pytest

from bot.catalog_loading import CatalogInvalid, parse_catalog
from bot.checks import CheckDeps, Status
from tests.checks import run
from tests.conftest import free_port

BROKER = "amqp://guest:guest@127.0.0.1:5672/"


@pytest.fixture
async def deps(http: aiohttp.ClientSession) -> CheckDeps:
    return CheckDeps(http=http, environ={"RABBITMQ_URL": BROKER})


class Broker:
    """Queues made for one test (unique names) on the real broker, deleted afterwards."""

    def __init__(self, connection: aio_pika.abc.AbstractConnection, channel: aio_pika.abc.AbstractChannel) -> None:
        self.connection = connection
        self.channel = channel
        self.queues: dict[str, aio_pika.abc.AbstractQueue] = {}

    async def queue(self, label: str, messages: int = 0) -> str:
        name = f"opsbot-test-{label}-{uuid.uuid4().hex[:8]}"
        self.queues[name] = await self.channel.declare_queue(name, auto_delete=False)
        for index in range(messages):
            await self.channel.default_exchange.publish(aio_pika.Message(body=str(index).encode()), routing_key=name)
        # Publishing is asynchronous on the broker's side; wait until it counts them all.
        for _ in range(100):
            declared = await self.channel.declare_queue(name, passive=True)
            if declared.declaration_result.message_count == messages:
                break
            await asyncio.sleep(0.02)
        return name

    async def consume(self, name: str) -> None:
        async def ignore(message: aio_pika.abc.AbstractIncomingMessage) -> None:
            pass  # never acked: with prefetch 1 the rest stay ready

        await self.channel.set_qos(prefetch_count=1)
        await self.queues[name].consume(ignore)


@pytest.fixture
async def broker() -> AsyncIterator[Broker]:
    connection = await aio_pika.connect(BROKER, timeout=10)
    channel = await connection.channel()
    made = Broker(connection, channel)
    yield made
    for queue in made.queues.values():
        await queue.delete(if_unused=False, if_empty=False)
    await connection.close()


def check(*queues: dict) -> dict:
    return {"type": "rabbitmq", "url_env": "RABBITMQ_URL", "queues": list(queues)}


DEPTH = {"warning": 5, "critical": 20}


async def test_queue_with_room_and_a_consumer_is_ok(broker: Broker, deps: CheckDeps) -> None:
    name = await broker.queue("ok", messages=3)
    await broker.consume(name)
    status, reason = await run(check({"name": name, "depth": DEPTH}), deps)
    # One message is out with the consumer (unacked), the rest are ready.
    assert (status, reason) == (Status.OK, f"queue {name}: 2 ready, 1 consumer")


async def test_depth_at_warning(broker: Broker, deps: CheckDeps) -> None:
    name = await broker.queue("warn", messages=7)
    status, reason = await run(check({"name": name, "depth": DEPTH, "consumers": 0}), deps)
    assert (status, reason) == (Status.WARNING, f"queue {name}: 7 ready (limit 5), 0 consumers")


async def test_depth_past_critical_with_several_queues(broker: Broker, deps: CheckDeps) -> None:
    deep = await broker.queue("deep", messages=25)
    calm = await broker.queue("calm")
    spec = check({"name": deep, "depth": DEPTH, "consumers": 0}, {"name": calm, "consumers": 0})
    status, reason = await run(spec, deps)
    assert (status, reason) == (Status.CRITICAL,
                                f"queue {deep}: 25 ready (limit 20), 0 consumers; queue {calm}: 0 ready, 0 consumers")


async def test_no_consumers_is_critical(broker: Broker, deps: CheckDeps) -> None:
    name = await broker.queue("idle")
    assert await run(check({"name": name}), deps) == (Status.CRITICAL, f"queue {name}: 0 ready, no consumers")


async def test_too_few_consumers_is_critical(broker: Broker, deps: CheckDeps) -> None:
    name = await broker.queue("thin")
    await broker.consume(name)
    assert await run(check({"name": name, "consumers": 2}), deps) == (Status.CRITICAL,
                                                                      f"queue {name}: 0 ready, 1 consumer (need 2)")


async def test_missing_queue_is_critical_and_the_next_queue_is_still_read(broker: Broker, deps: CheckDeps) -> None:
    missing = f"opsbot-test-missing-{uuid.uuid4().hex[:8]}"
    present = await broker.queue("present", messages=1)
    status, reason = await run(check({"name": missing}, {"name": present, "consumers": 0}), deps)
    assert (status, reason) == (Status.CRITICAL,
                                f"queue {missing} does not exist on vhost /; queue {present}: 1 ready, 0 consumers")
    # A passive declare never creates the queue it asks about.
    with pytest.raises(aio_pika.exceptions.ChannelNotFoundEntity):
        await (await broker.connection.channel()).declare_queue(missing, passive=True)


async def test_wrong_password_is_critical_without_the_password(deps: CheckDeps) -> None:
    env = CheckDeps(http=deps.http, environ={"RABBITMQ_URL": "amqp://guest:hunter2@127.0.0.1:5672/"})
    status, reason = await run(check({"name": "anything"}), env)
    assert status is Status.CRITICAL and reason.startswith("cannot connect to $RABBITMQ_URL: ") and "hunter2" not in reason


async def test_unreachable_is_critical(deps: CheckDeps) -> None:
    port = free_port()
    spec = {"type": "rabbitmq", "url": f"amqp://guest@127.0.0.1:{port}/", "queues": [{"name": "celery"}], "timeout": 3}
    status, reason = await run(spec, deps)
    assert status is Status.CRITICAL and reason.startswith(f"cannot connect to 127.0.0.1:{port}: "), reason


async def test_server_that_never_answers_times_out(silent_port: int, deps: CheckDeps) -> None:
    spec = {"type": "rabbitmq", "url": f"amqp://guest@127.0.0.1:{silent_port}/", "queues": [{"name": "celery"}], "timeout": 0.5}
    assert await run(spec, deps) == (Status.ERROR, "timed out after 0.5 s")


@pytest.mark.parametrize(("body", "message"), [
    ("url: 'amqp://guest:hunter2@mq/', queues: [{name: celery}]", "`url` must not contain a password"),
    ("url: 'http://mq/', queues: [{name: celery}]", "must be an amqp:// or amqps:// URL"),
    ("url_env: RABBITMQ_URL, queues: []", "at least 1 item"),
    ("url_env: RABBITMQ_URL, queues: [{name: celery}, {name: celery}]", "queue 'celery' is listed twice"),
    ("url_env: RABBITMQ_URL, queues: [{name: celery, consumers: -1}]", "must be >= 0"),
    ("url_env: RABBITMQ_URL, queues: [{name: celery, depth: {warning: 10, critical: 1}}]", "must not be above critical"),
    ("url_env: RABBITMQ_URL, queues: [{name: celery, dept: {warning: 1, critical: 10}}]", "unknown key"),
])
def test_bad_rabbitmq_checks_are_refused(body: str, message: str) -> None:
    with pytest.raises(CatalogInvalid) as caught:
        parse_catalog(f"services:\n  mq:\n    environment: prod\n    checks:\n      - {{type: rabbitmq, {body}}}\n", "opsbot.yml")
    [problem] = str(caught.value).splitlines()
    assert message in problem and "hunter2" not in problem, problem
