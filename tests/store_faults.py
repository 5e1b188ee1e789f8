"""A store outage at a chosen point: the real store (SQLite or PostgreSQL), whose Nth write starts an outage that lasts
until `recover()`. Every call meanwhile fails with `StoreUnavailable`, as the backends raise it for a lost connection.

Fault injection, not a fake: the store under it is the real one, and what is tested is the bot's answer to the fault.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from bot.errors import StoreUnavailable
from bot.store import Store

# The store's writes, in the words of its protocol (reads are not counted, but fail too once the store is down).
WRITES = frozenset({
    "record_audit", "finish_audit", "create_incident", "delete_incident", "update_incident", "add_entry",
    "begin_post", "set_posted", "acquire_lease", "renew_lease", "release_lease", "create_action", "transition_action",
    "save_step", "save_health_run", "add_decision", "set_action_message", "claim", "replace_roles",
})
_LIFECYCLE = frozenset({"open", "close", "migrate"})


class FaultyStore:
    def __init__(self, real: Store, *, down_at: int | None = None) -> None:
        self.real, self.down_at = real, down_at
        self.writes: list[str] = []  # every write asked for, in order, including the ones refused
        self.down = False

    def recover(self) -> None:
        self.down, self.down_at = False, None

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self.real, name)
        if name.startswith("_") or name in _LIFECYCLE or not callable(attr):
            return attr
        return self._guarded(name, attr)

    def _guarded(self, name: str, method: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
        async def call(*args: Any, **kwargs: Any) -> Any:
            if name in WRITES:
                self.writes.append(name)
                if self.down_at is not None and len(self.writes) >= self.down_at:
                    self.down = True
            if self.down:
                raise StoreUnavailable(f"the store is down (injected at write {self.down_at}: {name})")
            return await method(*args, **kwargs)

        return call
