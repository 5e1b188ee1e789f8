"""What the example-catalog tests share: an example's YAML pointed at the miniature stack a test runs, static
HTTP apps in busybox containers, a clock that can jump ahead, reading a `/ops health` report line by line, a
runbook planned in memory, and a run whose manual steps a person answers through Slack.

Not responsible for any one stack's story (each tests/test_example_<name>.py tells its own) nor for fixtures
that already exist in tests/conftest.py and tests/podman.py.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from bot.catalog import Catalog
from bot.catalog_loading import load_catalog
from bot.cli import main
from bot.clock import SystemClock
from bot.runs import runbook_plans
from bot.runs.models import ActionRun, BackupRecord
from bot.views.manual_steps import DONE_ACTION, button_value, waiting
from playground.payloads import block_action
from tests.run_harness import ALICE, START, Deps
from tests.test_approvals import CHANNEL, ops

if TYPE_CHECKING:
    from docker.models.containers import Container

    from tests.conftest import RunningBot
    from tests.podman import Containers

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"


def example(name: str, replacements: Mapping[str, str]) -> str:
    """examples/<name>.yml with each key replaced by its value (hosts and ports, paths, the Docker socket).

    Every key must occur: when the example changes, the test says which stand-in no longer fits instead of
    quietly testing something else.
    """
    text = (EXAMPLES / f"{name}.yml").read_text(encoding="utf-8")
    missing = [old for old in replacements if old not in text]
    assert not missing, f"examples/{name}.yml no longer contains {missing}: update the test's stand-ins"
    for old, new in replacements.items():
        text = text.replace(old, new)
    return text


@dataclass(frozen=True)
class Checked:
    """What `opsbot check-config` printed and returned."""

    returncode: int
    stdout: str
    stderr: str


def check_config(path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
                 **environ: str) -> Checked:
    """`opsbot check-config PATH` as `python -m bot` runs it (bot.cli.main), in this process: a subprocess would
    only add seconds of interpreter start. Its environment has none of opsbot's settings nor the catalog's
    secrets except `environ` (tests/test_cli.py proves the `opsbot` command itself)."""
    settings = ("SLACK_", "DATABASE_URL", "REDIS_URL", "OPSBOT_", "PORT", "LOG_LEVEL")
    secrets = {env for _, env in load_catalog(path).secret_envs()}
    for name in [name for name in os.environ if name.startswith(settings) or name in secrets]:
        monkeypatch.delenv(name)
    for name, value in environ.items():
        monkeypatch.setenv(name, value)
    capsys.readouterr()
    code = main(["check-config", str(path)])
    out, err = capsys.readouterr()
    return Checked(code, out, err)


class ShiftedClock(SystemClock):
    """The system clock, moved ahead on request: "two days pass" for what reads `now()` (backup ages), while
    sleeps and durations stay real, so executors polling containers keep working."""

    def __init__(self) -> None:
        self.offset = timedelta(0)

    def now(self) -> datetime:
        return datetime.now(UTC) + self.offset

    def jump(self, by: timedelta, *, land_at_hour: int = 5) -> None:
        """Move ahead by at least `by`, landing at an hour of the day no schedule uses (05:xx UTC by default), so
        the scheduler records the jumped-over occurrences as missed instead of catching one up during the test."""
        target = self.now() + by
        self.offset += by + timedelta(hours=(land_at_hour - target.hour) % 24)


def serve_files(root: Path, files: Mapping[str, str]) -> Path:
    """Write a document tree for busybox httpd (`/_stcore/health` → root/_stcore/health); returns root."""
    for path, body in files.items():
        target = root / path.lstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(body, encoding="utf-8")
    return root


def run_app(containers: Containers, image: str, name: str, files: Mapping[str, str], tmp: Path, *,
            labels: Mapping[str, str]) -> tuple[Container, int]:
    """A container answering HTTP with `files` (its /www, mounted read-only) on a free port of the host."""
    port = containers.port()
    www = serve_files(tmp / f"www-{name}", files)
    container = containers.run(containers.name(name), image, port=port, labels=dict(labels),
                               volumes={str(www): {"bind": "/www", "mode": "ro"}})
    return container, port


async def wait_serving(url: str, deadline: float = 20) -> None:
    import urllib.request

    end = time.monotonic() + deadline
    while True:
        try:
            await asyncio.to_thread(lambda: urllib.request.urlopen(url, timeout=1).read())
            return
        except OSError:
            if time.monotonic() > end:
                raise
            await asyncio.sleep(0.1)


@dataclass(frozen=True)
class Line:
    """One check's line of a health report."""

    service: str
    check: str
    emoji: str
    reason: str

    @property
    def red(self) -> bool:
        return self.emoji == "❌"

    @property
    def green(self) -> bool:
        return self.emoji == "✅"


