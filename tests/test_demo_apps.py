"""The playground's demo apps alone: what their health endpoint answers after a break, a restart, a deploy, a
rollback and a scale, and that a saved state comes back whole. (Through the bot: tests/test_playground_demo.py.)"""

from __future__ import annotations

import pytest

from bot.catalog_loading import parse_catalog
from bot.clock import SystemClock
from bot.executors.base import ExecutorError, RecordingProgress
from bot.executors.demo import DemoTarget
from playground.demo_apps import DemoSwitches
from playground.snapshot import dump, restore
from playground.workspace import Workspace

TARGET = DemoTarget(type="demo", app="payments", image="payments:1.4.2")


def switches() -> DemoSwitches:
    demo = DemoSwitches(["storefront", "payments"], SystemClock(), start_seconds=0)
    demo.add_apps(parse_catalog("services:\n  payments:\n    environment: production\n"
                                "    target: {type: demo, app: payments, image: 'payments:1.4.2'}\n"))
    return demo


async def test_a_break_from_the_page_fails_the_health_endpoint_until_a_restart() -> None:
    demo = switches()
    demo.healthy["payments"] = False
    assert demo.answer("payments")[0] == 503
    summary = await demo.workload("payments", TARGET).restart(RecordingProgress())
    assert demo.answer("payments") == (200, {"status": "ok", "version": "1.4.2"})
    assert "Restarted demo app payments (payments:1.4.2)" in summary


async def test_a_service_without_an_app_only_follows_its_switch() -> None:
    demo = switches()
    assert demo.answer("storefront") == (200, {"status": "ok"})
    demo.healthy["storefront"] = False
    assert demo.answer("storefront")[0] == 503


async def test_a_bad_tag_deploys_but_fails_its_health_and_a_rollback_brings_the_good_one_back() -> None:
    demo = switches()
    workload = demo.workload("payments", TARGET)
    await workload.deploy("bad", RecordingProgress())
    assert await workload.current_image() == "payments:bad"
    status, body = demo.answer("payments")
    assert status == 503 and body["version"] == "bad"

    summary = await workload.rollback(None, RecordingProgress())
    assert "back from revision 2 (payments:bad) to payments:1.4.2" in summary
    assert demo.answer("payments")[0] == 200
    assert [(r.id, r.image, r.current) for r in await workload.revisions()] == [
        ("3", "payments:1.4.2", True), ("2", "payments:bad", False)]


async def test_a_rollback_to_a_tag_or_number_it_never_ran_is_refused_and_changes_nothing() -> None:
    workload = switches().workload("payments", TARGET)
    with pytest.raises(ExecutorError, match=r"it has 1 \(payments:1\.4\.2\)"):
        await workload.rollback("9", RecordingProgress())
    with pytest.raises(ExecutorError, match="there is no earlier revision"):
        await workload.rollback(None, RecordingProgress())
    assert await workload.current_image() == "payments:1.4.2"


async def test_scaled_to_zero_it_answers_down() -> None:
    demo = switches()
    await demo.workload("payments", TARGET).scale(0, RecordingProgress())
    assert demo.answer("payments")[1]["reason"] == "scaled to 0 replicas"


async def test_the_workspace_and_the_apps_come_back_whole_from_a_snapshot() -> None:
    demo, slack = switches(), Workspace()
    await demo.workload("payments", TARGET).deploy("1.5.0", RecordingProgress())
    demo.healthy["storefront"] = False
    slack.answer("conversations.create", {"name": "inc-1-checkout"})
    slack.said("C0OPS", "U0ALICE", "hello")
    slack.reactions[("C0OPS", "1.1")] = {"pushpin": {"U0BOB"}}

    again, twin = switches(), Workspace()
    restore(twin, again, dump(slack, demo))
    assert twin.channels == slack.channels and twin.messages == slack.messages and twin.reactions == slack.reactions
    assert twin.answer("conversations.create", {"name": "inc-2-search"})["channel"]["id"] == "C00000002", \
        "ids go on from where they were"
    assert again.apps["payments"].image == "payments:1.5.0" and again.healthy["storefront"] is False


def test_check_config_warns_that_a_demo_target_runs_only_in_the_playground() -> None:
    from bot.catalog_loading import catalog_warnings

    catalog = parse_catalog("services:\n  payments:\n    environment: production\n    target: {type: demo, app: payments}\n")
    assert "services.payments.target: a demo app, which only `opsbot dev` runs" in "\n".join(catalog_warnings(catalog))
