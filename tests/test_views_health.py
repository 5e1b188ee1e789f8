"""The health report's Block Kit: what a person reads, and Slack's limits on what can be sent."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from bot.checks import Status
from bot.health import CheckResult, HealthRun
from bot.views import Message
from bot.views.health import health_report
from playground.slack_api import _block_problem

NOW = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)


def run_of(statuses: dict[str, list[Status]], *, reason: str = "HTTP 200", run_id: int | None = 1) -> HealthRun:
    results = tuple(
        CheckResult(name, "production", f"check {i}", "http", status, reason, 12.0, NOW)
        for name, checks in statuses.items()
        for i, status in enumerate(checks)
    )
    return HealthRun(scope=(), services=tuple(statuses), started_at=NOW, finished_at=NOW + timedelta(seconds=2.04),
                     results=results, requested_by="U1", id=run_id)


def text_of(message: Message) -> str:
    return "\n".join(
        [b["text"]["text"] for b in message.blocks if "text" in b]
        + [e.get("text", "") for b in message.blocks if b["type"] == "context" for e in b["elements"]]
    )


def test_report_has_header_lines_time_and_a_rerun_button() -> None:
    message = health_report(run_of({"api": [Status.OK], "db": [Status.WARNING], "web": [Status.CRITICAL, Status.ERROR]}))
    types = [b["type"] for b in message.blocks]
    assert types == ["header", "section", "section", "section", "context", "actions"]
    assert message.blocks[0]["text"]["text"] == "❌ 1 of 3 services failing, 1 degraded"
    text = text_of(message)
    assert "✅ *api*  ·  _production_" in text and "⚠️ *db*" in text and "❌ *web*" in text
    assert "2026-11-23 09:00:02 UTC" in text and "(09:00:02 UTC)" in text and "in 2.0 s" in text and "by <@U1>" in text
    assert message.blocks[-1]["elements"][0] == {"type": "button", "action_id": "health.rerun", "value": "1",
                                                 "text": {"type": "plain_text", "text": "Re-run", "emoji": True}}
    assert message.text == "Health: 1 of 3 services failing, 1 degraded (db, web)"


def test_failing_services_come_first() -> None:
    message = health_report(run_of({"a": [Status.OK], "b": [Status.WARNING], "c": [Status.CRITICAL]}))
    firsts = [b["text"]["text"].split("*")[1] for b in message.blocks if b["type"] == "section"]
    assert firsts == ["c", "b", "a"]


@pytest.mark.parametrize(
    ("statuses", "headline"),
    [
        ({"a": [Status.OK], "b": [Status.OK]}, "✅ All 2 services healthy"),
        ({"a": [Status.WARNING], "b": [Status.OK]}, "⚠️ 1 of 2 services degraded"),
        ({}, "ℹ️ No services to check"),
    ],
)
def test_headline(statuses: dict, headline: str) -> None:
    assert health_report(run_of(statuses)).blocks[0]["text"]["text"] == headline


def test_mrkdwn_control_characters_in_reasons_are_escaped() -> None:
    text = text_of(health_report(run_of({"api": [Status.CRITICAL]}, reason="<!channel> & <b>")))
    assert "&lt;!channel&gt; &amp; &lt;b&gt;" in text and "<!channel>" not in text


def test_rerunning_replaces_the_button_with_who_asked() -> None:
    message = health_report(run_of({"api": [Status.OK]}), rerunning_by="U2")
    assert "actions" not in [b["type"] for b in message.blocks]
    assert "⏳ Re-running for <@U2>…" in text_of(message)


def test_a_large_catalog_collapses_to_a_summary_plus_what_needs_attention() -> None:
    statuses = {f"svc{i:03}": [Status.CRITICAL if i % 10 == 0 else Status.OK] * 3 for i in range(300)}
    message = health_report(run_of(statuses, reason="x" * 200))
    assert len(message.blocks) <= 50 and _block_problem(message.blocks) is None
    text = text_of(message)
    assert "*300 services*: 270 ✅ healthy · 0 ⚠️ degraded · 30 ❌ failing" in text
    for i in range(0, 300, 10):
        assert f"❌ *svc{i:03}*" in text
    assert "✅ *Healthy:*" in text


def test_more_failing_services_than_blocks_say_how_many_are_hidden() -> None:
    statuses = {f"svc{i:03}": [Status.CRITICAL] for i in range(120)}
    message = health_report(run_of(statuses))
    assert len(message.blocks) == 50 and _block_problem(message.blocks) is None
    assert "…and 75 more needing attention: svc045" in text_of(message)


def test_a_service_with_many_long_checks_stays_within_the_section_limit() -> None:
    message = health_report(run_of({"api": [Status.CRITICAL] * 200}, reason="y" * 300))
    section = message.blocks[1]["text"]["text"]
    assert len(section) <= 3000 and section.rstrip().endswith("more")
    assert _block_problem(message.blocks) is None


def test_more_than_fifty_blocks_is_refused_before_slack_sees_it() -> None:
    from slack_sdk.models.blocks import DividerBlock

    with pytest.raises(ValueError, match="at most 50"):
        Message.of("x", [DividerBlock()] * 51)
