"""The RabbitMQ check's AMQP side (aio_pika): connect, passively declare each queue, judge it. Imported only when a
catalog has a rabbitmq check (`bot.adapters`); the check's settings are `bot.checks.rabbitmq`.
"""

from __future__ import annotations

from urllib.parse import unquote, urlsplit

import aio_pika
from aiormq.exceptions import AMQPChannelError, AMQPError, ChannelNotFoundEntity

from bot.checks._net import socket_error
from bot.checks.base import CheckDeps, Probe, Status, limit_note
from bot.checks.rabbitmq import QueueLimits, RabbitmqCheck


async def probe(self: RabbitmqCheck, deps: CheckDeps) -> Probe:
    url = self.connection_url(deps)
    vhost = _vhost(url)
    try:
        connection = await aio_pika.connect(url, timeout=self.timeout)
    except (OSError, AMQPError) as exc:
        return Probe(Status.CRITICAL, f"cannot connect to {self.where()}: {_describe(exc)}")
    try:
        judged = [await _queue(connection, queue, vhost) for queue in self.queues]
    finally:
        await connection.close()
    return Probe(Status.worst([status for status, _ in judged]), "; ".join(text for _, text in judged))


async def _queue(connection: aio_pika.abc.AbstractConnection, limits: QueueLimits, vhost: str) -> tuple[Status, str]:
    # A 404 from the broker closes the channel it came on, so each queue gets its own.
    channel = await connection.channel()
    try:
        queue = await channel.declare_queue(limits.name, passive=True)
    except ChannelNotFoundEntity:
        return Status.CRITICAL, f"queue {limits.name} does not exist on vhost {vhost}"
    except AMQPChannelError as exc:  # e.g. 403: the user may not read that queue
        return Status.CRITICAL, f"queue {limits.name}: {_describe(exc)}"
    finally:
        if not channel.is_closed:
            await channel.close()
    result = queue.declaration_result
    ready, consumers = result.message_count or 0, result.consumer_count or 0
    statuses, parts = [], []
    if limits.depth is not None:
        statuses.append(limits.depth.grade(ready))
        parts.append(f"{ready} ready{limit_note(statuses[-1], limits.depth)}")
    else:
        parts.append(f"{ready} ready")
    if consumers < limits.consumers:
        statuses.append(Status.CRITICAL)
        parts.append("no consumers" if consumers == 0 else f"{_consumers(consumers)} (need {limits.consumers})")
    else:
        parts.append(_consumers(consumers))
    return Status.worst(statuses), f"queue {limits.name}: {', '.join(parts)}"


def _consumers(count: int) -> str:
    return f"{count} consumer" if count == 1 else f"{count} consumers"


def _vhost(url: str) -> str:
    # amqp://host and amqp://host/ both mean the default vhost "/"; "%2F" spells it out.
    path = urlsplit(url).path
    return unquote(path[1:]) if len(path) > 1 else "/"


def _describe(exc: BaseException) -> str:
    # aiormq puts the socket error's errno and text in its args; the URL (and so a password) is not part of them.
    if isinstance(exc, OSError) and isinstance(exc.errno, int) and exc.errno > 0:
        return socket_error(exc)
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0][:200]
