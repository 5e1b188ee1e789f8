"""Incident channel names: the catalog's template, made to fit Slack's rules (lowercase a–z 0–9 - _,
at most 80 characters), with a numeric suffix when the name is taken."""

from __future__ import annotations

import re
import unicodedata
from datetime import datetime

from bot.incidents.templates import render

MAX_NAME = 80


def slug(text: str, limit: int = 40) -> str:
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    words = re.sub(r"[^a-z0-9]+", "-", ascii_text.lower()).strip("-")
    return words[:limit].rstrip("-") or "incident"


def channel_name(template: str, *, incident_id: int, severity: str, title: str, at: datetime) -> str:
    raw = render(template, {"id": incident_id, "key": f"inc-{incident_id}", "severity": severity.lower(),
                            "date": at.strftime("%Y%m%d"), "slug": slug(title), "title": title})
    name = re.sub(r"[^a-z0-9_-]+", "-", raw.strip().lower()).strip("-")
    name = re.sub(r"-{2,}", "-", name)
    return (name or f"inc-{incident_id}")[:MAX_NAME].rstrip("-")


def with_suffix(name: str, attempt: int) -> str:
    """`name`, then `name-2`, `name-3`…, still within 80 characters."""
    if attempt <= 1:
        return name
    suffix = f"-{attempt}"
    return name[: MAX_NAME - len(suffix)].rstrip("-") + suffix
