"""End to end: the real app on a port, driven by signed requests as Slack sends them, against the fake Slack.

Targets are real: local HTTP servers (healthy, 500, never answering), the PostgreSQL and Redis on this
machine, and a disk path. Runs once per store backend.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import aiohttp
import pytest

from bot.audit import Outcome
from playground.payloads import block_action, event_callback, slash_command
from playground.slack_api import Call, FakeSlack
from tests.conftest import PG_ADMIN_DSN, REDIS_URL, RunningBot, make_settings, start_bot
from tests.targets import Targets

USER, OTHER, CHANNEL = "U0ALICE", "U0BOB", "C0OPS"


def catalog_for(targets: Targets, tmp_disk: str) -> str:
    return f"""
services:
  web:
    environment: production
    checks:
      - type: http
        url: {targets.url("/ok")}
        body_contains: ok
  payments:
    environment: production
    checks:
      - type: http
        url: {targets.url("/fail")}
  search:
    environment: staging
    checks:
      - type: http
        url: {targets.url("/hang")}
        timeout: 2
  data:
    environment: production
    checks:
      - type: postgres
        dsn_env: TEST_PG_DSN
      - type: redis
        url: {REDIS_URL}
      - type: disk
        paths: ["{tmp_disk}"]
  flaky:
    environment: staging
    checks:
      - type: http
        url: {targets.url("/switch")}
"""


@pytest.fixture
async def bot(slack: FakeSlack, targets: Targets, database_url: str, http: aiohttp.ClientSession,
              tmp_path) -> AsyncIterator[RunningBot]:
    settings = make_settings(slack, database_url, redis_url=REDIS_URL)
    running, runner = await start_bot(
        settings, catalog_for(targets, str(tmp_path)), slack, http, environ={"TEST_PG_DSN": PG_ADMIN_DSN}
    )
    yield running
    await runner.cleanup()


async def ops(bot: RunningBot, text: str, *, user: str = USER, key: str | None = None) -> tuple[aiohttp.ClientResponse, str]:
    response_url = bot.slack.response_url(key)
    body, content_type = slash_command("/ops", text, user=user, channel=CHANNEL, response_url=response_url)
    response = await bot.post(body, content_type)
    return response, response_url


async def reported(slack: FakeSlack, timeout: float = 10.0) -> Call:
    """The report of `/ops health`: its "⏳ Running …" placeholder is deleted first, so it does not stay above it."""
    placeholder, report = await slack.wait_for("response_url", count=2, timeout=timeout)
    assert placeholder.path == report.path and placeholder.args == {"delete_original": True}
    return report


def lines_of(message: dict) -> str:
    """All the text a person would read in a message's blocks."""
    out = []
    for block in message.get("blocks", []):
        if "text" in block:
            out.append(block["text"]["text"])
        for element in block.get("elements", []):
            out.append(element.get("text", {}).get("text", "") if isinstance(element.get("text"), dict)
                       else element.get("text", ""))
    return "\n".join(out)


async def test_health_all_acks_at_once_and_answers_in_channel_in_about_the_slowest_timeout(bot: RunningBot) -> None:
    started = time.monotonic()
    response, response_url = await ops(bot, "health web payments search")
    acked = time.monotonic() - started
    assert response.status == 200
    assert acked < 1.0, f"ack took {acked:.2f} s"

    reply = await reported(bot.slack)
    answered = reply.at - started
    # Concurrent: about the 2 s timeout of the slowest check, not the 4+ s of running them one by one.
    assert 1.9 <= answered < 3.5, f"answered after {answered:.2f} s"
    assert reply.path == response_url.split(str(bot.slack.port))[1]
    assert reply.args["response_type"] == "in_channel"
    text = lines_of(reply.args)
    assert "❌ 2 of 3 services failing" in text
    assert "✅ *web*" in text
    assert "❌ *payments*" in text and "HTTP 500 (expected 200)" in text
    assert "❌ *search*" in text and "timed out after 2 s" in text
    assert reply.args["text"].startswith("Health: 2 of 3 services failing")


async def test_health_of_databases_redis_and_disk_is_green(bot: RunningBot) -> None:
    await ops(bot, "health data")
    reply = await reported(bot.slack)
    text = lines_of(reply.args)
    assert "✅ All 1 service healthy" in text
    assert "connections in use" in text and "PONG" in text and "% used" in text


async def test_health_ack_is_an_ephemeral_progress_note(bot: RunningBot) -> None:
    response, _ = await ops(bot, "health web")
    body = await response.json()
    assert body["response_type"] == "ephemeral"
    assert "Running 1 check on 1 service" in body["text"]


async def test_health_run_and_command_are_stored(bot: RunningBot) -> None:
    await ops(bot, "health payments")
    await reported(bot.slack)
    await bot.settle()

    [entry] = await bot.ctx.store.audit_entries()
    assert (entry.kind, entry.name, entry.args, entry.actor_id, entry.channel_id) == ("command", "/ops", "health payments", USER,
                                                                                      CHANNEL)
    assert entry.outcome is Outcome.OK and entry.duration_ms is not None
    [run] = await bot.ctx.store.health_runs_since(bot.ctx.clock.now().replace(year=2000))
    assert run.scope == ("payments",) and run.results[0].reason == "HTTP 500 (expected 200)"


