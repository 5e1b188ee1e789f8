"""Scheduled runbooks, on the real scheduler with a manual clock and real stores (SQLite, PostgreSQL): a runbook
with `schedule:` runs at its time with its `schedule_values`, approved by the catalog, its message in the ops
channel; a failing step is undone and alerted; a busy service is alerted, not run; bad values refuse the catalog."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from bot.app import build_context
from bot.catalog_loading import CatalogInvalid, catalog_warnings, parse_catalog
from bot.clock import ManualClock
from bot.context import Context
from bot.runs.models import SCHEDULER, ActionKind, ActionState, StepState
from bot.scheduling.jobs import catalog_jobs, schedule_lines
from bot.scheduling.models import OccurrenceState
from bot.scheduling.scheduler import Scheduler
from bot.views.schedule import schedule_message
from playground.slack_api import FakeSlack
from tests.conftest import make_settings
from tests.targets import serve

OPS = "C0OPS"
T0 = datetime(2026, 11, 29, 1, 59, 50, tzinfo=UTC)  # a Sunday, ten seconds before the maintenance
DUE = "runbook:weekly-db-maintenance@2026-11-29T02:00:00Z"


class Recorder:
    """The database's maintenance endpoints: records each request; `/vacuum` refuses (409) while `failing`."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, Any]] = []
        self.failing = False
        self._runner: web.AppRunner | None = None
        self.base = ""

    async def start(self) -> None:
        async def record(request: web.Request) -> web.Response:
            body = await request.json() if request.can_read_body else None
            self.calls.append((request.path, body))
            if request.path == "/vacuum" and self.failing:
                # A refusal changes nothing, so the run rolls back; a 5xx would leave it to people (unknown effect).
                return web.Response(status=409, text="vacuum refused: disk full")
            return web.Response(text="ok")

        app = web.Application()
        app.router.add_post("/{tail:.*}", record)
        self._runner, port = await serve(app)
        self.base = f"http://127.0.0.1:{port}"

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()


def catalog(base: str, *, schedule_values: str = "{keep_days: 30}", channel: str = f"channel: {OPS}") -> str:
    return f"""
schedules:
  {channel}
  grace_minutes: 30
  digests: {{daily: "off", weekly: "off"}}
services:
  db:
    environment: production
    maintenance: {{type: http, on_url: "{base}/maintenance/on", off_url: "{base}/maintenance/off"}}
runbooks:
  weekly-db-maintenance:
    description: Weekly database maintenance, Sunday 02:00.
    services: [db]
    parameters:
      keep_days: {{type: integer, min: 1, max: 90}}
      mode: {{type: choice, choices: [analyze, full], default: analyze}}
    schedule: {{cron: "0 2 * * 0", timezone: UTC}}
    schedule_values: {schedule_values}
    steps:
      - {{kind: maintenance, service: db, mode: "on"}}
      - {{kind: http, url: "{base}/vacuum", json: {{keep_days: "{{{{ params.keep_days }}}}", mode: "{{{{ params.mode }}}}"}},
         on_failure: rollback}}
      - {{kind: maintenance, service: db, mode: "off"}}
"""


@pytest.fixture
async def recorder() -> AsyncIterator[Recorder]:
    server = Recorder()
    await server.start()
    yield server
    await server.stop()


@pytest.fixture
async def ctx(slack: FakeSlack, database_url: str, recorder: Recorder) -> AsyncIterator[Context]:
    context = build_context(make_settings(slack, database_url), parse_catalog(catalog(recorder.base)),
                            clock=ManualClock(T0), environ={})
    await context.start()
    yield context
    await context.stop()


async def at_two(ctx: Context) -> Scheduler:
    """A pass before 02:00 (registers the job), then one just after it; waits for the work started."""
    scheduler = Scheduler(ctx, catalog_jobs(ctx.catalog))
    await scheduler.one_pass()
    assert isinstance(ctx.clock, ManualClock)
    ctx.clock.advance(15)
    await scheduler.one_pass()
    await ctx.tasks.idle()
    return scheduler


def in_ops(slack: FakeSlack) -> list[dict]:
    return [m for (c, _), m in slack.messages.items() if c == OPS]


def alerts(slack: FakeSlack) -> list[str]:
    return [m["text"] for m in in_ops(slack) if (m.get("text") or "").startswith("❌ Scheduled runbook")]


