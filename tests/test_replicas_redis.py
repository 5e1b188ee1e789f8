"""tests/test_replicas.py's three replicas through a kill and a restart, with Redis leases (its own file, so that
pytest-xdist runs it beside the database-lease one instead of after it)."""

from __future__ import annotations

from pathlib import Path

import aiohttp

from playground.slack_api import FakeSlack
from tests.targets import Targets
from tests.test_replicas import three_replicas


async def test_three_replicas_with_redis_leases_post_each_occurrence_once_through_a_kill_and_a_restart(
        slack: FakeSlack, targets: Targets, pg_database: str, http: aiohttp.ClientSession, tmp_path: Path) -> None:
    await three_replicas("redis", slack, targets, pg_database, http, tmp_path)
