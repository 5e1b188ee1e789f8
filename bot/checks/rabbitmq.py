"""RabbitMQ check: per queue, messages ready and consumers, read by a passive declare over AMQP.

A passive declare only asks; it never creates a queue. Managing queues (purge, move) is not this module's business.
"""

from __future__ import annotations

from typing import Literal
from urllib.parse import unquote, urlsplit

import aio_pika
from aiormq.exceptions import AMQPChannelError, AMQPError, ChannelNotFoundEntity
from pydantic import BaseModel, ConfigDict, Field, field_validator

from bot.checks._dsn import DsnSource, url_field
from bot.checks._net import socket_error
from bot.checks.base import CheckDeps, CheckSpec, Probe, Status, Thresholds, limit_note


class QueueLimits(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    name: str = Field(min_length=1, max_length=255)
    depth: Thresholds | None = Field(default=None, description="messages ready")
    consumers: int = Field(default=1, ge=0, description="fewer consumers is critical; 0 disables")


class RabbitmqCheck(DsnSource, CheckSpec):
    _url_field = "url"
    type: Literal["rabbitmq"]
    url: str | None = url_field("amqp://user@host:5672/vhost, without a password")
    url_env: str | None = url_field("environment variable holding the AMQP URL")
    queues: list[QueueLimits] = Field(min_length=1)

    @field_validator("url")
    @classmethod
    def _amqp_url(cls, url: str | None) -> str | None:
        if url is not None and urlsplit(url).scheme not in ("amqp", "amqps"):
            raise ValueError("`url` must be an amqp:// or amqps:// URL")
        return url

    @field_validator("queues")
    @classmethod
    def _distinct(cls, queues: list[QueueLimits]) -> list[QueueLimits]:
        names = [queue.name for queue in queues]
        repeated = sorted({name for name in names if names.count(name) > 1})
        if repeated:
            raise ValueError(f"queue {repeated[0]!r} is listed twice")
        return queues

    def default_label(self) -> str:
        return "rabbitmq"

    def secret_envs(self) -> list[str]:
        return self.url_envs()

    async def probe(self, deps: CheckDeps) -> Probe:
        url = self.connection_url(deps)
        vhost = _vhost(url)
        try:
            connection = await aio_pika.connect(url, timeout=self.timeout)
        except (OSError, AMQPError) as exc:
            return Probe(Status.CRITICAL, f"cannot connect to {self.where()}: {_describe(exc)}")
        try:
            judged = [await self._queue(connection, queue, vhost) for queue in self.queues]
        finally:
            await connection.close()
        return Probe(Status.worst([status for status, _ in judged]), "; ".join(text for _, text in judged))

    async def _queue(self, connection: aio_pika.abc.AbstractConnection, limits: QueueLimits, vhost: str) -> tuple[Status, str]:
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
