"""RabbitMQ check: per queue, messages ready and consumers, read by a passive declare over AMQP.

A passive declare only asks; it never creates a queue. Managing queues (purge, move) is not this module's business.
"""

from __future__ import annotations

from typing import Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator

from bot import adapters
from bot.checks._dsn import DsnSource, url_field
from bot.checks.base import CheckDeps, CheckSpec, Probe, Thresholds


class QueueLimits(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    name: str = Field(min_length=1, max_length=255)
    depth: Thresholds | None = Field(default=None, description="messages ready")
    consumers: int = Field(default=1, ge=0, description="fewer consumers is critical; 0 disables")


class RabbitmqCheck(DsnSource, CheckSpec):
    """Per queue, a passive declare on its own channel (it never creates one): messages ready against `depth`,
    fewer consumers than asked is critical ("no consumers"), a missing queue is critical."""

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
        # aio_pika is imported only for a catalog with a rabbitmq check (`bot.adapters`).
        probe: Probe = await adapters.module("bot.checks.rabbitmq_probe").probe(self, deps)
        return probe
