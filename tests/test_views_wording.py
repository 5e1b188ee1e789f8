"""How messages read, rendered without the network: counts, durations and ages; placeholders and channel links;
the incident header's colour; approvals with links and buttons; the Declare incident offers."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bot.checks import Status
from bot.health import CheckResult, HealthRun
from bot.incidents.models import DeclareDraft, Incident, IncidentStatus
from bot.incidents.settings import IncidentSettings
from bot.runs.models import ActionKind, ActionRun, ActionState, ActionStep, BackupRecord, StepState
from bot.views import placeholders
from bot.views.backups import backups_message
from bot.views.common import error_message
from bot.views.health import health_report
from bot.views.help import help_message
from bot.views.incidents import declare_modal, header, incident_list
from bot.views.runs import approvals_message, history_message, run_message
from bot.views.words import age, duration, link_channels, plural, seconds

NOW = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
SETTINGS = IncidentSettings()


def shown(message: object) -> str:
    return json.dumps(getattr(message, "blocks", message), ensure_ascii=False)


@pytest.mark.parametrize(("count", "word", "expected"), [(1, "file", "1 file"), (0, "file", "0 files"), (4, "file", "4 files"),
                                                  (1, "entry", "1 entry"), (2, "entry", "2 entries")])
def test_counts_read_as_people_say_them(count: int, word: str, expected: str) -> None:
    assert plural(count, word, "entries" if word == "entry" else None) == expected


@pytest.mark.parametrize(("value", "expected"), [(0.0, "under 0.1 s"), (0.04, "under 0.1 s"), (2.04, "2.0 s"), (42.4, "42 s"),
                                            (125, "2 min 5 s"), (3 * 3600 + 60, "3 h 1 min")])
def test_durations_never_read_zero(value: float, expected: str) -> None:
    assert seconds(value) == expected


@pytest.mark.parametrize(("delta", "expected"), [
    (timedelta(seconds=20), "under a minute old"), (timedelta(minutes=3), "3 min old"),
    (timedelta(hours=7, minutes=2), "7 h 2 min old"), (timedelta(days=9), "9 d old"),
])
def test_ages_never_read_zero_hours(delta: timedelta, expected: str) -> None:
    assert age(delta) == expected and duration(None) == "—"


def test_placeholders_are_escaped_and_slack_markup_is_kept() -> None:
    text = "`/ops restore <service> <backup-id|latest>` · <@U1> <#C1> <!here> <https://x.example/a|link> <!date^1^{date}|x>"
    assert placeholders(text) == ("`/ops restore &lt;service&gt; &lt;backup-id|latest&gt;` · <@U1> <#C1> <!here> "
                                  "<https://x.example/a|link> <!date^1^{date}|x>")
    assert "&lt;service&gt;" in shown(error_message("Usage: `/ops backups <service>`: name a service."))
    helped = shown(help_message("/ops", [("history [service]", "Recent actions.")], ["api"],
                                notes=["`/incident declare P1 <title>`"]))
    assert "&lt;title&gt;" in helped and "<title>" not in helped


def test_channel_references_become_links_only_after_escaping() -> None:
    assert link_channels("posted to #C0OPS") == "posted to <#C0OPS>"
    assert link_channels("&lt;#C0OPS&gt; and issue #12 and #general") == "&lt;#C0OPS&gt; and issue #12 and #general"


def incident(severity: str, status: IncidentStatus) -> Incident:
    return Incident(title="API is down", severity=severity, declared_by="U1", declared_at=NOW, status=status, id=1)


def test_the_header_colour_follows_severity_and_says_the_status_in_words() -> None:
    raised = header(incident("P1", IncidentStatus.IDENTIFIED), SETTINGS)
    assert raised.blocks[0]["text"]["text"] == "🔴 INC-1 · P1 Critical · Identified: API is down"
    high = header(incident("P2", IncidentStatus.INVESTIGATING), SETTINGS)
    assert high.blocks[0]["text"]["text"].startswith("🟠 INC-1 · P2 High · Investigating")
    assert header(incident("P4", IncidentStatus.MONITORING), SETTINGS).blocks[0]["text"]["text"].startswith("🔵 ")
    assert header(incident("P1", IncidentStatus.RESOLVED), SETTINGS).blocks[0]["text"]["text"].startswith("✅ ")
    assert "🔴 *INC-1* · P1 Critical" in shown(incident_list([incident("P1", IncidentStatus.MONITORING)], SETTINGS))


def run_of(state: ActionState, **extra: object) -> ActionRun:
    fields: dict[str, object] = dict(service="files", kind=ActionKind.BACKUP, environment="production", target="the files",
                                     requested_by="U0ALICE", created_at=NOW, expires_at=NOW + timedelta(minutes=30),
                                     state=state, approvals_needed=1, channel_id="C0OPS", message_ts="1.2", id=7)
    fields.update(extra)
    return ActionRun(**fields)  # type: ignore[arg-type]


def test_pending_approvals_link_to_their_message_and_offer_the_same_buttons() -> None:
    listing = approvals_message([run_of(ActionState.PENDING, reason="disk swap")], {7: "https://x.slack.com/archives/C0OPS/p12"})
    text = shown(listing)
    assert "<https://x.slack.com/archives/C0OPS/p12|#7> *backup files*" in text and "1 approval needed" in text
    buttons = [e for b in listing.blocks if b["type"] == "actions" for e in b["elements"]]
    assert [(b["action_id"], b["value"]) for b in buttons] == [("approval.approve", "7"), ("approval.deny", "7")]
    assert all("confirm" not in b for b in buttons)
    assert "Nothing is waiting for approval." in shown(approvals_message([], {}))


def test_step_times_and_fast_steps_read_once_and_plainly() -> None:
    step = ActionStep(0, "Restore /srv/files", StepState.SUCCEEDED, "1 file", NOW, NOW)
    done = run_of(ActionState.SUCCEEDED, started_at=NOW, finished_at=NOW, outcome="restored", steps=(step,))
    text = shown(run_message(done, []))
    assert "✅ Restore /srv/files — 1 file _(under 0.1 s)_" in text and "*Done in under 0.1 s.*" in text
    assert "0.0 s" not in text


def test_a_failed_run_offers_to_declare_an_incident_and_a_refused_one_does_not() -> None:
    failed = run_of(ActionState.FAILED, started_at=NOW, finished_at=NOW, outcome="disk full", target_state="unchanged")
    [offer] = [e for b in run_message(failed, []).blocks if b["type"] == "actions" for e in b["elements"]]
    assert (offer["action_id"], offer["value"], offer["text"]["text"]) == ("incident.declare.offer", "run:7", "Declare incident…")
    refused = run_of(ActionState.FAILED, outcome="Not run: busy")  # never started: nothing was touched
    assert "incident.declare.offer" not in shown(run_message(refused, []))


def test_a_red_health_report_offers_to_declare_an_incident_and_a_green_one_does_not() -> None:
    def report(status: Status) -> str:
        result = CheckResult("api", "production", "http", "http", status, "HTTP 500", 12.0, NOW)
        return shown(health_report(HealthRun(scope=(), services=("api",), started_at=NOW, finished_at=NOW,
                                             results=(result,), id=3)))
    red = report(Status.CRITICAL)
    assert '"action_id": "incident.declare.offer"' in red and '"value": "health:3"' in red
    assert "incident.declare.offer" not in report(Status.OK) and "incident.declare.offer" not in report(Status.WARNING)
    assert "1 check on 1 service in under 0.1 s" in report(Status.OK)


def test_the_declare_form_is_prefilled_from_a_draft() -> None:
    draft = DeclareDraft(title="api failing: http HTTP 500", severity="P2", services=("api",), description="api · http: HTTP 500")
    view = declare_modal(SETTINGS, ["api", "web"], "C0OPS", draft)
    elements = {b["block_id"]: b["element"] for b in view["blocks"]}
    assert elements["title"]["initial_value"] == draft.title and elements["description"]["initial_value"] == draft.description
    assert elements["severity"]["initial_option"]["value"] == "P2"
    assert [o["value"] for o in elements["services"]["initial_options"]] == ["api"]
    blank = {b["block_id"]: b["element"] for b in declare_modal(SETTINGS, ["api"], None)["blocks"]}
    assert "initial_value" not in blank["title"] and "initial_option" not in blank["severity"]


def test_backup_ages_and_the_restore_hint_read_plainly() -> None:
    records = [BackupRecord("files", "directory", Path("/b/1.tar.gz"), 2048, "0" * 64, NOW - timedelta(minutes=3),
                            verified_at=NOW, id=2)]
    text = shown(backups_message("files", records, NOW))
    assert "3 min old" in text and "0 h old" not in text
    assert "`/ops restore files &lt;id&gt;` (or `latest`)" in text


def test_history_of_every_service_needs_no_service() -> None:
    text = shown(history_message(None, [run_of(ActionState.SUCCEEDED)], []))
    assert "Recent history of every service" in text and "#7 *backup files*" in text
    assert "`/ops history &lt;service&gt;`" in text


def test_an_empty_follow_up_list_shows_its_usage_placeholder() -> None:
    from bot.views.incidents import follow_ups

    [block] = follow_ups(incident("P1", IncidentStatus.INVESTIGATING), []).blocks
    assert '`/incident action "&lt;what&gt;" @owner YYYY-MM-DD`' in block["text"]["text"]