_TITLE = re.compile(r"^(\S+) \*([^*]+)\*")
_CHECK = re.compile(r"^(\S+) `([^`]+)` (.*?)(?:  ·  [\d.]+ m?s)?$")


@dataclass(frozen=True)
class Report:
    headline: str
    lines: list[Line]

    def line(self, service: str, check: str) -> Line:
        found = [line for line in self.lines if line.service == service and line.check == check]
        assert found, f"no `{check}` line for {service} in:\n{self}"
        return found[0]

    def not_green(self) -> list[Line]:
        return [line for line in self.lines if not line.green]

    def __str__(self) -> str:
        return "\n".join([self.headline, *(f"{line.emoji} {line.service} `{line.check}` {line.reason}" for line in self.lines)])


def read_report(message: dict) -> Report:
    """The headline and every check line of a `/ops health` answer."""
    blocks = message.get("blocks", [])
    headline = next((b["text"]["text"] for b in blocks if b["type"] == "header"), json.dumps(message)[:300])
    lines: list[Line] = []
    for block in blocks:
        if block["type"] != "section":
            continue
        rows = block["text"]["text"].split("\n")
        title = _TITLE.match(rows[0])
        if not title:
            continue
        for row in rows[1:]:
            match = _CHECK.match(row)
            if match:
                lines.append(Line(title.group(2), match.group(2), match.group(1), match.group(3)))
    return Report(headline, lines)


async def health(bot: RunningBot, scope: str = "") -> Report:
    return read_report(await ops(bot, f"health {scope}".strip()))


async def health_until(bot: RunningBot, done: object, *, deadline: float = 30, scope: str = "") -> Report:
    """Run `/ops health` until `done(report)` holds; fail with the last report when the deadline passes."""
    end = time.monotonic() + deadline
    while True:
        report = await health(bot, scope)
        if done(report):  # type: ignore[operator]
            return report
        if time.monotonic() > end:
            raise AssertionError(f"the health report never got there within {deadline:g} s; last one:\n{report}")
        await asyncio.sleep(0.5)


def all_green(report: Report) -> bool:
    return report.headline.startswith("✅") and not report.not_green()


# --- a runbook planned in memory --------------------------------------------------------------------------------

MISSING_DOCKER = "unix:///nonexistent/opsbot-test/docker.sock"  # a plan's read-only looks fail at once, and say so


async def plan_runbook(catalog: Catalog, name: str, **given: str) -> ActionRun:
    """`/ops run <name> k=v…` planned in memory (tests/run_harness.py): parameters checked, every step resolved,
    nothing run. Each service with a `backup:` has one verified backup, so `backup=latest` resolves. Read-only looks
    at a target (the image running now) fail and are shown as failed in the plan: no Docker or cluster is here."""
    deps = Deps(catalog=catalog)
    for service, entry in catalog.services.items():
        if entry.backup is not None:
            await deps.store.add_backup(BackupRecord(service, entry.backup.type, Path(f"/backups/{service}-1"), 1024,
                                                     "0" * 64, START, verified_at=START))
    return await runbook_plans.plan(deps, name, dict(given), requested_by=ALICE, channel_id=CHANNEL)


def kinds(run: ActionRun) -> list[str]:
    return [step.kind for step in run.plan]


# --- a run whose manual steps a person answers ------------------------------------------------------------------


async def press(bot: RunningBot, action_id: str, value: str, user: str) -> None:
    """A button pressed through a signed Slack request, not waiting for the work it starts: a run that then waits
    for a person would hold `bot.settle()` until its manual step gave up."""
    body, content_type = block_action(action_id, value, user=user, channel=CHANNEL, response_url=bot.slack.response_url())
    assert (await bot.post(body, content_type)).status == 200


async def answering_done(bot: RunningBot, run_id: int, by: str, *, deadline: float = 120) -> tuple[ActionRun, list[str]]:
    """Until the run ends: each manual step that waits gets Done from `by`, once its buttons are in the run's message.
    Returns the ended run and the titles of the steps answered, in order."""
    answered: dict[int, str] = {}
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        run = await bot.ctx.store.get_action(run_id)
        assert run is not None
        if run.state.final:
            await bot.settle()
            return run, list(answered.values())
        shown = json.dumps([m for m in bot.slack.messages.values() if f"#{run_id} " in json.dumps(m)])
        for position in waiting(run):
            value = button_value(run_id, position)
            if position not in answered and f'"{value}"' in shown and DONE_ACTION in shown:
                answered[position] = run.plan[position].title
                await press(bot, DONE_ACTION, value, by)
        await asyncio.sleep(0.05)
    raise AssertionError(f"run {run_id} did not end within {deadline:g} s (answered: {list(answered.values())})")
