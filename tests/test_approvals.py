"""The action flow end to end through signed Slack requests: plan, request, approve or deny, run once.

Targets are real directories backed up by the directory executor; the store runs on both backends.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from bot.runs.models import ActionState, BackupLabel
from playground.payloads import block_action, sign, slash_command, view_submission
from playground.slack_api import FakeSlack
from tests.conftest import RunningBot, make_settings, start_bot

ALICE, BOB, CAROL, DAVE = "U0ALICE", "U0BOB", "U0CAROL", "U0DAVE"
CHANNEL = "C0OPS"


def catalog(tmp: Path) -> str:
    for name in ("files", "scratch"):
        (tmp / name / "data").mkdir(parents=True)
        (tmp / name / "data" / "config.yml").write_text(f"{name}: 1\n")
    return f"""
approvals:
  expire_after_minutes: 30
  environments:
    production:
      default: {{approvals: 1, approvers: [S0LEADS]}}
      restore: {{approvals: 2, approvers: [S0LEADS]}}
    staging:
      default: {{approvals: 0}}
services:
  files:
    environment: production
    owners: [{ALICE}]
    backup: {{type: directory, paths: ["{tmp / 'files' / 'data'}"], directory: "{tmp / 'files' / 'backups'}"}}
  scratch:
    environment: staging
    backup: {{type: directory, paths: ["{tmp / 'scratch' / 'data'}"], directory: "{tmp / 'scratch' / 'backups'}"}}
  locked:
    environment: production
    approvals:
      backup: {{approvals: 1, requesters: [S0OPS]}}
    backup: {{type: directory, paths: ["{tmp / 'files' / 'data'}"], directory: "{tmp / 'locked'}"}}
  nothing:
    environment: production