async def test_a_scheduled_runbook_runs_at_its_time_with_its_values_and_its_message_is_in_the_ops_channel(
        ctx: Context, slack: FakeSlack, recorder: Recorder) -> None:
    await at_two(ctx)
    assert recorder.calls == [("/maintenance/on", None), ("/vacuum", {"keep_days": 30, "mode": "analyze"}),
                              ("/maintenance/off", None)]
    [run] = await ctx.store.actions(service="db")
    assert (run.kind, run.state, run.requested_by) == (ActionKind.RUNBOOK, ActionState.SUCCEEDED, SCHEDULER)
    assert run.params["values"] == {"keep_days": 30, "mode": "analyze"} and run.params["schedule"] == DUE
    assert run.approvals_needed == 0 and run.reason == f"scheduled ({DUE})"
    assert [s.state for s in run.steps] == [StepState.SUCCEEDED] * 3
    # The message that follows the steps is in the ops channel, and shows the finished run.
    assert (run.channel_id, run.message_ts) != (None, None) and run.channel_id == OPS
    message = slack.messages[(OPS, run.message_ts)]
    assert "weekly-db-maintenance" in message["text"] and "the schedule" in str(message["blocks"])
    assert alerts(slack) == []
    [occurrence] = await ctx.store.occurrences("runbook:weekly-db-maintenance")
    assert (occurrence.state, occurrence.detail.startswith(f"run #{run.id}: ")) == (OccurrenceState.DONE, True)
    # Approved by the catalog, as scheduled backups are: the audit says so.
    audit = [e for e in await ctx.store.audit_entries(limit=50) if e.kind == "action" and e.args == f"#{run.id} approved"]
    assert [e.detail for e in audit] == ["by the catalog's schedule"] and audit[0].actor_id is None


async def test_a_failing_step_is_undone_and_the_failure_is_alerted(ctx: Context, slack: FakeSlack, recorder: Recorder) -> None:
    recorder.failing = True
    await at_two(ctx)
    # Maintenance was turned on, the vacuum failed, and the undo turned maintenance off again; step 3 never ran.
    assert [path for path, _ in recorder.calls] == ["/maintenance/on", "/vacuum", "/maintenance/off"]
    [run] = await ctx.store.actions(service="db")
    assert run.state is ActionState.FAILED
    assert [s.state for s in run.steps[:3]] == [StepState.UNDONE, StepState.FAILED, StepState.SKIPPED]
    assert "put back as before the run" in (run.target_state or "")
    [occurrence] = await ctx.store.occurrences("runbook:weekly-db-maintenance")
    assert occurrence.state is OccurrenceState.FAILED and f"runbook run #{run.id}" in occurrence.detail
    [alert] = alerts(slack)
    assert alert.startswith("❌ Scheduled runbook weekly-db-maintenance (due 2026-11-29 02:00 UTC) failed: runbook run #")
    assert "409" in alert


async def test_a_busy_service_is_alerted_and_nothing_runs(ctx: Context, slack: FakeSlack, recorder: Recorder) -> None:
    lease = await ctx.locks.acquire("service:db", 60)  # another replica's run holds the database
    assert lease is not None
    await at_two(ctx)
    await lease.release()
    assert recorder.calls == []
    [run] = await ctx.store.actions(service="db")
    assert run.state is ActionState.FAILED and run.target_state == "untouched: nothing ran"
    [alert] = alerts(slack)
    assert "Not run: another action is running on `db`" in alert


async def test_a_run_under_way_on_the_service_refuses_the_plan_and_is_alerted(ctx: Context, slack: FakeSlack,
                                                                               recorder: Recorder) -> None:
    from bot.runs import runbook_plans

    # Someone's own run of it, approved and about to start, holds the service when the schedule comes.
    mine = await runbook_plans.plan(ctx, "weekly-db-maintenance", {"keep_days": "7"}, requested_by="U0ALICE", channel_id=OPS)
    assert await ctx.store.transition_action(mine.id or 0, ActionState.APPROVED, expect={ActionState.DRAFT},
                                             heartbeat_at=ctx.clock.now())
    await at_two(ctx)
    assert recorder.calls == []
    assert [r.id for r in await ctx.store.actions(service="db")] == [mine.id]  # no second run was created
    [alert] = alerts(slack)
    assert "failed: not run: " in alert and f"#{mine.id}" in alert and "under way on `db`" in alert


async def test_a_persons_follow_up_of_an_interrupted_scheduled_run_needs_the_runbooks_approvals(
        ctx: Context, recorder: Recorder) -> None:
    from bot.runs import follow_ups

    await at_two(ctx)
    [run] = await ctx.store.actions(service="db")
    assert run.approvals_needed == 0
    # As if opsbot had stopped mid-run (a finished run cannot become interrupted, so the same run stored so): the
    # schedule approved that run, not whatever a person resumes later.
    stopped = await ctx.store.create_action(replace(run, id=None, state=ActionState.INTERRUPTED))
    follow_up = await follow_ups.follow_up(ctx, stopped, "U0ALICE", "resume")
    assert follow_up.requested_by == "U0ALICE" and follow_up.approvals_needed == 1


