"""The playground's memory across its restarts: the stand-in's workspace (channels, messages, pins, files,
reactions, id counters) and the demo apps, in one JSON file beside the store, written atomically.

Not the store (SQLite, durable by itself) and not what Slack itself forgets (ephemeral messages, open modals).
"""

from __future__ import annotations

import base64
import enum
import json
import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from playground.demo_apps import DemoSwitches
from playground.workspace import Workspace

FILE = "workspace.json"
STORE = "dev.db"
VERSION = 1


class Start(enum.Enum):
    FRESH = "fresh"  # nothing there: both start empty
    KEPT = "kept"  # the workspace and the store from the last run go on
    RESET = "reset"  # a store with no (readable) workspace beside it was set aside: both start empty


@dataclass(frozen=True)
class Beginning:
    start: Start
    saved: dict[str, Any] | None = None
    set_aside: tuple[Path, ...] = ()


def begin(data_dir: Path, slack: Workspace, demo: DemoSwitches) -> Beginning:
    """Restore the last run's workspace and demo apps into `slack` and `demo`, or say why both start fresh.

    A store without its workspace would link incidents to channels that no longer exist (and collide with new
    channel ids), so such a store is set aside, never deleted, and both start fresh."""
    snapshot, store = data_dir / FILE, data_dir / STORE
    if snapshot.exists() and store.exists():
        try:
            saved = json.loads(snapshot.read_text(encoding="utf-8"))
            if isinstance(saved, dict) and saved.get("version") == VERSION:
                restore(Workspace(), demo.copy(), saved)  # a damaged file fails here, leaving `slack` untouched
                restore(slack, demo, saved)
                return Beginning(Start.KEPT, saved)
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            pass
    kept = [path for path in (snapshot, store, store.with_name(STORE + "-wal"), store.with_name(STORE + "-shm"))
            if path.exists()]
    if not kept:
        return Beginning(Start.FRESH)
    aside = []
    for path in kept:
        target = path.with_name(path.name + ".old")
        os.replace(path, target)
        aside.append(target)
    return Beginning(Start.RESET, set_aside=tuple(aside))


def dump(slack: Workspace, demo: DemoSwitches) -> dict[str, Any]:
    return {
        "version": VERSION,
        "next_id": slack.next_id,
        "last_ts": slack._ts,
        "channels": [{**channel, "members": sorted(channel["members"])} for channel in slack.channels.values()],
        "messages": [{"channel": channel, "ts": ts, "message": message} for (channel, ts), message in slack.messages.items()],
        "pins": slack.pins,
        "reactions": [{"channel": channel, "ts": ts, "reactions": {name: sorted(who) for name, who in found.items()}}
                      for (channel, ts), found in slack.reactions.items()],
        "files": [{**file, "content": base64.b64encode(file["content"]).decode() if file.get("content") is not None else None}
                  for file in slack.files.values()],
        "demo": demo.to_json(),
    }


def restore(slack: Workspace, demo: DemoSwitches, saved: dict[str, Any]) -> None:
    slack.next_id = int(saved["next_id"])
    slack._ts = float(saved["last_ts"])
    slack.channels = {c["id"]: {**c, "members": set(c["members"])} for c in saved["channels"]}
    slack.messages = {(m["channel"], m["ts"]): m["message"] for m in saved["messages"]}
    slack.pins = {channel: list(pinned) for channel, pinned in dict(saved["pins"]).items()}
    slack.reactions = {(r["channel"], r["ts"]): {name: set(who) for name, who in r["reactions"].items()}
                       for r in saved["reactions"]}
    slack.files = {f["id"]: {**f, "content": base64.b64decode(f["content"]) if f.get("content") is not None else None}
                   for f in saved["files"]}
    demo.restore(dict(saved.get("demo") or {}))


class Keeper:
    """Writes the file whole or not at all (a crash mid-write leaves the previous one), one write at a time: the
    last save at shutdown may overlap one still running in a thread."""

    def __init__(self, data_dir: Path) -> None:
        self.path, self._partial = data_dir / FILE, data_dir / (FILE + ".partial")
        self._lock = threading.Lock()

    def save(self, snapshot: dict[str, Any]) -> None:
        with self._lock, self._partial.open("w", encoding="utf-8") as out:
            json.dump(snapshot, out)
            out.flush()
            os.fsync(out.fileno())
            os.replace(self._partial, self.path)
