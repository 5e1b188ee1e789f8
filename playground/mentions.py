"""What Slack does to an `@name` a person types: a message carries `<@U…>`, and a slash command whose manifest entry
says `should_escape: true` carries `<@U…|name>`. Not the rendering of mentions (the page's mrkdwn.js does that)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path

import yaml

from playground.workspace import BOT_USER

MANIFEST = Path(__file__).resolve().parent.parent / "manifest.yml"
# `@name` not inside a word, an e-mail address or an existing <…> token; names as Slack allows them.
_TYPED = re.compile(r"(?<![\w<@|.])@([A-Za-z0-9][A-Za-z0-9._-]*)")


def escaped_commands(manifest: Path = MANIFEST) -> frozenset[str]:
    """The slash commands whose text Slack escapes, as the app's manifest declares them."""
    if not manifest.is_file():
        return frozenset()
    loaded = yaml.safe_load(manifest.read_text(encoding="utf-8")) or {}
    commands = (loaded.get("features") or {}).get("slash_commands") or []
    return frozenset(str(c["command"]) for c in commands if isinstance(c, dict) and c.get("should_escape"))


def handles(users: Mapping[str, Mapping[str, str]]) -> dict[str, tuple[str, str]]:
    """Lower-cased name a person may type -> (user id, username): the username and the first name both work."""
    found: dict[str, tuple[str, str]] = {"opsbot": (BOT_USER, "opsbot")}
    for user_id, user in users.items():
        name = user["name"]
        for handle in (name, (user.get("real_name") or "").split(" ")[0]):
            if handle:
                found.setdefault(handle.lower(), (user_id, name))
    return found


def escape_mentions(text: str, users: Mapping[str, Mapping[str, str]], *, with_name: bool) -> str:
    """`@Bob` -> `<@U0BOB>` (a message) or `<@U0BOB|bob>` (escaped command text); unknown names stay as typed."""
    known = handles(users)

    def replace(match: re.Match[str]) -> str:
        typed = match.group(1)
        # "@bob." at the end of a sentence: the dot is not part of the name.
        name, trail = typed.rstrip("._-"), typed[len(typed.rstrip("._-")):]
        found = known.get(name.lower())
        if found is None:
            return match.group(0)
        user_id, username = found
        return (f"<@{user_id}|{username}>" if with_name else f"<@{user_id}>") + trail

    return _TYPED.sub(replace, text)
