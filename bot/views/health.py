"""The `/ops health` report: a header with the overall status, a line per service and check, when and how long.

A catalog too large for one message collapses into a summary plus the services that need attention.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass

from slack_sdk.models.blocks import (
    ActionsBlock,
    Block,
    ButtonElement,
    ContextBlock,
    HeaderBlock,
    MarkdownTextObject,
    Option,
    OverflowMenuElement,
    SectionBlock,
)

from bot.checks import Status
from bot.checks.last_errors import LastErrors, errors_key
from bot.health import CheckResult, HealthRun
from bot.views import MAX_BLOCKS, MAX_HEADER_TEXT, MAX_SECTION_TEXT, Message, clip, escape
from bot.views.common import timestamp
from bot.views.offers import declare_button
from bot.views.runbooks import OFFER_ACTION
from bot.views.words import plural, seconds

RERUN_ACTION = "health.rerun"
RESTART_ACTION = "health.restart"
MORE_ACTION = "health.more"  # a failing line's menu: `restart:<service>`, `runbook:<name>` or `errors:<key>`
ERRORS_ACTION = "health.errors"  # "Last errors" of a failing log-errors check: value `errors_key(service, label)`
LOG_ERRORS = "log-errors"
MAX_MENU = 5  # options Slack allows in an overflow menu

EMOJI = {Status.OK: "✅", Status.WARNING: "⚠️", Status.CRITICAL: "❌", Status.ERROR: "❌"}

# Blocks around the service lines: header, context and actions.
_FRAME_BLOCKS = 3


def health_report(run: HealthRun, *, rerunning_by: str | None = None, restartable: Collection[str] = (),
                  offers: Mapping[str, Sequence[str]] | None = None) -> Message:
    """Render a stored run. `rerunning_by` swaps the Re-run button for a "re-running" note; failing services
    in `restartable` (those with a restart target) get a Restart button, and those with runbooks in `offers`
    a menu of them."""
    actions = _Actions(restartable, offers or {})
    grouped = run.by_service()
    statuses = {name: Status.worst([r.status for r in results]) for name, results in grouped.items()}
    headline = _headline(statuses)

    sections: list[Block]
    if len(grouped) + _FRAME_BLOCKS <= MAX_BLOCKS:
        # Failing first: at 3 a.m. the reader is looking for what is broken.
        order = sorted(grouped, key=lambda name: (-statuses[name].rank, name))
        sections = [_service_section(name, grouped[name], actions) for name in order]
    else:
        sections = _collapsed(grouped, statuses, actions)

    blocks: list[Block] = [HeaderBlock(text=clip(headline, MAX_HEADER_TEXT))]
    blocks += sections
    blocks.append(ContextBlock(elements=[MarkdownTextObject(text=_context_line(run))]))
    if rerunning_by:
        blocks.append(ContextBlock(elements=[MarkdownTextObject(text=f"⏳ Re-running for <@{rerunning_by}>…")]))
    elif run.id is not None:
        buttons = [ButtonElement(text="Re-run", action_id=RERUN_ACTION, value=str(run.id))]
        if any(status.failing for status in statuses.values()):
            buttons.append(declare_button(f"health:{run.id}"))
        blocks.append(ActionsBlock(block_id="health.actions", elements=buttons))
    return Message.of(_fallback(headline, statuses), blocks)


def _headline(statuses: dict[str, Status]) -> str:
    total = len(statuses)
    if total == 0:
        return "ℹ️ No services to check"
    failing = sum(1 for status in statuses.values() if status.failing)
    degraded = sum(1 for status in statuses.values() if status is Status.WARNING)
    noun = "service" if total == 1 else "services"
    if failing:
        warn = f", {degraded} degraded" if degraded else ""
        return f"❌ {failing} of {total} {noun} failing{warn}"
    if degraded:
        return f"⚠️ {degraded} of {total} {noun} degraded"
    return f"✅ All {total} {noun} healthy"


def _fallback(headline: str, statuses: dict[str, Status]) -> str:
    bad = [name for name, status in statuses.items() if status is not Status.OK]
    return f"Health: {headline[2:].strip()}" + (f" ({', '.join(bad)})" if bad else "")


@dataclass(frozen=True)
class _Actions:
    """What a failing service's line offers: Restart, and the runbooks its catalog entry names."""

    restartable: Collection[str]
    offers: Mapping[str, Sequence[str]]

    def accessory(self, name: str, errors: Sequence[str] = ()) -> ButtonElement | OverflowMenuElement | None:
        """`errors` are the labels of the service's failing log-errors checks: each offers its "Last errors"."""
        restart = name in self.restartable
        errors = list(errors)[:2]
        runbooks = list(self.offers.get(name, ()))[:min(4, MAX_MENU - restart - len(errors))]
        if len(runbooks) + len(errors) + restart == 1:
            if restart:
                return ButtonElement(text="Restart", action_id=RESTART_ACTION, value=name)
            if runbooks:
                return ButtonElement(text=clip(f"Run {runbooks[0]}…", 75), action_id=OFFER_ACTION, value=runbooks[0])
            return ButtonElement(text="Last errors", action_id=ERRORS_ACTION, value=errors_key(name, errors[0]))
        if not (runbooks or errors or restart):
            return None
        options = ([Option(text="Restart…", value=f"restart:{name}")] if restart else []) + [
            Option(text=clip("Last errors" + (f": {label}" if len(errors) > 1 else ""), 75),
                   value=f"errors:{errors_key(name, label)}") for label in errors] + [
            Option(text=clip(f"Run {runbook}…", 75), value=f"runbook:{runbook}") for runbook in runbooks]
        return OverflowMenuElement(action_id=MORE_ACTION, options=options)


