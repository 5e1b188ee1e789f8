"""Mapping between domain records and table rows, shared by both backends.

Backends differ only in how a timestamp travels (ISO text in SQLite, timestamptz in PostgreSQL),
so each passes its own `encode`/`decode` for times.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any, Protocol

from bot.audit import AuditEntry, Outcome
from bot.checks import Status
from bot.health import CheckResult, HealthRun

Encode = Callable[[datetime], Any]
Decode = Callable[[Any], datetime]


def utc(value: datetime) -> datetime:
    if value.tzinfo is None:
        raise ValueError("naive datetime: the store keeps UTC timestamps only")
    return value.astimezone(UTC)


def run_row(run: HealthRun, encode: Encode) -> dict[str, Any]:
    return {
        "scope": json.dumps(list(run.scope)),
        "services": json.dumps(list(run.services)),
        "status": run.status.value,
        "requested_by": run.requested_by,
        "channel_id": run.channel_id,
        "started_at": encode(utc(run.started_at)),
        "finished_at": encode(utc(run.finished_at)),
    }


def result_rows(run_id: int, run: HealthRun, encode: Encode) -> list[dict[str, Any]]:
    return [
        {
            "run_id": run_id,
            "position": position,
            "service": result.service,
            "environment": result.environment,
            "check_name": result.check,
            "check_type": result.kind,
            "status": result.status.value,
            "reason": result.reason,
            "latency_ms": result.latency_ms,
            "checked_at": encode(utc(result.checked_at)),
        }
        for position, result in enumerate(run.results)
    ]


class Row(Protocol):
    """A row as either backend returns it: a dict (SQLite) or an asyncpg Record, which is not a Mapping."""

    def __getitem__(self, key: str, /) -> Any: ...


def run_from_rows(row: Row, results: Iterable[Row], decode: Decode) -> HealthRun:
    return HealthRun(
        id=int(row["id"]),
        scope=tuple(json.loads(row["scope"])),
        services=tuple(json.loads(row["services"])),
        started_at=decode(row["started_at"]),
        finished_at=decode(row["finished_at"]),
        requested_by=row["requested_by"],
        channel_id=row["channel_id"],
        results=tuple(
            CheckResult(
                service=r["service"],
                environment=r["environment"],
                check=r["check_name"],
                kind=r["check_type"],
                status=Status(r["status"]),
                reason=r["reason"],
                latency_ms=float(r["latency_ms"]),
                checked_at=decode(r["checked_at"]),
            )
            for r in sorted(results, key=lambda r: r["position"])
        ),
    )


def audit_row(entry: AuditEntry, encode: Encode) -> dict[str, Any]:
    return {
        "at": encode(utc(entry.at)),
        "kind": entry.kind,
        "name": entry.name,
        "outcome": entry.outcome.value,
        "actor_id": entry.actor_id,
        "channel_id": entry.channel_id,
        "args": entry.args,
        "detail": entry.detail,
        "duration_ms": entry.duration_ms,
    }


def audit_from_row(row: Row, decode: Decode) -> AuditEntry:
    return AuditEntry(
        id=int(row["id"]),
        at=decode(row["at"]),
        kind=row["kind"],
        name=row["name"],
        outcome=Outcome(row["outcome"]),
        actor_id=row["actor_id"],
        channel_id=row["channel_id"],
        args=row["args"],
        detail=row["detail"],
        duration_ms=row["duration_ms"],
        inferred=bool(row["inferred"]),
    )
