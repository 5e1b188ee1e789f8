"""`/metrics`, `/livez` and `/readyz` of a running bot: the series a `/ops health` and an approval flow leave behind,
the bearer token, Socket Mode's connection gauge and reconnects, rate limits, leases lost."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from bot.clock import ManualClock
from bot.locks import CountedLocks, StoreLocks
from bot.metrics import Metrics, api_method, slack_kind
from bot.runs import requests
from bot.store import Store
from playground.slack_api import FakeSlack
from tests.conftest import RunningBot, make_settings, start_bot
from tests.targets import Targets
from tests.test_approvals import ALICE, BOB, catalog, click, ops, requested

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]
TOKEN = "metrics-token-0123456789"


def parse(exposition: str) -> Samples:
    return {(s.name, frozenset(s.labels.items())): s.value
            for family in text_string_to_metric_families(exposition) for s in family.samples}


def value(samples: Samples, name: str, **labels: str) -> float:
    key = (name, frozenset(labels.items()))
    assert key in samples, f"{name}{labels} is not exported; names: {sorted({n for n, _ in samples})}"
    return samples[key]


async def scrape(bot: RunningBot, token: str | None = None) -> Samples:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with bot.http.get(f"{bot.url}/metrics", headers=headers) as response:
        assert response.status == 200 and response.content_type == "text/plain"
        return parse(await response.text())


def with_web_check(tmp: Path, targets: Targets) -> str:
    return catalog(tmp) + f"""  web:
    environment: staging
    checks:
      - {{type: http, url: "{targets.url('/ok')}"}}
      - {{type: http, url: "{targets.url('/fail')}", name: broken}}
