"""An alert group's one Slack message: status, how many fire, each alert with the labels that set it apart, start
times in the reader's time zone beside UTC, links, who acknowledged or silenced it (or asked to, awaiting approval),
the result of the run started from it, health lines, and its buttons.

Pure rendering. What the buttons do is bot/alerts/service.py; the values they carry are the group's id.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from slack_sdk.models.blocks import ActionsBlock, Block, ButtonElement, ContextBlock, MarkdownTextObject, SectionBlock

from bot.alerts.models import AlertGroup, SilenceRequest, StoredAlert
from bot.alerts.payloads import Alert, AlertStatus
from bot.health import HealthRun
from bot.incidents.models import Incident
from bot.runs.models import ActionState
from bot.views import MAX_SECTION_TEXT, Message, clip, escape
from bot.views.alert_silences import pending_line
from bot.views.common import timestamp
from bot.views.incidents import RESOLVE
from bot.views.words import duration, plural

ACK_ACTION = "alert.ack"
SILENCE_ACTIONS = {"alert.silence.1h": 1, "alert.silence.4h": 4}  # action id → hours
SILENCE_UNTIL_ACTION = "alert.silence.until"  # opens the "Silence until…" form
UNSILENCE_ACTION = "alert.unsilence"
HEALTH_ACTION = "alert.health"
RUN_ACTION = "alert.run"
DECLARE_ACTION = "alert.declare"

SHOWN_ALERTS = 20  # one section each; the rest are counted (a message takes 50 blocks)


def alert_message(group: AlertGroup, alerts: Sequence[StoredAlert], *, health: HealthRun | None = None,
                  waiting: SilenceRequest | None = None, now: datetime | None = None,
                  silence_max: timedelta | None = None) -> Message:
    """`waiting`: the group's silence request still open (awaiting approval, or being made). `now`: a silence whose
    end has passed shows as ended, and Silence is offered again; `silence_max`: the hour buttons longer than it are
    left out."""
    silenced = group.silenced_at(now) if now is not None else group.silence_id is not None
    firing = [s.alert for s in alerts if s.alert.status is AlertStatus.FIRING]
    name = group_name(group, [s.alert for s in alerts])
    if firing:
        head = f":rotating_light: *FIRING* · *{escape(name)}* · {len(firing)} of {plural(len(alerts), 'alert')} firing"
        text = f"FIRING: {name} ({len(firing)} of {len(alerts)} firing)"
    else:
        head = f":white_check_mark: *RESOLVED* · *{escape(name)}* · all {plural(len(alerts), 'alert')} resolved"
        text = f"RESOLVED: {name}"
    about = [f"since {timestamp(group.first_starts_at)}", f"from {group.source.value}"]
    if group.flaps:
        about.append(f":repeat: fired again {plural(group.flaps, 'time')} after resolving (flapping)")
    if group.service:
        about.append(f"service *{escape(group.service)}*")
    if group.route_index is None:
        labels = _labels(group.group_labels or _shared(alerts)) or "none"
        about.append(f"unrouted · labels {labels}")
    blocks: list[Block] = [SectionBlock(text=clip(head, MAX_SECTION_TEXT)),
                           ContextBlock(elements=[MarkdownTextObject(text=clip(" · ".join(about), MAX_SECTION_TEXT))])]
    shared = _shared(alerts)
    for stored in alerts[:SHOWN_ALERTS]:
        blocks.append(SectionBlock(text=clip(_alert_line(stored.alert, shared), MAX_SECTION_TEXT)))
    if len(alerts) > SHOWN_ALERTS:
        blocks.append(ContextBlock(elements=[MarkdownTextObject(text=f"… and {len(alerts) - SHOWN_ALERTS} more")]))
    blocks += _state(group, health, waiting, silenced=silenced)
    buttons = _buttons(group, firing=bool(firing), waiting=waiting is not None, silenced=silenced,
                       silence_max=silence_max)
    blocks.append(ActionsBlock(block_id="alert.actions", elements=buttons))
    return Message.of(text, blocks)


def group_name(group: AlertGroup, alerts: Sequence[Alert]) -> str:
    """The group's alertname, else the names of its alerts."""
    names = sorted({alert.name for alert in alerts})
    if group.group_labels.get("alertname"):
        return group.group_labels["alertname"]
    return ", ".join(names[:3]) + (f" and {len(names) - 3} more" if len(names) > 3 else "") if names else "alerts"


def _shared(alerts: Sequence[StoredAlert]) -> dict[str, str]:
    """The labels every alert of the group has with the same value: said once, not on every line."""
    if not alerts:
        return {}
    first = alerts[0].alert.labels
    return {k: v for k, v in first.items() if all(s.alert.labels.get(k) == v for s in alerts[1:])}


def _labels(labels: dict[str, str]) -> str:
    return " ".join(f"`{escape(k)}={escape(v)}`" for k, v in sorted(labels.items()))


def _alert_line(alert: Alert, shared: dict[str, str]) -> str:
    differing = {k: v for k, v in alert.labels.items() if shared.get(k) != v and k != "alertname"}
    if alert.status is AlertStatus.FIRING:
        line = f":red_circle: *{escape(alert.summary)}*"
        when = f"started {timestamp(alert.starts_at)}"
    else:
        line = f":white_check_mark: ~{escape(alert.summary)}~ resolved"
        lasted = alert.ends_at - alert.starts_at if alert.ends_at else None
        when = f"started {timestamp(alert.starts_at)}, lasted {duration(lasted)}"
    parts = [line, when]
    if differing:
        parts.append(_labels(differing))
    if alert.links:
        parts.append(" · ".join(f"<{url}|{label}>" for label, url in alert.links))
    return "\n".join(parts)