def _service_section(name: str, results: list[CheckResult], actions: _Actions) -> SectionBlock:
    status = Status.worst([r.status for r in results])
    environment = results[0].environment if results else ""
    title = f"{EMOJI[status]} *{name}*" + (f"  ·  _{escape(environment)}_" if environment else "")
    if not results:
        return SectionBlock(text=f"➖ *{name}*\n_no checks configured_")
    lines = [_check_line(result) for result in results]
    errors = [r.check for r in results if r.kind == LOG_ERRORS and r.status.failing]
    accessory = actions.accessory(name, errors) if status.failing else None
    return SectionBlock(text=fit_lines([title, *lines], MAX_SECTION_TEXT), accessory=accessory)


def _check_line(result: CheckResult) -> str:
    return (
        f"{EMOJI[result.status]} `{escape(result.check)}` {escape(result.reason)}"
        f"  ·  {_latency(result.latency_ms)}"
    )


def _latency(ms: float) -> str:
    return f"{ms:.0f} ms" if ms < 10_000 else f"{ms / 1000:.1f} s"


def fit_lines(lines: list[str], limit: int) -> str:
    """Join lines, dropping the tail (with a count) when they would pass Slack's section limit."""
    kept: list[str] = []
    for index, line in enumerate(lines):
        rest = len(lines) - index
        line = clip(line, limit // 2)
        candidate = "\n".join([*kept, line])
        if rest == 1 and len(candidate) <= limit:
            kept.append(line)
            break
        if len(candidate) + len(f"\n…and {rest} more") > limit:
            kept.append(f"…and {rest} more")
            return "\n".join(kept)
        kept.append(line)
    return "\n".join(kept)


def _collapsed(grouped: dict[str, list[CheckResult]], statuses: dict[str, Status], actions: _Actions) -> list[Block]:
    counts = {status: sum(1 for s in statuses.values() if s is status) for status in Status}
    summary = (
        f"*{len(statuses)} services*: {counts[Status.OK]} ✅ healthy · {counts[Status.WARNING]} ⚠️ degraded · "
        f"{counts[Status.CRITICAL] + counts[Status.ERROR]} ❌ failing"
    )
    attention = sorted(
        (name for name, status in statuses.items() if status is not Status.OK),
        key=lambda name: (-statuses[name].rank, name),
    )
    healthy = [name for name, status in statuses.items() if status is Status.OK]
    # The frame, the summary, and the healthy list when there is one; a note if some must be left out.
    room = MAX_BLOCKS - _FRAME_BLOCKS - 1 - (1 if healthy else 0)
    if len(attention) > room:
        room -= 1
    shown, hidden = attention[:room], attention[room:]
    blocks: list[Block] = [SectionBlock(text=summary)]
    blocks += [_service_section(name, [r for r in grouped[name] if r.status is not Status.OK], actions) for name in shown]
    if healthy:
        blocks.append(SectionBlock(text=fit_lines(["✅ *Healthy:* " + ", ".join(healthy)], MAX_SECTION_TEXT)))
    if hidden:
        blocks.append(
            ContextBlock(
                elements=[MarkdownTextObject(text=clip(f"…and {len(hidden)} more needing attention: " + ", ".join(hidden), 3000))]
            )
        )
    return blocks


def _context_line(run: HealthRun) -> str:
    checks = len(run.results)
    services = len(run.services)
    who = f"  ·  by <@{run.requested_by}>" if run.requested_by else ""
    return (
        f"🕐 {timestamp(run.finished_at)}  ·  {plural(checks, 'check')} on {plural(services, 'service')} "
        f"in {seconds(run.duration_s)}{who}"
    )


def last_errors_message(found: LastErrors) -> Message:
    """The ephemeral answer to "Last errors": the last matching lines in a code block, newest last."""
    check = found.check
    head = (f"*{found.service}* · `{escape(check.label)}`: {plural(found.matched, 'line')} "
            f"matching /{escape(check.pattern)}/ in the last {check.window()}")
    if found.partial:  # the count is then a lower bound: say so before anyone trusts it
        head = head.replace(f"{found.matched} line", f"at least {found.matched} line", 1) + f" ({escape(found.partial)})"
    if not found.lines:
        return Message.of(head, [SectionBlock(text=clip(head + "; none to show now.", MAX_SECTION_TEXT))])
    # A code block shows the lines as logged; a ``` inside one would end it early.
    lines = [escape(str(line)).replace("```", "`\u200b``") for line in found.lines]
    room = MAX_SECTION_TEXT - len("```\n\n```")
    kept: list[str] = []
    for line in reversed(lines):  # the newest first: what does not fit is the oldest
        line = clip(line, room // 4)
        if len("\n".join([line, *kept])) > room:
            break
        kept.insert(0, line)
    head += f"; the last {len(kept)}:" if found.matched > len(kept) else ":"
    return Message.of(head, [SectionBlock(text=clip(head, MAX_SECTION_TEXT)),
                             SectionBlock(text="```\n" + "\n".join(kept) + "\n```")])