async def test_rerun_button_updates_the_same_message_with_fresh_results(bot: RunningBot, targets: Targets) -> None:
    await ops(bot, "health flaky")
    first = await reported(bot.slack)
    assert "✅ All 1 service healthy" in lines_of(first.args)
    button = next(b for b in first.args["blocks"] if b["type"] == "actions")["elements"][0]
    assert button["action_id"] == "health.rerun"

    targets.switch_healthy = False
    message_url = bot.slack.response_url()
    body, content_type = block_action(button["action_id"], button["value"], user=OTHER, channel=CHANNEL, response_url=message_url)
    response = await bot.post(body, content_type)
    assert response.status == 200

    calls = await bot.slack.wait_for("response_url", count=4)
    progress, result = calls[2].args, calls[3].args
    assert progress["replace_original"] is True and f"Re-running for <@{OTHER}>" in lines_of(progress)
    assert result["replace_original"] is True
    assert "❌ 1 of 1 service failing" in lines_of(result) and "HTTP 503" in lines_of(result)
    assert f"by <@{OTHER}>" in lines_of(result)


async def test_unknown_subcommand_gets_a_did_you_mean_listing_what_is_valid(bot: RunningBot) -> None:
    response, _ = await ops(bot, "helth web")
    body = await response.json()
    assert body["response_type"] == "ephemeral"
    assert "Did you mean `health`?" in body["text"] and "`help`" in body["text"]
    await bot.settle()
    [entry] = await bot.ctx.store.audit_entries()
    assert entry.outcome is Outcome.REJECTED
    assert bot.slack.of("response_url") == []


async def test_unknown_service_is_refused_before_anything_runs(bot: RunningBot) -> None:
    response, _ = await ops(bot, "health web paymnts")
    body = await response.json()
    assert "No service named `paymnts`. Did you mean `payments`?" in body["text"]
    assert "`search`" in body["text"]
    await bot.settle()
    assert await bot.ctx.store.health_runs_since(bot.ctx.clock.now().replace(year=2000)) == []


async def test_help_lists_commands_and_services(bot: RunningBot) -> None:
    for text in ("help", ""):
        response, _ = await ops(bot, text)
        body = await response.json()
        assert body["response_type"] == "ephemeral"
        rendered = lines_of(body)
        assert "/ops health [service …|all]" in rendered and "`payments`" in rendered
        # Slack reads a bare <service> as a link or a control sequence and shows nothing: placeholders are escaped.
        assert "/ops restart &lt;service&gt; [reason]" in rendered and "<service>" not in rendered
        assert "`/incident declare P1 &lt;title&gt;`" in rendered and "`/incident help`" in rendered


@pytest.mark.parametrize(
    ("headers", "signed"),
    [
        ({}, False),  # no signature at all
        ({"X-Slack-Signature": "v0=" + "0" * 64}, True),  # wrong signature
        ({"X-Slack-Request-Timestamp": str(int(time.time()) - 301)}, True),  # stale: older than 5 minutes
    ],
    ids=["missing", "wrong", "stale"],
)
async def test_requests_not_signed_by_slack_are_rejected(bot: RunningBot, headers: dict, signed: bool) -> None:
    body, content_type = slash_command("/ops", "health", user=USER, channel=CHANNEL, response_url=bot.slack.response_url())
    response = await bot.post(body, content_type, headers=headers, signed=signed)
    assert response.status == 401
    await bot.settle()
    assert await bot.ctx.store.audit_entries() == []


async def test_stale_signature_is_checked_against_the_signed_timestamp(bot: RunningBot) -> None:
    from playground.payloads import sign

    body, content_type = slash_command("/ops", "help", user=USER, channel=CHANNEL, response_url=bot.slack.response_url())
    stale = sign(body, timestamp=int(time.time()) - 400)  # correctly signed, but replayed too late
    response = await bot.post(body, content_type, headers=stale, signed=False)
    assert response.status == 401


async def test_a_retried_event_delivery_is_processed_once(bot: RunningBot) -> None:
    event = {"type": "app_mention", "user": USER, "text": "<@UBOT0001> hi", "ts": "1700000001.000200", "channel": CHANNEL}
    body, content_type = event_callback(event, event_id="Ev0RETRY1")
    first = await bot.post(body, content_type)
    retry = await bot.post(body, content_type, headers={"X-Slack-Retry-Num": "1", "X-Slack-Retry-Reason": "http_timeout"})
    assert (first.status, retry.status) == (200, 200)

    [reply] = await bot.slack.wait_for("chat.postMessage")
    await bot.settle()
    assert len(bot.slack.of("chat.postMessage")) == 1
    assert reply.args["channel"] == CHANNEL and reply.args["thread_ts"] == "1700000001.000200"
    outcomes = sorted(e.outcome.value for e in await bot.ctx.store.audit_entries())
    assert outcomes == ["duplicate", "ok"]


