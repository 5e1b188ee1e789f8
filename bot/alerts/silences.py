"""Alertmanager's silences through its API v2: create one for a group's matchers, expire it. Not responsible for
which URL to use nor for recording the silence on the group (bot/alerts/service.py)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import aiohttp

from bot.errors import OpsbotError

_TIMEOUT = aiohttp.ClientTimeout(total=10)


class SilenceFailed(OpsbotError):
    """Alertmanager refused or could not be reached; nothing was silenced (or unsilenced)."""


def matchers(labels: dict[str, str]) -> list[dict[str, Any]]:
    """Equality matchers for these labels: the silence covers the group and nothing else."""
    return [{"name": name, "value": value, "isRegex": False, "isEqual": True} for name, value in sorted(labels.items())]


async def create(http: aiohttp.ClientSession, base_url: str, labels: dict[str, str], *, starts: datetime,
                 ends: datetime, created_by: str, comment: str) -> str:
    """POST /api/v2/silences; returns the silence's id."""
    if not labels:
        raise SilenceFailed("this alert group has no labels to silence it by; silence it in Alertmanager itself")
    body = {"matchers": matchers(labels), "startsAt": starts.isoformat(), "endsAt": ends.isoformat(),
            "createdBy": created_by, "comment": comment}
    try:
        async with http.post(f"{base_url}/api/v2/silences", json=body, timeout=_TIMEOUT) as response:
            answer = await response.text()
            if response.status != 200:
                raise SilenceFailed(f"Alertmanager at {base_url} refused the silence ({response.status}): "
                                    f"{answer.strip()[:300]}")
            found = await response.json(content_type=None)
    except (aiohttp.ClientError, TimeoutError) as exc:
        raise SilenceFailed(f"Alertmanager at {base_url} could not be reached ({type(exc).__name__}); "
                            "nothing was silenced") from None
    silence_id = found.get("silenceID") if isinstance(found, dict) else None
    if not isinstance(silence_id, str) or not silence_id:
        raise SilenceFailed(f"Alertmanager at {base_url} answered without a silence id")
    return silence_id


async def expire(http: aiohttp.ClientSession, base_url: str, silence_id: str) -> None:
    """DELETE /api/v2/silence/{id}. An already expired or unknown silence counts as done: some Alertmanager releases
    answer an unknown id with 500 rather than 404, so a refusal is checked by reading the silence back."""
    try:
        async with http.delete(f"{base_url}/api/v2/silence/{silence_id}", timeout=_TIMEOUT) as response:
            answer = await response.text()
            if response.status in (200, 404):
                return
        if await _gone(http, base_url, silence_id):
            return
    except (aiohttp.ClientError, TimeoutError) as exc:
        raise SilenceFailed(f"Alertmanager at {base_url} could not be reached ({type(exc).__name__}); "
                            "the silence is still on") from None
    raise SilenceFailed(f"Alertmanager at {base_url} did not expire silence {silence_id} "
                        f"({response.status}): {answer.strip()[:300]}")


async def _gone(http: aiohttp.ClientSession, base_url: str, silence_id: str) -> bool:
    """Whether Alertmanager no longer holds the silence, or holds it expired (GET /api/v2/silence/{id})."""
    async with http.get(f"{base_url}/api/v2/silence/{silence_id}", timeout=_TIMEOUT) as response:
        if response.status == 404:
            return True
        if response.status != 200:
            return False
        found = await response.json(content_type=None)
    state = found.get("status", {}).get("state") if isinstance(found, dict) else None
    return state == "expired"
