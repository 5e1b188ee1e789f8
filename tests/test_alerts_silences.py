"""Silences, the fast part: "Silence until…" (its form, the times it refuses and the words naming the valid ones in
the asker's time zone), the approval policy `alerts.silence_approvals` (a request posted, the silence made only once
a second person approves, once, audited; denied, withdrawn, expired), and the request store on both backends.
A running bot on SQLite with a fake Slack, a manual clock and the playground's Alertmanager stand-in (its silences
API); the real Alertmanager is tests/test_alerts_e2e.py."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from bot.alerts import messages as alert_messages
from bot.alerts import silencing
from bot.alerts.models import SilenceAsk, SilenceDecision, SilenceRequest, SilenceState, Verdict
from bot.alerts.silence_times import TimeProblem, check_until
from bot.catalog_loading import CatalogInvalid, parse_catalog
from bot.clock import ManualClock
from bot.store import Store
from bot.views.alert_silences import (
    APPROVE_SILENCE,
    DENY_SILENCE,
    REASON_BLOCK,
    REASON_INPUT,
    UNTIL_BLOCK,
    UNTIL_INPUT,
    until_error,
)
from bot.views.alerts import SILENCE_UNTIL_ACTION, UNSILENCE_ACTION
from playground.alerts import Alerting
from playground.payloads import block_action, view_submission
from playground.slack_api import FakeSlack
from tests.conftest import RunningBot, make_settings, start_bot
from tests.targets import serve
from tests.test_alerts import CATALOG, TOKEN, _alert, _new, am_alert, am_payload

START = datetime(2026, 12, 3, 10, 0, tzinfo=UTC)
ALICE, BOB, CAROL, DAVE = "U0ALICE", "U0BOB", "U0CAROL", "U0DAVE"  # Paris, New York, UTC, Tokyo (the fake's users)
CHANNEL = "C0APITEAM"  # where the test catalog routes ApiDown
APPROVALS = "  silence_approvals: {approvals: 1, approvers: [U0BOB, U0DAVE]}\n"


# --- the time checks and their words ----------------------------------------------------------------------------------


def test_until_is_checked_against_now_and_the_longest_silence() -> None:
    longest = timedelta(days=2)
    assert check_until(START + timedelta(hours=5), START, longest) is None
    assert check_until(START + longest, START, longest) is None
    missing, past = check_until(None, START, longest), check_until(START + timedelta(seconds=30), START, longest)
    late = check_until(START + longest + timedelta(minutes=1), START, longest)
    assert [r.problem if r else None for r in (missing, past, late)] == [TimeProblem.MISSING, TimeProblem.PAST,
                                                                       TimeProblem.TOO_LATE]
    assert late is not None and (late.earliest, late.latest) == (START + timedelta(minutes=1), START + longest)


def test_the_forms_error_names_the_valid_window_in_the_askers_time_zone() -> None:
    refused = check_until(START + timedelta(days=3), START, timedelta(days=2))
    assert refused is not None
    words = until_error(refused, "Europe/Paris")
    assert words == ("That is more than 2 d ahead (alerts.silence_max). Pick a time between Thu 03 Dec 11:01 "
                     "Europe/Paris (10:01 UTC) and Sat 05 Dec 11:00 Europe/Paris (10:00 UTC).")
    past = check_until(START - timedelta(hours=1), START, timedelta(days=2))
    assert past is not None and until_error(past, None).startswith("That time has passed")
    assert "between Thu 03 Dec 10:01 UTC and" in until_error(past, "Not/AZone")  # an unknown zone falls back to UTC


# --- the request store, both backends ---------------------------------------------------------------------------------


async def test_silence_requests_are_compare_and_set_on_both_backends(store: Store) -> None:
    group = (await store.record_delivery(_new(), [_alert()], START)).group
    ask = SilenceAsk(None, timedelta(hours=4), "deploy in progress")
    request = SilenceRequest(group.id, ALICE, ask, 1, (BOB,), START, START + timedelta(minutes=30), CHANNEL)
    first = await store.create_silence_request(request)
    assert first is not None and await store.create_silence_request(request) is None  # one open per group
    waiting = await store.open_silence_request(group.id)
    assert waiting is not None and (waiting.id, waiting.ask, waiting.approvers) == (first, ask, (BOB,))
    assert await store.add_silence_decision(SilenceDecision(first, BOB, Verdict.APPROVE, START))
    assert not await store.add_silence_decision(SilenceDecision(first, BOB, Verdict.DENY, START))  # once per person
    # Past its expiry it cannot be approved; a silence cannot be recorded before it was approved.
    late = START + timedelta(minutes=31)
    assert not await store.move_silence_request(first, SilenceState.APPROVED, at=late, unexpired=True, decided_by=BOB)
    assert not await store.move_silence_request(first, SilenceState.SILENCED, at=START, silence_id="s-1")
    claims = await asyncio.gather(*(store.move_silence_request(first, SilenceState.APPROVED, at=START, unexpired=True,
                                                               decided_by=who) for who in (BOB, DAVE)))
    assert sorted(claims) == [False, True]  # two approvers at once: one makes the silence
    assert [r.id for r in await store.stale_silence_requests(START, claimed_before=START - timedelta(minutes=2))] == []
    assert [r.id for r in await store.stale_silence_requests(START, claimed_before=START)] == [first]  # its maker died
    assert await store.move_silence_request(first, SilenceState.SILENCED, at=START, silence_id="s-1")
    done = await store.silence_request(first)
    assert done is not None and (done.state, done.silence_id) == (SilenceState.SILENCED, "s-1")
    assert await store.open_silence_request(group.id) is None
    until = SilenceAsk(START + timedelta(hours=2), None, "maintenance")
    second = await store.create_silence_request(SilenceRequest(group.id, ALICE, until, 1, (), START, START, CHANNEL))
    assert second is not None and [r.id for r in await store.stale_silence_requests(START, claimed_before=START)] == [second]
    assert (await store.silence_request(second)).ask.until == START + timedelta(hours=2)  # type: ignore[union-attr]


# --- through a running bot --------------------------------------------------------------------------------------------


@dataclass
class World:
    bot: RunningBot
    clock: ManualClock
    alertmanager: Alerting

    @property
    def silences(self) -> list[dict[str, Any]]:
        return list(self.alertmanager.silences.values())

    async def click(self, action: str, value: str, user: str = ALICE) -> str:
        """Press a button; what the person was told (their ephemeral answers, joined)."""
        url = self.bot.slack.response_url()
        body, kind = block_action(action, value, user=user, channel=CHANNEL, response_url=url)
        await self.bot.post(body, kind)
        await self.bot.settle()
        return " ".join(json.dumps(c.args) for c in self.bot.slack.of("response_url") if url.endswith(c.path))

    def alert_message(self) -> dict[str, Any]:
        [(_, ts)] = [key for key, m in self.bot.slack.messages.items() if "ApiDown" in (m.get("text") or "")
                     and "FIRING" in (m.get("text") or "")]
        return self.bot.slack.messages[(CHANNEL, ts)]


@asynccontextmanager
async def world(slack: FakeSlack, http: aiohttp.ClientSession, tmp_path: Path, settings_yaml: str = "",
                silence_max: str = "2d") -> AsyncIterator[World]:
    clock = ManualClock(START + timedelta(minutes=2))
    alertmanager = Alerting(clock, TOKEN)
    app = web.Application()
    alertmanager.add_routes(app)
    am_runner, port = await serve(app)
    catalog = CATALOG.replace("  channel: C0ALERTS\n", f"  channel: C0ALERTS\n  alertmanager_url: http://127.0.0.1:{port}\n"
                                                       f"  silence_max: {silence_max}\n{settings_yaml}")
    settings = make_settings(slack, f"sqlite:///{tmp_path / 'opsbot.db'}", opsbot_alerts_token=TOKEN)
    bot, runner = await start_bot(settings, catalog, slack, http, clock=clock)
    try:
        async with http.post(f"{bot.url}/alerts/alertmanager", json=am_payload(am_alert()),
                             headers={"Authorization": f"Bearer {TOKEN}"}) as response:
            assert response.status == 200, await response.text()
        yield World(bot, clock, alertmanager)
        await bot.settle()
    finally:
        await runner.cleanup()
        await am_runner.cleanup()


def _form(until: datetime | None, reason: str) -> dict[str, dict[str, Any]]:
    picked = {"type": "datetimepicker", "selected_date_time": int(until.timestamp()) if until else None}
    return {UNTIL_BLOCK: {UNTIL_INPUT: picked}, REASON_BLOCK: {REASON_INPUT: {"type": "plain_text_input", "value": reason}}}


async def _submit(w: World, view: dict[str, Any], until: datetime | None, reason: str) -> dict[str, Any]:
    body, kind = view_submission(view["callback_id"], _form(until, reason), user=ALICE,
                                 private_metadata=view["private_metadata"])
    response = await w.bot.post(body, kind)
    answer = await response.text()
    await w.bot.settle()
    return json.loads(answer) if answer else {}


async def test_silence_until_offers_a_picker_refuses_bad_times_and_silences_until_the_time_picked(
        slack: FakeSlack, http: aiohttp.ClientSession, tmp_path: Path) -> None:
    async with world(slack, http, tmp_path) as w:
        await w.click(SILENCE_UNTIL_ACTION, "1")
        [opened] = slack.of("views.open")
        view = opened.args["view"]
        [picker] = [b["element"] for b in view["blocks"] if b.get("block_id") == UNTIL_BLOCK]
        now = w.clock.now()
        assert picker["type"] == "datetimepicker" and picker["initial_date_time"] == int((now + timedelta(hours=8)).timestamp())
        assert "at most 2 d ahead" in json.dumps(view["blocks"])

        # Alice is in Paris: the errors name the window in her time zone, with UTC beside it.
        answer = await _submit(w, view, now - timedelta(hours=1), "deploying")
        assert answer["response_action"] == "errors"
        assert answer["errors"][UNTIL_BLOCK] == ("That time has passed (or is under a minute away). Pick one between "
                                                 "Thu 03 Dec 11:03 Europe/Paris (10:03 UTC) and Sat 05 Dec 11:02 "
                                                 "Europe/Paris (10:02 UTC).")
        answer = await _submit(w, view, now + timedelta(days=3), "deploying")
        assert "more than 2 d ahead (alerts.silence_max)" in answer["errors"][UNTIL_BLOCK]
        answer = await _submit(w, view, now + timedelta(hours=6), "   ")
        assert list(answer["errors"]) == [REASON_BLOCK] and "Say why" in answer["errors"][REASON_BLOCK]
        assert w.silences == []  # nothing was silenced by a refused form

        until = (now + timedelta(hours=6)).replace(second=0)
        assert await _submit(w, view, until, "DB failover drill, see CHG-42") == {}
        [made] = w.silences
        assert made["endsAt"] == until.isoformat() and made["startsAt"] == now.isoformat()
        assert made["comment"].startswith("DB failover drill, see CHG-42 — asked from Slack by Alice Martin")
        assert made["matchers"] == [{"name": "alertname", "value": "ApiDown", "isRegex": False, "isEqual": True}]
        group = await w.bot.ctx.store.alert_group(1)
        assert group is not None and (group.silence_id, group.silenced_until) == (made["id"], until)
        shown = json.dumps(w.alert_message()["blocks"])
        assert f"Silenced by <@{ALICE}>" in shown and "alert.unsilence" in shown and SILENCE_UNTIL_ACTION not in shown


async def test_a_silence_that_needs_approval_is_made_only_once_a_second_person_approves(
        slack: FakeSlack, http: aiohttp.ClientSession, tmp_path: Path) -> None:
    async with world(slack, http, tmp_path, APPROVALS) as w:
        told = await w.click("alert.silence.4h", "1")
        assert f"Sent for approval in <#{CHANNEL}>" in told
        assert w.silences == []
        request = await w.bot.ctx.store.open_silence_request(1)
        assert request is not None and request.message_ts is not None and request.ask.lasting == timedelta(hours=4)
        posted = slack.messages[(CHANNEL, request.message_ts)]
        assert "asks to silence *ApiDown* for 4 h" in json.dumps(posted["blocks"])
        assert f"<@{BOB}>, <@{DAVE}>" in json.dumps(posted["blocks"])  # who may approve
        shown = json.dumps(w.alert_message()["blocks"])
        assert "waiting for 1 approval" in shown and "alert.silence.4h" not in shown  # no second request meanwhile

        assert "You asked for this silence" in await w.click(APPROVE_SILENCE, str(request.id), ALICE)
        assert "not an approver of silences" in await w.click(APPROVE_SILENCE, str(request.id), CAROL)
        assert w.silences == []

        w.clock.advance(10 * 60)  # approved ten minutes later: the 4 h count from the approval
        bodies = [block_action(APPROVE_SILENCE, str(request.id), user=who, channel=CHANNEL,
                               response_url=slack.response_url()) for who in (BOB, DAVE)]
        await asyncio.gather(*(w.bot.post(body, kind) for body, kind in bodies))  # both approvers at once
        await w.bot.settle()
        [made] = w.silences  # one silence
        approved = w.clock.now()
        assert (made["startsAt"], made["endsAt"]) == (approved.isoformat(), (approved + timedelta(hours=4)).isoformat())
        assert "approved by" in made["comment"] and "Alice Martin" in made["createdBy"]
        done = await w.bot.ctx.store.silence_request(request.id or 0)
        assert done is not None and done.state is SilenceState.SILENCED and done.silence_id == made["id"]
        assert "silenced in Alertmanager" in json.dumps(slack.messages[(CHANNEL, request.message_ts)]["blocks"])
        assert "alert.silence.approve" not in json.dumps(slack.messages[(CHANNEL, request.message_ts)]["blocks"])
        assert f"Silenced by <@{ALICE}>" in json.dumps(w.alert_message()["blocks"])
        audited = [(e.args.split(": ", 1)[1], e.actor_id) for e in await w.bot.ctx.store.audit_entries()
                   if e.kind == "alert"]
        assert ("silence requested", ALICE) in audited and ("silenced", done.decided_by) in audited
        assert sum(what == "silence approval given" for what, _ in audited) >= 1


async def test_denied_withdrawn_and_expired_requests_silence_nothing(
        slack: FakeSlack, http: aiohttp.ClientSession, tmp_path: Path) -> None:
    async with world(slack, http, tmp_path, APPROVALS) as w:
        await w.click("alert.silence.1h", "1")
        first = await w.bot.ctx.store.open_silence_request(1)
        assert first is not None
        assert "Denied" in await w.click(DENY_SILENCE, str(first.id), BOB)
        assert "Already denied" in await w.click(APPROVE_SILENCE, str(first.id), DAVE)

        await w.click("alert.silence.1h", "1")
        second = await w.bot.ctx.store.open_silence_request(1)
        assert second is not None and second.id != first.id
        assert "Withdrawn" in await w.click(DENY_SILENCE, str(second.id), ALICE)  # the requester takes it back

        await w.click("alert.silence.1h", "1")
        third = await w.bot.ctx.store.open_silence_request(1)
        assert third is not None
        w.clock.advance(31 * 60)  # approvals.expire_after_minutes: 30
        assert await silencing.expire_due(w.bot.ctx) == 1
        assert await silencing.expire_due(w.bot.ctx) == 0  # another replica's chore finds nothing left
        expired = await w.bot.ctx.store.silence_request(third.id or 0)
        assert expired is not None and expired.state is SilenceState.EXPIRED
        assert third.message_ts is not None and "Expired" in json.dumps(slack.messages[(CHANNEL, third.message_ts)]["blocks"])
        assert "expired" in await w.click(APPROVE_SILENCE, str(third.id), BOB)
        assert w.silences == []
        shown = json.dumps(w.alert_message()["blocks"])
        assert "waiting for" not in shown and "alert.silence.4h" in shown  # Silence is offered again


async def test_the_policy_is_read_and_checked_from_the_catalog_and_requesters_are_held_to_it(
        slack: FakeSlack, http: aiohttp.ClientSession, tmp_path: Path) -> None:
    with pytest.raises(CatalogInvalid, match=r"alerts\.silence_approvals\.approvers"):
        parse_catalog(CATALOG.replace("  routes:", "  silence_approvals: {approvers: [bob]}\n  routes:"))
    with pytest.raises(CatalogInvalid, match=r"alerts\.silence_max"):
        parse_catalog(CATALOG.replace("  routes:", "  silence_max: 400d\n  routes:"))
    default = parse_catalog(CATALOG).alerts
    assert default is not None and default.silence_approvals is None and default.silence_max == timedelta(days=7)
    async with world(slack, http, tmp_path, "  silence_approvals: {approvals: 0, requesters: [U0BOB]}\n") as w:
        assert "You may not silence alerts. Who may: <@U0BOB>" in await w.click("alert.silence.1h", "1", ALICE)
        assert w.silences == []
        # A form kept open past its time is checked again by the core, whatever the form said.
        with pytest.raises(silencing.SilenceTimeInvalid, match="must end between"):
            await silencing.silence(w.bot.ctx, 1, BOB, silencing.ask_for(until=w.clock.now(), comment="late"))
        assert "Silenced in Alertmanager until" in await w.click("alert.silence.1h", "1", BOB)  # approvals: 0
        assert len(w.silences) == 1


async def test_the_hour_buttons_are_held_to_the_longest_silence_too(
        slack: FakeSlack, http: aiohttp.ClientSession, tmp_path: Path) -> None:
    async with world(slack, http, tmp_path, silence_max="2h") as w:
        told = await w.click("alert.silence.4h", "1")
        assert "must end between" in told and "alerts.silence_max" in told and "nothing was silenced" in told
        assert w.silences == [] and await w.bot.ctx.store.open_silence_request(1) is None
        assert "Silenced in Alertmanager until" in await w.click("alert.silence.1h", "1")
        assert len(w.silences) == 1
        await w.bot.ctx.store.touch_group(1)
        await alert_messages.refresh(w.bot.ctx, 1)
        shown = json.dumps(w.alert_message()["blocks"])
        assert "alert.silence.4h" not in shown  # a button the longest silence would refuse is not offered


async def test_a_silence_that_reached_its_end_shows_as_ended_and_silence_is_offered_again(
        slack: FakeSlack, http: aiohttp.ClientSession, tmp_path: Path) -> None:
    async with world(slack, http, tmp_path) as w:
        assert "Silenced in Alertmanager until" in await w.click("alert.silence.1h", "1")
        first = (await w.bot.ctx.store.alert_group(1)).silence_id  # type: ignore[union-attr]
        w.clock.advance(61 * 60)
        await w.bot.ctx.store.touch_group(1)  # what the next delivery does: the message is written again
        await alert_messages.refresh(w.bot.ctx, 1)
        shown = json.dumps(w.alert_message()["blocks"])
        assert "ended" in shown and "Silenced by" not in shown
        assert "alert.silence.1h" in shown and UNSILENCE_ACTION not in shown
        assert "Silenced in Alertmanager until" in await w.click("alert.silence.1h", "1")  # not "Unsilence it first"
        group = await w.bot.ctx.store.alert_group(1)
        assert group is not None and group.silence_id not in (None, first) and len(w.silences) == 2


async def test_a_request_that_cannot_be_posted_is_withdrawn_and_never_blocks_the_next(
        slack: FakeSlack, http: aiohttp.ClientSession, tmp_path: Path) -> None:
    async with world(slack, http, tmp_path, APPROVALS) as w:
        slack.fail_next("chat.postMessage", error="not_in_channel")
        told = await w.click("alert.silence.1h", "1")
        assert "Sent for approval" not in told and "invite me first" in told  # the asker hears why
        assert await w.bot.ctx.store.open_silence_request(1) is None  # no request nobody can see or approve
        [request] = [r for r in [await w.bot.ctx.store.silence_request(1)] if r is not None]
        assert request.state is SilenceState.WITHDRAWN and request.message_ts is None
        shown = json.dumps(w.alert_message()["blocks"])
        assert "waiting for" not in shown and "alert.silence.1h" in shown  # Silence is offered again
        assert "Sent for approval" in await w.click("alert.silence.1h", "1")  # and works once Slack does
        assert (await w.bot.ctx.store.open_silence_request(1)) is not None