async def test_schedule_lists_the_runbook_with_its_next_run_and_last_result(ctx: Context, recorder: Recorder) -> None:
    before = {line.title: line for line in await schedule_lines(ctx)}
    line = before["Runbook weekly-db-maintenance with keep_days=30"]
    assert line.next_at == datetime(2026, 11, 29, 2, tzinfo=UTC) and line.where == f"→ <#{OPS}>"
    assert line.last is None
    await at_two(ctx)
    [line] = [line for line in await schedule_lines(ctx) if line.title.startswith("Runbook")]
    assert line.next_at == datetime(2026, 12, 6, 2, tzinfo=UTC)
    assert line.last is not None and line.last.state is OccurrenceState.DONE
    text = str(schedule_message(await schedule_lines(ctx), 30).blocks)
    assert "Runbook weekly-db-maintenance" in text and "`0 2 * * 0` (UTC)" in text and "done" in text


@pytest.mark.parametrize(("values", "path", "message"), [
    ("{keep_days: 365}", "runbooks.weekly-db-maintenance.schedule_values.keep_days",
     "'365' is not a whole number from 1 to 90"),
    ("{keep_days: 30, mode: quick}", "runbooks.weekly-db-maintenance.schedule_values.mode",
     "'quick' is not one of `analyze`, `full`"),
    ("{keep_days: 30, days: 3}", "runbooks.weekly-db-maintenance.schedule_values.days",
     "is not a parameter of this runbook (parameters: `keep_days`, `mode`)"),
    ("{mode: full}", "runbooks.weekly-db-maintenance.schedule_values",
     "`keep_days` is required and has no default: give it a value here (a whole number from 1 to 90)"),
    ("{keep_days: 30, mode: yes}", "runbooks.weekly-db-maintenance.schedule_values",
     "YAML read True as a boolean; quote the value"),
])
def test_bad_schedule_values_refuse_the_catalog_at_their_path(values: str, path: str, message: str) -> None:
    with pytest.raises(CatalogInvalid) as caught:
        parse_catalog(catalog("http://127.0.0.1:9", schedule_values=values))
    rendered = caught.value.render("catalog.yml") if hasattr(caught.value, "render") else str(caught.value)
    assert path in str(caught.value) and message in str(caught.value), rendered


def test_a_scheduled_runbook_needs_the_ops_channel_and_values_need_a_schedule() -> None:
    with pytest.raises(CatalogInvalid) as caught:
        parse_catalog(catalog("http://127.0.0.1:9", channel=""))
    assert "runbooks.weekly-db-maintenance.schedule" in str(caught.value)
    assert "set `schedules.channel`" in str(caught.value)
    unscheduled = catalog("http://127.0.0.1:9").replace('    schedule: {cron: "0 2 * * 0", timezone: UTC}\n', "")
    with pytest.raises(CatalogInvalid) as caught:
        parse_catalog(unscheduled)
    assert "runbooks.weekly-db-maintenance.schedule_values: has no `schedule:`" in str(caught.value)


def test_a_bad_cron_is_refused_at_its_path() -> None:
    bad = catalog("http://127.0.0.1:9").replace('"0 2 * * 0"', '"0 2 * *"')
    with pytest.raises(CatalogInvalid) as caught:
        parse_catalog(bad)
    assert "runbooks.weekly-db-maintenance.schedule" in str(caught.value) and "has 4 fields" in str(caught.value)


def test_check_config_warns_when_a_scheduled_runbook_starts_with_its_services_scheduled_backup(tmp_path: Path) -> None:
    text = catalog("http://127.0.0.1:9").replace(
        "    maintenance:", f'    backup: {{type: directory, paths: ["{tmp_path}/data"], directory: "{tmp_path}/backups", '
                            f'schedule: "0 2 * * *"}}\n'
                           "    maintenance:")
    assert catalog_warnings(parse_catalog(text)) == [(
        "runbooks.weekly-db-maintenance.schedule: starts at the same time as services.db.backup.schedule (e.g. Sun "
        "2026-01-04 02:00 UTC): one of the two finds db busy and fails; start one after the other has had time to "
        "finish")]
    assert catalog_warnings(parse_catalog(text.replace('"0 2 * * 0"', '"0 3 * * 0"'))) == []
    # A second scheduled runbook on db, on the first of the month at 02:00: it meets the weekly one on a Sunday the 1st.
    monthly = text.replace('"0 2 * * *"}', '"0 1 * * *"}') + """
  monthly-db-cleanup:
    services: [db]
    schedule: "0 2 1 * *"
    steps: [{kind: http, url: "http://127.0.0.1:9/cleanup"}]
"""
    assert catalog_warnings(parse_catalog(monthly)) == [(
        "runbooks.weekly-db-maintenance.schedule: starts at the same time as runbooks.monthly-db-cleanup.schedule "
        "(e.g. Sun 2026-02-01 02:00 UTC): one of the two finds db busy and fails; start one after the other has had "
        "time to finish")]