"""


@pytest.fixture
async def bot(slack: FakeSlack, database_url: str, http: aiohttp.ClientSession, tmp_path: Path) -> AsyncIterator[RunningBot]:
    slack.groups = {"S0LEADS": [BOB, DAVE], "S0OPS": [ALICE]}
    running, runner = await start_bot(make_settings(slack, database_url), catalog(tmp_path), slack, http)
    yield running
    await runner.cleanup()


async def ops(bot: RunningBot, text: str, user: str = ALICE) -> dict:
    """What the user sees in answer: the ack's body, or what came through the command's response_url."""
    url = bot.slack.response_url()
    body, content_type = slash_command("/ops", text, user=user, channel=CHANNEL, response_url=url)
    async with bot.http.post(f"{bot.url}/slack/events", data=body,
                             headers={"Content-Type": content_type, **sign(body)}) as response:
        assert response.status == 200
        acked = await response.text()
    await bot.settle()
    answers = [c.args for c in bot.slack.of("response_url") if url.endswith(c.path)]
    if answers:
        return answers[-1]
    return json.loads(acked) if acked else {}


async def click(bot: RunningBot, action_id: str, value: str, user: str) -> str:
    url = bot.slack.response_url()
    body, content_type = block_action(action_id, value, user=user, channel=CHANNEL, response_url=url)
    assert (await bot.post(body, content_type)).status == 200
    await bot.settle()
    answers = [c for c in bot.slack.of("response_url") if url.endswith(c.path)]
    return "\n".join(str(c.args.get("text", "")) for c in answers)


def button(message: dict, action_id: str) -> dict:
    for block in message.get("blocks", []):
        for element in block.get("elements", []) if block["type"] == "actions" else []:
            if element["action_id"] == action_id:
                return element
    raise AssertionError(f"no {action_id} button in {json.dumps(message)[:500]}")


def text(message: dict) -> str:
    return json.dumps(message, ensure_ascii=False)


async def requested(bot: RunningBot, command: str, user: str = ALICE, reason: str = "routine") -> tuple[int, dict]:
    """`/ops <command>`, press Request approval, give a reason if asked; returns the run id and the channel message."""
    plan = await ops(bot, command, user)
    assert "Nothing has been touched yet" in text(plan)
    run_id = button(plan, "action.request")["value"]
    opened = len(bot.slack.of("views.open"))
    await click(bot, "action.request", run_id, user)
    if len(bot.slack.of("views.open")) > opened:  # no reason was typed: the modal asks for one
        await submit(bot, bot.slack.of("views.open")[-1].args["view"], reason, user)
    [post] = list(bot.slack.of("chat.postMessage"))[-1:]
    return int(run_id), post.args


async def submit(bot: RunningBot, view: dict, reason: str, user: str) -> None:
    body, content_type = view_submission(view["callback_id"],
                                         {"reason": {"reason.input": {"type": "plain_text_input", "value": reason}}},
                                         user=user, private_metadata=view["private_metadata"])
    assert (await bot.post(body, content_type)).status == 200
    await bot.settle()


def current(bot: RunningBot, run_id: int) -> dict:
    [(_key, message)] = [(k, m) for k, m in bot.slack.messages.items() if f"Action #{run_id} " in text(m)][-1:]
    return message


async def test_a_production_backup_needs_a_second_person_and_then_runs_once(bot: RunningBot, tmp_path: Path) -> None:
    plan = await ops(bot, "backup files before the upgrade")
    assert plan["response_type"] == "ephemeral"
    assert "1 approval from <!subteam^S0LEADS>" in text(plan) and "before the upgrade" in text(plan)
    run_id, posted = await requested(bot, "backup files")
    assert posted["channel"] == CHANNEL and "Approval needed: backup files" in text(posted)
    # No "Approve?" dialog: Slack would show it to the requester too, who would confirm and only then be refused.
    assert "confirm" not in button(posted, "approval.approve")

    assert "second person" in await click(bot, "approval.approve", str(run_id), ALICE)
    assert "not an approver" in await click(bot, "approval.approve", str(run_id), CAROL)
    assert "runs now" in await click(bot, "approval.approve", str(run_id), BOB)

    final = current(bot, run_id)
    assert "✅ Done: backup files" in text(final) and "1 of 1 (<@U0BOB>)" in text(final)
    run = await bot.ctx.store.get_action(run_id)
    assert run is not None and run.state is ActionState.SUCCEEDED
    [record] = await bot.ctx.store.backups("files")
    assert record.path.exists() and record.verified_at is not None and record.label is BackupLabel.MANUAL
    listing = await ops(bot, "backups files")
    assert f"`{record.id}`" in text(listing) and "verified ✅" in text(listing)
    audit = [e.args for e in await bot.ctx.store.audit_entries(limit=50) if e.kind == "action"]
    assert any("succeeded" in a for a in audit) and any("running" in a for a in audit)


async def test_deny_asks_why_and_the_action_never_runs(bot: RunningBot) -> None:
    run_id, _ = await requested(bot, "backup files")
    await click(bot, "approval.deny", str(run_id), BOB)
    view = bot.slack.of("views.open")[-1].args["view"]
    assert view["callback_id"] == "approval.deny.reason"
    await submit(bot, view, "not during the sale", BOB)
    run = await bot.ctx.store.get_action(run_id)
    assert run is not None and run.state is ActionState.DENIED
    assert "Denied by <@U0BOB>: not during the sale" in text(current(bot, run_id))
    assert await bot.ctx.store.backups("files") == []
    assert "Already denied" in await click(bot, "approval.approve", str(run_id), DAVE)


async def test_two_approvers_needed_for_a_restore(bot: RunningBot, tmp_path: Path) -> None:
    data = tmp_path / "files" / "data" / "config.yml"
    run_id, _ = await requested(bot, "backup files")
    await click(bot, "approval.approve", str(run_id), BOB)
    [backup] = await bot.ctx.store.backups("files")
    data.write_text("broken\n")

    restore_id, _ = await requested(bot, f"restore files {backup.id} config got corrupted")
    assert "1 of 2" in await click(bot, "approval.approve", str(restore_id), BOB)
    assert "already decided" in await click(bot, "approval.approve", str(restore_id), BOB)
    assert "runs now" in await click(bot, "approval.approve", str(restore_id), DAVE)
    assert data.read_text() == "files: 1\n"
    labels = sorted(b.label.value for b in await bot.ctx.store.backups("files"))
    assert labels == ["manual", "safety"]
    shown = text(current(bot, restore_id))
    # The safety backup is part of the restore step (its detail names it), no longer a row of its own.
    assert "safety backup" in shown and "✅ Done: restore files from backup" in shown


async def test_simultaneous_approvals_and_duplicate_deliveries_run_it_once(bot: RunningBot) -> None:
    run_id, _ = await requested(bot, "backup files")
    replies = await asyncio.gather(
        click(bot, "approval.approve", str(run_id), BOB),
        click(bot, "approval.approve", str(run_id), DAVE),
        click(bot, "approval.approve", str(run_id), BOB),
    )
    await bot.settle()
    assert len(await bot.ctx.store.backups("files")) == 1
    assert sum("runs now" in reply for reply in replies) == 1


async def test_a_double_click_on_request_posts_one_request(bot: RunningBot) -> None:
    plan = await ops(bot, "backup files before the migration")  # a reason given: no modal
    run_id = button(plan, "action.request")["value"]
    await asyncio.gather(click(bot, "action.request", run_id, ALICE), click(bot, "action.request", run_id, ALICE))
    assert len(bot.slack.of("chat.postMessage")) == 1


async def test_who_may_request_is_policy(bot: RunningBot) -> None:
    refused = await ops(bot, "backup locked", user=CAROL)
    assert "You may not backup `locked`" in text(refused) and "<!subteam^S0OPS>" in text(refused)
    allowed = await ops(bot, "backup locked", user=ALICE)
    assert "Nothing has been touched yet" in text(allowed)


async def test_a_run_cut_short_by_a_crash_is_marked_interrupted_at_start_up(slack: FakeSlack, database_url: str,
                                                                            http: aiohttp.ClientSession, tmp_path: Path) -> None:
    first, runner = await start_bot(make_settings(slack, database_url), catalog(tmp_path), slack, http)
    run_id, _ = await requested(first, "backup files")
    # What a replica that died mid-run leaves behind: the row says running, and nobody holds the lease.
    await first.ctx.store.transition_action(run_id, ActionState.APPROVED, expect={ActionState.PENDING})
    await first.ctx.store.transition_action(run_id, ActionState.RUNNING, expect={ActionState.APPROVED},
                                            started_at=first.ctx.clock.now())
    await runner.cleanup()

    second, runner = await start_bot(make_settings(slack, database_url), catalog(tmp_path / "again"), slack, http)
    try:
        run = await second.ctx.store.get_action(run_id)
        assert run is not None and run.state is ActionState.INTERRUPTED
        assert "⚠️ Interrupted" in text(current(second, run_id)) and "check `/ops health files`" in text(current(second, run_id))
    finally:
        await runner.cleanup()


@pytest.mark.parametrize(
    ("command", "expected"),
    [
        ("restart", "Usage: `/ops restart &lt;service&gt; [reason]`: name a service"),
        ("restart filez", "Did you mean `files`?"),
        ("restore files", "name a backup id of files (`/ops backups files`), or `latest` (its newest verified backup)"),
        ("restore files 999", "`files` has no backup `999`"),
        ("restore files latest", "`files` has no verified backup yet; take one with `/ops backup files`"),
        ("restore files newest", "name a backup id of files"),
        ("rollback files to 'x;rm'", "a revision number or an image tag"),
        ("backup nothing", "its catalog entry has no `backup:`"),
        ("restart files", "its catalog entry has no `target:`"),
    ],
)
async def test_bad_action_requests_get_a_clear_answer(bot: RunningBot, command: str, expected: str) -> None:
    answer = await ops(bot, command)
    assert expected in text(answer)
    assert bot.slack.of("chat.postMessage") == []


async def test_a_request_without_a_reason_asks_for_one_and_shows_it_to_approvers(bot: RunningBot) -> None:
    run_id, posted = await requested(bot, "backup files", reason="disk swap tonight")
    [opened] = bot.slack.of("views.open")
    assert opened.args["view"]["callback_id"] == "action.request.reason"
    assert "disk swap tonight" in text(posted)
    run = await bot.ctx.store.get_action(run_id)
    assert run is not None and run.reason == "disk swap tonight" and run.state is ActionState.PENDING


async def test_backups_list_offers_restore_and_back_up_now(bot: RunningBot) -> None:
    empty = await ops(bot, "backups scratch")
    assert "no backups yet" in text(empty)
    answer = await click(bot, "backup.take", button(empty, "backup.take")["value"], ALICE)
    assert "Plan: backup scratch" in answer
    plan = await ops(bot, "backup scratch")
    await click(bot, "action.request", button(plan, "action.request")["value"], ALICE)
    listing = await ops(bot, "backups scratch")
    [record] = await bot.ctx.store.backups("scratch")
    [restore] = [b["accessory"] for b in listing["blocks"] if b.get("accessory", {}).get("action_id") == "backup.restore"]
    assert restore["value"] == str(record.id)
    assert f"Plan: restore scratch from backup {record.id}" in await click(bot, "backup.restore", restore["value"], ALICE)


async def test_restore_latest_plans_the_newest_verified_backup_by_its_id(bot: RunningBot) -> None:
    run_id, _ = await requested(bot, "backup files")
    await click(bot, "approval.approve", str(run_id), BOB)
    [backup] = await bot.ctx.store.backups("files")
    plan = await ops(bot, "restore files LATEST config got corrupted")
    assert f"📝 Plan: restore files from backup {backup.id}" in text(plan)
    planned = await bot.ctx.store.get_action(int(button(plan, "action.request")["value"]))
    assert planned is not None and planned.params["backup_id"] == backup.id  # what runs is what the plan showed


async def test_pending_approvals_link_to_their_message_and_can_be_decided_there(bot: RunningBot) -> None:
    run_id, _ = await requested(bot, "backup files")
    listing = await ops(bot, "approvals", DAVE)
    run = await bot.ctx.store.get_action(run_id)
    assert run is not None and run.message_ts
    assert f"<https://fake.slack/archives/{CHANNEL}/p{run.message_ts.replace('.', '')}|#{run_id}>" in text(listing)
    assert button(listing, "approval.approve")["value"] == button(listing, "approval.deny")["value"] == str(run_id)
    assert "runs now" in await click(bot, "approval.approve", str(run_id), BOB)
    await bot.settle()
    assert "Nothing is waiting for approval." in text(await ops(bot, "approvals", DAVE))


async def test_history_without_a_service_shows_every_services_runs(bot: RunningBot) -> None:
    files_id, _ = await requested(bot, "backup files")
    scratch = await ops(bot, "backup scratch")
    await click(bot, "action.request", button(scratch, "action.request")["value"], ALICE)
    await bot.settle()
    everything = text(await ops(bot, "history"))
    assert "Recent history of every service" in everything
    assert f"#{files_id} *backup files*" in everything and "*backup scratch*" in everything
    only_files = text(await ops(bot, "history files"))
    assert f"#{files_id} *backup files*" in only_files and "backup scratch" not in only_files
