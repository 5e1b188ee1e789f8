"""The `flush-cache` kind: empty a Redis database or a memcached server; no undo.

Not responsible for the cache clients (`bot.executors.caches`, imported only for a catalog that uses it).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, model_validator

from bot import adapters
from bot.env_names import ENV_NAME
from bot.executors.base import Effect
from bot.runs.models import ActionRun
from bot.runs.steps.base import (
    Note,
    PlannedStep,
    StepDeps,
    StepKind,
    Traits,
    UndoBook,
    _ServiceStep,
    refused,
    register,
)
from bot.views.words import plural


class FlushCacheStep(_ServiceStep):
    kind: Literal["flush-cache"]
    engine: Literal["redis", "memcached"]
    url_env: str | None = Field(default=None, pattern=ENV_NAME, description="redis: environment variable with the URL")
    db: int = Field(default=0, ge=0, le=15, description="redis: the database number to flush")
    address: str | None = Field(default=None, pattern=r"^[A-Za-z0-9.-]+:\d{1,5}$", description="memcached: host:port")

    @model_validator(mode="after")
    def _where(self) -> FlushCacheStep:
        if self.engine == "redis" and not self.url_env:
            raise ValueError("a redis flush needs `url_env` (the environment variable holding its URL)")
        if self.engine == "memcached" and not self.address:
            raise ValueError("a memcached flush needs `address` (host:port)")
        return self


async def _describe(deps: StepDeps, service: str | None, args: dict[str, Any]) -> tuple[str, str]:
    which = (f"Redis database {args['db']} ({args['url_env']})" if args["engine"] == "redis"
             else f"Memcached at {args['address']}")
    return f"Flush {which}", ""


async def _perform(deps: StepDeps, run: ActionRun, step: PlannedStep, book: UndoBook, note: Note) -> str:
    args = step.args
    # redis-py and pymemcache are imported only for a catalog with a flush-cache step (`bot.adapters`).
    caches = adapters.module("bot.executors.caches")
    if args["engine"] == "redis":
        url = deps.environ.get(str(args["url_env"]))
        if not url:
            raise refused(f"environment variable {args['url_env']} is not set")
        return f"{plural(await caches.flush_redis(url, int(args['db'])), 'key')} removed"
    host, _, port = str(args["address"]).rpartition(":")
    return f"{plural(await caches.flush_memcached(host, int(port)), 'item')} removed"


KIND = register(StepKind("flush-cache", FlushCacheStep, Traits(changes=True, undo=None, cut_short=Effect.UNKNOWN),
                         _describe, _perform))
