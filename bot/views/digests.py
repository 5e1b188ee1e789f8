"""Block Kit for the daily and weekly digests. Pure: digest values in, a message out.

The lines a lead must not miss come first in each section: failing services, stale backups, P1s.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from slack_sdk.models.blocks import Block, ContextBlock, DividerBlock, HeaderBlock, MarkdownTextObject, SectionBlock

from bot.checks import Status
from bot.digests import AlertFacts, BackupFacts, DailyDigest, IncidentFacts, Rate, WeeklyDigest
from bot.incidents.metrics import as_utc, format_duration
from bot.incidents.settings import IncidentSettings
from bot.runs.models import ActionState
from bot.views import MAX_HEADER_TEXT, MAX_SECTION_TEXT, Message, clip, escape, human_size
from bot.views.common import timestamp
from bot.views.health import EMOJI, fit_lines
from bot.views.incidents import label, severity_label
from bot.views.runs import describe
from bot.views.words import age, plural

_RUN = {ActionState.SUCCEEDED: "✅", ActionState.FAILED: "❌", ActionState.INTERRUPTED: "⚠️"}


def digest_message(digest: DailyDigest | WeeklyDigest, incidents: IncidentSettings, *, preview: bool = False) -> Message:
    if isinstance(digest, DailyDigest):
        return daily_message(digest, incidents, preview=preview)
    return weekly_message(digest, incidents, preview=preview)


def daily_message(digest: DailyDigest, incidents: IncidentSettings, *, preview: bool = False) -> Message:
    health_line, health_detail = _health(digest)
    blocks: list[Block] = [
        HeaderBlock(text=clip(f"Daily digest · {_local(digest.until, digest.zone):%a %d %b %Y}", MAX_HEADER_TEXT)),
        _context(f"The 24 hours to {timestamp(digest.until)}" + (" · preview, posted only to you" if preview else "")),
        _section(f"*Health* — {health_line}", health_detail),
        _section(*_open_incidents(digest, incidents)),
        _section(*_incident_window(digest, incidents)),
        *([_section(*_alerts(digest.alerts))] if digest.alerts is not None else []),
        _section(*_runs(digest)),
        _section(*_pending(digest)),
        _section(*_backups(digest.backups)),
        DividerBlock(),
        _context("`/ops digest daily` shows this now · `/ops schedule` lists the schedules"),
    ]
    stale = sum(1 for b in digest.backups if b.stale)
    text = (f"Daily digest: {health_line}; {plural(len(digest.open_incidents), 'open incident')}; "
            f"{plural(len(digest.runs), 'action run')}; {plural(len(digest.pending), 'pending approval')}"
            + (f"; {plural(stale, 'stale backup')}" if stale else ""))
    return Message.of(text, blocks)


def weekly_message(digest: WeeklyDigest, incidents: IncidentSettings, *, preview: bool = False) -> Message:
    counts = " · ".join(f"{severity_label(name, incidents)}: {count}" for name, count in digest.incidents_by_severity.items())
    total = sum(digest.incidents_by_severity.values())
    incident_lines = [f"{counts} ({total} in all)" if total else "No incidents declared this week. 🎉",
                      (f"Mean time to acknowledge {format_duration(digest.mean_acknowledge)} · "
                       f"to resolve {format_duration(digest.mean_resolve)}")]
    blocks: list[Block] = [
        HeaderBlock(text=clip(f"Weekly digest · {_local(digest.since, digest.zone):%d %b} – "
                              f"{_local(digest.until, digest.zone):%d %b %Y}", MAX_HEADER_TEXT)),
        _context(f"The 7 days to {timestamp(digest.until)}" + (" · preview, posted only to you" if preview else "")),
        _section("*Incidents*", incident_lines),
        _section("*Actions*", [f"Restarts, rollbacks and restores: {_rate(digest.actions)}",
                               f"Runbook runs: {_rate(digest.runbook_runs)}",
                               f"Backup runs: {_rate(digest.backup_runs)}"]),
        _section(*_check_trends(digest)),
        _section(*_backups(digest.backups)),
        DividerBlock(),
        _context("`/ops digest weekly` shows this now · `/ops schedule` lists the schedules"),
    ]
    text = (f"Weekly digest: {plural(total, 'incident')}; actions {_rate(digest.actions)}; "
            f"runbooks {_rate(digest.runbook_runs)}; backups {_rate(digest.backup_runs)}")
    return Message.of(text, blocks)


# --- sections ----------------------------------------------------------------------------------------


def _health(digest: DailyDigest) -> tuple[str, list[str]]:
    grouped = digest.health.by_service()
    if not grouped:
        return "no services in the catalog", []
    statuses = {name: Status.worst([r.status for r in results]) for name, results in grouped.items()}
    bad = sorted((name for name, status in statuses.items() if status is not Status.OK),
                 key=lambda name: (-statuses[name].rank, name))
    lines = []
    for name in bad:
        reasons = "; ".join(f"`{escape(r.check)}` {escape(r.reason)}" for r in grouped[name] if r.status is not Status.OK)
        lines.append(f"{EMOJI[statuses[name]]} *{escape(name)}* — {reasons}")
    healthy = [name for name in sorted(grouped) if statuses[name] is Status.OK]
    if healthy:
        lines.append(f"✅ {len(healthy)} healthy: {', '.join(healthy)}")
    failing = sum(1 for name in bad if statuses[name].failing)
    headline = (f"❌ {failing} of {len(grouped)} services failing" if failing else
                f"⚠️ {len(bad)} of {len(grouped)} services warning" if bad else f"✅ all {len(grouped)} services healthy")
    return headline, lines


def _open_incidents(digest: DailyDigest, incidents: IncidentSettings) -> tuple[str, list[str]]:
    if not digest.open_incidents:
        return "*Open incidents* — none", []
    return f"*Open incidents* — {len(digest.open_incidents)}", [
        f"{_incident(facts, incidents)} · open {format_duration(digest.until - as_utc(facts.incident.declared_at))}"
        f" · commander {f'<@{facts.commander}>' if facts.commander else '_none yet_'}"
        + ("" if facts.incident.acknowledged_at else " · *not acknowledged*")
        for facts in digest.open_incidents
    ]


def _incident_window(digest: DailyDigest, incidents: IncidentSettings) -> tuple[str, list[str]]:
    lines = [f"🆕 {_incident(f, incidents)} · acknowledged in {format_duration(f.metrics.time_to_acknowledge)}"
             for f in digest.opened]
    lines += [f"✅ {_incident(f, incidents)} · resolved in {format_duration(f.metrics.time_to_resolve)}"
              f" (acknowledged in {format_duration(f.metrics.time_to_acknowledge)})" for f in digest.resolved]
    return f"*Incidents in the last 24 h* — {len(digest.opened)} opened, {len(digest.resolved)} resolved", lines


def _alerts(alerts: AlertFacts) -> tuple[str, list[str]]:
    if not alerts.groups:
        return "*Alerts in the last 24 h* — none", []
    top = " · ".join(f"{escape(service)} {count}" for service, count in alerts.top_services)
    return f"*Alerts in the last 24 h* — {plural(alerts.groups, 'alert group')} received", [
        f"Top alerting services: {top}",
        f"Acknowledged {alerts.acknowledged} of {alerts.groups}"
        + (f", in {format_duration(alerts.mean_acknowledge)} on average" if alerts.mean_acknowledge else ""),
    ]


def _incident(facts: IncidentFacts, incidents: IncidentSettings) -> str:
    incident = facts.incident
    where = f"<#{incident.channel_id}>" if incident.channel_id else f"`{incident.key}`"
    return f"{where} *{escape(label(incident, incidents))}* {escape(incident.title)}"


def _runs(digest: DailyDigest) -> tuple[str, list[str]]:
    lines = []
    for facts in digest.runs:
        run = facts.run
        approved = (" · approved by " + ", ".join(f"<@{u}>" for u in facts.approved_by)) if facts.approved_by else (
            " · no approval needed" if run.approvals_needed == 0 else "")
        where = f" · in <#{run.channel_id}>" if run.channel_id else ""
        outcome = "" if run.state is ActionState.SUCCEEDED else f" — {clip(run.outcome, 200)}"
        when = f"{as_utc(run.finished_at):%H:%M} UTC" if run.finished_at else ""
        lines.append(f"{_RUN.get(run.state, '•')} #{run.id} {describe(run)} · by {run.requester}{approved}{where}"
                     f" · {when}{outcome}")
    failed = sum(1 for f in digest.runs if f.run.state is not ActionState.SUCCEEDED)
    title = f"*Actions in the last 24 h* — {plural(len(digest.runs), 'run')}" + (f", {failed} not successful" if failed else "")
    return title, lines


def _pending(digest: DailyDigest) -> tuple[str, list[str]]:
    lines = [f"⏳ #{run.id} {describe(run)} · asked by {run.requester} {format_duration(digest.until - as_utc(run.created_at))} "
             "ago"
             f" · needs {plural(run.approvals_needed, 'approval')}" + (f" · in <#{run.channel_id}>" if run.channel_id else "")
             for run in digest.pending]
    return f"*Waiting for approval* — {len(digest.pending) or 'none'}", lines


def _backups(backups: tuple[BackupFacts, ...]) -> tuple[str, list[str]]:
    if not backups:
        return "*Backups* — no service has a backup target", []
    lines = []
    for facts in backups:
        failures = f" · {plural(facts.failures, 'failed run')}" if facts.failures else ""
        if facts.latest is None:
            lines.append(f"❌ *{escape(facts.service)}* — no verified backup yet{failures}")
            continue
        size = human_size(facts.latest.size)
        if facts.stale:
            lines.append(f"⚠️ *{escape(facts.service)}* — latest verified backup is {age(facts.age or timedelta(0))}, older than "
                         f"{format_duration(facts.max_age)}: take one (`/ops backup {facts.service}`){failures}")
        else:
            lines.append(f"{'⚠️' if facts.failures else '✅'} *{escape(facts.service)}* — latest verified backup "
                         f"`{facts.latest.id}`, {age(facts.age or timedelta(0))}, {size}{failures}")
    stale = sum(1 for b in backups if b.stale)
    return "*Backups*" + (f" — ⚠️ {stale} stale" if stale else " — all fresh"), lines


def _check_trends(digest: WeeklyDigest) -> tuple[str, list[str]]:
    failing = [t for t in digest.checks if t.failing or t.warnings]
    lines = [f"{'❌' if t.failing else '⚠️'} *{escape(t.service)}* — {t.failing} failing and {t.warnings} warning "
             f"of {t.runs} results ({100.0 * t.failing / t.runs:.1f} % failing)" for t in failing]
    quiet = [t.service for t in digest.checks if not (t.failing or t.warnings)]
    if quiet:
        lines.append(f"✅ no failures: {', '.join(quiet)}")
    return "*Health checks*" + ("" if digest.checks else " — no checks ran this week"), lines


def _rate(rate: Rate) -> str:
    if rate.percent is None:
        return "none ran"
    return f"{rate.succeeded} of {rate.finished} succeeded ({rate.percent:.0f} %)"


def _section(title: str, lines: list[str]) -> SectionBlock:
    body = fit_lines([title, *lines], MAX_SECTION_TEXT)
    return SectionBlock(text=body)


def _local(at: datetime, zone: str) -> datetime:
    return at.astimezone(ZoneInfo(zone))


def _context(text: str) -> ContextBlock:
    return ContextBlock(elements=[MarkdownTextObject(text=text)])