"""


@pytest.fixture
async def bot(slack: FakeSlack, targets: Targets, http: aiohttp.ClientSession, tmp_path: Path) -> AsyncIterator[RunningBot]:
    slack.groups = {"S0LEADS": [BOB], "S0OPS": [ALICE]}
    running, runner = await start_bot(make_settings(slack, f"sqlite:///{tmp_path / 'o.db'}"), with_web_check(tmp_path, targets),
                                      slack, http)
    yield running
    await runner.cleanup()


async def test_a_health_request_and_an_approved_backup_show_in_the_metrics(bot: RunningBot) -> None:
    before = await scrape(bot)
    assert not [key for key in before if key[0] == "opsbot_slack_requests_total"], "no request yet"
    assert value(before, "opsbot_approvals_total", outcome="approved") == 0
    assert value(before, "opsbot_alerts_received_total", source="alertmanager") == 0

    await ops(bot, "health web")
    run_id, _posted = await requested(bot, "backup files")  # a command, a click, the reason modal's submission
    assert "runs now" in await click(bot, "approval.approve", str(run_id), BOB)
    await bot.settle()

    after = await scrape(bot)
    assert value(after, "opsbot_slack_requests_total", kind="command", outcome="ok") == 2
    assert value(after, "opsbot_slack_requests_total", kind="action", outcome="ok") == 2
    assert value(after, "opsbot_slack_requests_total", kind="view", outcome="ok") == 1
    assert value(after, "opsbot_slack_ack_seconds_count", kind="command") == 2
    assert value(after, "opsbot_slack_ack_seconds_bucket", kind="command", le="3.0") == 2, "acked within Slack's 3 s"
    assert value(after, "opsbot_check_results_total", kind="http", status="ok") == 1
    assert value(after, "opsbot_check_results_total", kind="http", status="critical") == 1
    assert value(after, "opsbot_check_duration_seconds_count", kind="http") == 2
    assert value(after, "opsbot_runs_total", kind="backup", outcome="succeeded") == 1
    assert value(after, "opsbot_run_duration_seconds_count", kind="backup") == 1
    assert value(after, "opsbot_approvals_total", outcome="approved") == 1
    assert value(after, "opsbot_approval_wait_seconds_count", outcome="approved") == 1
    assert value(after, "opsbot_slack_api_calls_total", method="chat.postMessage", outcome="ok") >= 1
    assert value(after, "opsbot_slack_api_calls_total", method="response_url", outcome="ok") >= 3
    assert value(after, "opsbot_leases_held") == 0, "the backup's lease was released"
    assert value(after, "opsbot_leases_lost_total") == 0
    assert value(after, "opsbot_runs_running") == 0 and value(after, "opsbot_store_up") == 1
    assert value(after, "opsbot_approvals_pending") == 0
    assert value(after, "opsbot_socket_mode_connected") == 0 and value(after, "opsbot_socket_mode_enabled") == 0
    for severity in bot.ctx.catalog.incidents.severities:
        assert value(after, "opsbot_incidents_open", severity=severity.name) == 0, "every severity reads 0, not absent"
    assert value(after, "opsbot_alerts_deduplicated_total", source="grafana") == 0
    [(_, labels)] = [key for key in after if key[0] == "opsbot_build_info"]
    assert dict(labels)["version"]
    # Labels are bounded: no user, channel or run id appears in any label value.
    for _name, labels in after:
        assert not {v for _, v in labels} & {ALICE, BOB, "C0OPS", str(run_id)}


async def test_an_expired_request_is_counted_with_its_wait(slack: FakeSlack, http: aiohttp.ClientSession,
                                                          tmp_path: Path) -> None:
    slack.groups = {"S0LEADS": [BOB], "S0OPS": [ALICE]}
    clock = ManualClock(datetime(2026, 11, 23, 3, 0, tzinfo=UTC))
    bot, runner = await start_bot(make_settings(slack, f"sqlite:///{tmp_path / 'o.db'}"), catalog(tmp_path), slack, http,
                                  clock=clock)
    try:
        await requested(bot, "backup files")
        clock.advance(31 * 60)
        assert await requests.expire_due(bot.ctx) == 1
        samples = await scrape(bot)
        assert value(samples, "opsbot_approvals_total", outcome="expired") == 1
        assert value(samples, "opsbot_approval_wait_seconds_count", outcome="expired") == 1
        assert value(samples, "opsbot_approval_wait_seconds_sum", outcome="expired") == 31 * 60
        assert value(samples, "opsbot_approval_wait_seconds_bucket", outcome="expired", le="1800.0") == 0
        assert value(samples, "opsbot_approvals_total", outcome="approved") == 0
    finally:
        await runner.cleanup()


async def test_requests_not_signed_by_slack_are_counted_as_refused(bot: RunningBot) -> None:
    assert (await bot.post("command=%2Fops&text=health", "application/x-www-form-urlencoded", signed=False)).status == 401
    samples = await scrape(bot)
    assert value(samples, "opsbot_slack_requests_total", kind="other", outcome="refused") == 1
    assert not [key for key in samples if key[0] == "opsbot_slack_ack_seconds_count"], "a refusal is not an ack"


async def test_open_incidents_are_counted_by_severity_at_scrape_time(bot: RunningBot) -> None:
    from bot.incidents.models import Incident

    severity = bot.ctx.catalog.incidents.severities[0].name
    now = bot.ctx.clock.now()
    await bot.ctx.store.create_incident(Incident(title="api down", severity=severity, declared_by=ALICE, declared_at=now,
                                                 channel_id="C0INC"))
    assert value(await scrape(bot), "opsbot_incidents_open", severity=severity) == 1


async def test_rate_limited_web_api_calls_are_counted_by_method(bot: RunningBot) -> None:
    bot.slack.fail_next("chat.postMessage", status=429, retry_after=0)
    await requested(bot, "backup files")
    samples = await scrape(bot)
    assert value(samples, "opsbot_slack_api_rate_limited_total", method="chat.postMessage") == 1
    assert value(samples, "opsbot_slack_api_calls_total", method="chat.postMessage", outcome="ok") == 1, "retried once"


async def test_livez_and_readyz_answer_and_readyz_fails_without_the_store(bot: RunningBot) -> None:
    async with bot.http.get(f"{bot.url}/livez") as response:
        assert response.status == 200
    async with bot.http.get(f"{bot.url}/readyz") as response:
        assert response.status == 200 and (await response.json())["store"] == "ok"
    await bot.ctx.store.close()
    try:
        async with bot.http.get(f"{bot.url}/readyz") as response:
            assert response.status == 503 and (await response.json())["status"] == "unavailable"
        samples = await scrape(bot)  # the scrape itself never fails on a store outage
        assert value(samples, "opsbot_store_up") == 0
    finally:
        await bot.ctx.store.open()


async def test_metrics_behind_a_bearer_token(slack: FakeSlack, http: aiohttp.ClientSession, tmp_path: Path) -> None:
    settings = make_settings(slack, f"sqlite:///{tmp_path / 'o.db'}", opsbot_metrics_token=TOKEN)
    bot, runner = await start_bot(settings, "services: {}\n", slack, http)
    try:
        for headers in ({}, {"Authorization": "Bearer wrong-token-0123456789"}, {"Authorization": TOKEN}):
            async with http.get(f"{bot.url}/metrics", headers=headers) as response:
                assert response.status == 401
                assert "Bearer" in response.headers["WWW-Authenticate"]
                assert TOKEN not in await response.text()
        assert value(await scrape(bot, TOKEN), "opsbot_store_up") == 1
        async with http.get(f"{bot.url}/livez") as response:
            assert response.status == 200, "the probes need no token"
    finally:
        await runner.cleanup()


async def test_socket_mode_connection_and_reconnects(slack: FakeSlack, http: aiohttp.ClientSession, tmp_path: Path) -> None:
    settings = make_settings(slack, f"sqlite:///{tmp_path / 'o.db'}", slack_app_token="xapp-1-A0001-test")
    bot, runner = await start_bot(settings, "services: {}\n", slack, http)
    try:
        await slack.wait_for_socket()
        samples = await scrape(bot)
        assert value(samples, "opsbot_socket_mode_connected") == 1 and value(samples, "opsbot_socket_mode_enabled") == 1
        assert value(samples, "opsbot_socket_mode_reconnects_total") == 0
        await slack.sockets[-1].close()  # Slack drops the connection; slack_sdk reconnects
        for _ in range(200):
            if len(slack.sockets) >= 2 and value(await scrape(bot), "opsbot_socket_mode_connected") == 1:
                break
            await asyncio.sleep(0.05)
        samples = await scrape(bot)
        assert value(samples, "opsbot_socket_mode_reconnects_total") == 1
        assert value(samples, "opsbot_socket_mode_connected") == 1
    finally:
        await runner.cleanup()


async def test_a_lease_taken_over_after_it_lapsed_counts_as_lost(store: Store) -> None:
    metrics, clock = Metrics(build="test"), ManualClock(datetime(2026, 12, 1, tzinfo=UTC))
    mine = CountedLocks(StoreLocks(store, clock, "me"), metrics)
    lease = await mine.acquire("service:api", 10)
    assert lease is not None and value(parse(metrics.exposition().decode()), "opsbot_leases_held") == 1
    clock.advance(11)
    assert await StoreLocks(store, clock, "other").acquire("service:api", 10) is not None
    assert not await lease.renew(10)
    await lease.release()
    samples = parse(metrics.exposition().decode())
    assert value(samples, "opsbot_leases_lost_total") == 1 and value(samples, "opsbot_leases_held") == 0


def test_label_values_are_bounded() -> None:
    assert api_method("http://127.0.0.1:1/api/chat.postMessage") == "chat.postMessage"
    assert api_method("https://hooks.slack.com/commands/T1/123/abcDEF") == "response_url"
    assert [slack_kind(b) for b in ({"command": "/ops"}, {"type": "block_actions"}, {"type": "view_submission"},
                                    {"type": "event_callback"}, {"type": "block_suggestion"}, {"type": "x"}, [])] == [
        "command", "action", "view", "event", "options", "other", "other"]


def test_two_contexts_have_separate_registries() -> None:
    first, second = Metrics(build="a"), Metrics(build="b")
    first.runs.labels("restart", "succeeded").inc()
    assert value(parse(first.exposition().decode()), "opsbot_runs_total", kind="restart", outcome="succeeded") == 1
    assert not [key for key in parse(second.exposition().decode()) if key[0] == "opsbot_runs_total"]