async def test_reaction_events_are_acknowledged(bot: RunningBot) -> None:
    event = {"type": "reaction_added", "user": USER, "reaction": "pushpin",
             "item": {"type": "message", "channel": CHANNEL, "ts": "1.2"}, "event_ts": "1.3"}
    body, content_type = event_callback(event)
    assert (await bot.post(body, content_type)).status == 200


async def test_rate_limited_and_failing_slack_calls_are_retried(bot: RunningBot) -> None:
    bot.slack.fail_next("response_url", status=500)
    await ops(bot, "health web")
    reply = await reported(bot.slack, timeout=15)
    assert "✅" in lines_of(reply.args)
    assert len(bot.slack.of("response_url!failed")) == 1

    bot.slack.fail_next("chat.postMessage", status=429, retry_after=1)
    event = {"type": "app_mention", "user": USER, "text": "hi", "ts": "1.5", "channel": CHANNEL}
    body, content_type = event_callback(event)
    await bot.post(body, content_type)
    await bot.slack.wait_for("chat.postMessage", timeout=15)
    assert len(bot.slack.of("chat.postMessage!failed")) == 1


async def test_a_broken_reply_path_is_audited_as_an_error_not_lost(bot: RunningBot) -> None:
    bot.slack.fail_next("response_url", status=404, times=5)
    await ops(bot, "health web")
    await bot.settle()
    [entry] = await bot.ctx.store.audit_entries()
    assert entry.outcome is Outcome.ERROR and "reference" in (entry.detail or "")


async def test_healthz_reports_store_and_redis(bot: RunningBot) -> None:
    async with bot.http.get(f"{bot.url}/healthz") as response:
        assert response.status == 200
        assert await response.json() == {"status": "ok", "store": "ok", "redis": "ok"}
    await bot.ctx.store.close()
    async with bot.http.get(f"{bot.url}/healthz") as response:
        assert response.status == 503
        body = await response.json()
        assert body["status"] == "unavailable" and body["store"] != "ok"
    await bot.ctx.store.open()


async def test_a_catalog_too_large_for_one_message_is_summarised_and_slack_accepts_it(
    slack: FakeSlack, targets: Targets, http: aiohttp.ClientSession, tmp_path
) -> None:
    entries = "".join(
        f"  svc{i:02}:\n    environment: production\n    checks:\n      - {{type: http, url: "
        f"'{targets.url('/fail' if i % 5 == 0 else '/ok')}'}}\n"
        for i in range(60)
    )
    running, runner = await start_bot(make_settings(slack, f"sqlite:///{tmp_path / 'o.db'}"), f"services:\n{entries}", slack,
                                      http)
    try:
        await ops(running, "health")
        reply = await reported(slack)
        assert len(reply.args["blocks"]) <= 50
        text = lines_of(reply.args)
        assert "❌ 12 of 60 services failing" in text and "*60 services*: 48 ✅ healthy" in text
        assert all(f"❌ *svc{i:02}*" in text for i in range(0, 60, 5))
        assert slack.of("response_url!failed") == []
    finally:
        await runner.cleanup()


async def test_a_request_cut_short_by_shutdown_is_audited_and_the_user_told(bot: RunningBot, targets: Targets) -> None:
    await ops(bot, "health search")  # its check hangs for 2 s
    await bot.slack.wait_for("auth.test")
    await asyncio.sleep(0.3)
    await bot.ctx.tasks.drain(timeout=0.1)
    [told] = await bot.slack.wait_for("response_url")
    assert "restarted before this finished" in told.args["text"]
    [entry] = await bot.ctx.store.audit_entries()
    assert entry.outcome is Outcome.ERROR and "interrupted" in (entry.detail or "")


async def test_a_rerun_whose_result_cannot_be_delivered_puts_the_old_report_back(bot: RunningBot) -> None:
    await ops(bot, "health web")
    first = await reported(bot.slack)
    value = next(b for b in first.args["blocks"] if b["type"] == "actions")["elements"][0]["value"]
    # The "re-running" note goes through, then the new report is refused (404 is not retried).
    bot.slack.fail_next("response_url", status=404, after=1)
    body, content_type = block_action("health.rerun", value, user=OTHER, channel=CHANNEL, response_url=bot.slack.response_url())
    await bot.post(body, content_type)
    await bot.settle()
    calls = [c.args for c in bot.slack.of("response_url")]
    last = [args for args in calls if args.get("replace_original")][-1]
    assert "Re-running" not in lines_of(last) and any(b["type"] == "actions" for b in last["blocks"])
    assert "Reference" in calls[-1]["text"] and calls[-1]["response_type"] == "ephemeral"


async def test_a_rerun_of_a_run_no_longer_stored_says_so(bot: RunningBot) -> None:
    body, content_type = block_action("health.rerun", "987654", user=OTHER, channel=CHANNEL,
                                      response_url=bot.slack.response_url())
    await bot.post(body, content_type)
    [reply] = await bot.slack.wait_for("response_url")
    assert "no longer stored" in reply.args["text"] and reply.args["response_type"] == "ephemeral"