def _state(group: AlertGroup, health: HealthRun | None, waiting: SilenceRequest | None, *,
           silenced: bool) -> list[Block]:
    lines = []
    if group.acked_by:
        at = f" at {timestamp(group.acked_at)}" if group.acked_at else ""
        lines.append(f":eyes: Acknowledged by <@{group.acked_by}>{at}")
    if group.silence_id and silenced:
        until = f" until {timestamp(group.silenced_until)}" if group.silenced_until else ""
        lines.append(f":no_bell: Silenced by <@{group.silenced_by}>{until} (silence `{escape(group.silence_id)}`)")
    elif group.silence_id and group.silenced_until is not None:
        lines.append(f":bell: The silence by <@{group.silenced_by}> ended {timestamp(group.silenced_until)}")
    if not silenced and waiting is not None:
        lines.append(pending_line(waiting))
    if group.incident_id:
        lines.append(f":rotating_light: Incident INC-{group.incident_id} declared from this alert")
    if group.run_id:
        lines.append(_run_line(group))
    if group.runbook and group.run_problem:
        lines.append(f":no_entry_sign: Run `{escape(group.runbook)}` is unavailable: {escape(group.run_problem)}")
    if health is not None:
        failing = [r for r in health.results if r.status.failing]
        if not health.results:
            lines.append(f":grey_question: Health of *{escape(group.service or '')}*: it has no checks")
        elif failing:
            lines.append(f":red_circle: Health: {len(failing)} of {plural(len(health.results), 'check')} failing")
            lines += [f"• `{escape(r.check)}` {r.status.value}: {escape(r.reason)}" for r in failing[:10]]
        else:
            lines.append(f":large_green_circle: Health: all {plural(len(health.results), 'check')} pass")
    if not lines:
        return []
    return [ContextBlock(elements=[MarkdownTextObject(text=clip("\n".join(lines), MAX_SECTION_TEXT))])]


def _run_line(group: AlertGroup) -> str:
    """The run started from the Run button: planned (or under way), then how it ended, linked to its message."""
    run = f"Run #{group.run_id} of `{escape(group.runbook or '')}`"
    if group.run_state is None:
        return f":arrow_forward: {run} planned from this alert"
    shown = f"<{group.run_link}|{run}>" if group.run_link else run
    mark = ":white_check_mark:" if group.run_state == ActionState.SUCCEEDED.value else ":x:"
    ending = f": {group.run_ending}" if group.run_ending else ""
    return f"{mark} {shown} {escape(group.run_state)}{ending}"


def _buttons(group: AlertGroup, *, firing: bool, waiting: bool, silenced: bool,
             silence_max: timedelta | None) -> list[ButtonElement]:
    value = str(group.id)
    buttons = []
    if not group.acked_by and firing:
        buttons.append(ButtonElement(text="Acknowledge", action_id=ACK_ACTION, value=value, style="primary"))
    if silenced:
        buttons.append(ButtonElement(text="Unsilence", action_id=UNSILENCE_ACTION, value=value))
    elif firing and not waiting:  # a silence awaiting approval is decided on its own request first
        buttons += [ButtonElement(text=f"Silence {hours} h", action_id=action, value=value)
                    for action, hours in SILENCE_ACTIONS.items()
                    if silence_max is None or timedelta(hours=hours) <= silence_max]
        buttons.append(ButtonElement(text="Silence until…", action_id=SILENCE_UNTIL_ACTION, value=value))
    if group.service:
        buttons.append(ButtonElement(text="Health check", action_id=HEALTH_ACTION, value=value))
    if group.runbook and not group.run_problem:
        buttons.append(ButtonElement(text=clip(f"Run {group.runbook}", 75), action_id=RUN_ACTION, value=value))
    if group.incident_id is None:
        buttons.append(ButtonElement(text="Declare incident…", action_id=DECLARE_ACTION, value=value))
    return buttons


def resolve_offer(incident: Incident, name: str) -> Message:
    """Posted in a linked incident's channel when every alert of its group resolved: the people decide."""
    text = f"Every alert of {name} resolved. Resolve {incident.key}?"
    return Message.of(text, [
        SectionBlock(text=clip(f":white_check_mark: Every alert of *{escape(name)}* resolved. "
                               f"Resolve *{incident.key}*?", MAX_SECTION_TEXT)),
        ActionsBlock(block_id="alert.resolve_offer", elements=[
            ButtonElement(text="Resolve the incident?", action_id=RESOLVE, value=str(incident.id), style="primary")]),
    ])


def firing_list(groups: Sequence[AlertGroup], links: dict[int, str]) -> Message:
    """`/ops alerts`: the groups firing now, each with a link to its message (`links`: group id → permalink)."""
    if not groups:
        return Message.of("No alerts are firing.", [SectionBlock(text=":white_check_mark: No alerts are firing.")])
    lines = []
    for group in groups[:40]:
        label = escape(group.group_labels.get("alertname") or group.group_key)
        shown = f"<{links[group.id]}|{label}>" if group.id in links else f"*{label}*"
        state = [f"since {timestamp(group.first_starts_at)}"]
        if group.service:
            state.append(f"service *{escape(group.service)}*")
        state.append(f"acknowledged by <@{group.acked_by}>" if group.acked_by else "not acknowledged")
        if group.incident_id:
            state.append(f"INC-{group.incident_id}")
        lines.append(f":rotating_light: {shown} · " + " · ".join(state))
    if len(groups) > 40:
        lines.append(f"… and {len(groups) - 40} more")
    head = f"{plural(len(groups), 'alert group')} firing"
    return Message.of(head, [SectionBlock(text=f"*{head}*"),
                             SectionBlock(text=clip("\n".join(lines), MAX_SECTION_TEXT))])
