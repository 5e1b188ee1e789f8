"""The demo services `opsbot dev` runs: the page's break switches, and for services whose target is `demo`, an app
with revisions that restart, rollback, deploy and scale really change. Not Docker: state in memory, saved by
`playground.snapshot`; the HTTP endpoints that answer for them are in `playground.dev`."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from bot.catalog import Catalog
from bot.clock import Clock
from bot.executors.base import Effect, ExecutorError, Progress, Revision
from bot.executors.demo import DemoTarget

BAD_TAG = "bad"  # an image whose tag starts with this starts, but its health endpoint fails: a bad release
UNCHANGED = "nothing was changed"
_LOG_LINES = 200


@dataclass
class AppRevision:
    number: int
    image: str
    created_at: datetime


@dataclass
class DemoApp:
    """One demo app: its revisions (oldest first), which one runs, and how many replicas."""

    name: str
    revisions: list[AppRevision]
    current: int
    replicas: int = 1
    starting: bool = False
    log: list[tuple[datetime, str]] = field(default_factory=list)

    @property
    def image(self) -> str:
        return next(r.image for r in self.revisions if r.number == self.current)

    @property
    def version(self) -> str:
        return _tag_of(self.image)

    def say(self, at: datetime, line: str) -> None:
        self.log = [*self.log, (at, line)][-_LOG_LINES:]

    def activate(self, image: str, at: datetime) -> AppRevision:
        """Run `image` as the newest revision; one already in the history moves up (as a Deployment's does)."""
        number = max(r.number for r in self.revisions) + 1
        revision = AppRevision(number, image, at)
        self.revisions = [r for r in self.revisions if r.image != image] + [revision]
        self.current = number
        return revision


class DemoSwitches:
    """The demo services' state: which the page has broken (a crash that a restart clears), and the demo apps.

    Also the `DemoWorkloads` port the composition root hands the bot: `workload()` is a demo target's executor.
    """

    def __init__(self, names: list[str], clock: Clock, *, start_seconds: float = 0.3) -> None:
        self.healthy: dict[str, bool] = dict.fromkeys(names, True)
        self.apps: dict[str, DemoApp] = {}
        self.clock, self.start_seconds = clock, start_seconds

    def add_apps(self, catalog: Catalog) -> None:
        """An app (and a switch) for every service of `catalog` whose target is `demo`."""
        for service in catalog.services.values():
            if isinstance(service.target, DemoTarget):
                self.app(service.target)

    def app(self, target: DemoTarget) -> DemoApp:
        if target.app not in self.apps:
            now = self.clock.now()
            app = DemoApp(target.app, [AppRevision(1, target.image, now)], current=1)
            app.say(now, f"started {target.image}")
            self.apps[target.app] = app
            self.healthy.setdefault(target.app, True)
        return self.apps[target.app]

    def copy(self) -> DemoSwitches:
        twin = DemoSwitches(list(self.healthy), self.clock, start_seconds=self.start_seconds)
        twin.apps = {name: DemoApp(app.name, list(app.revisions), app.current, app.replicas, log=list(app.log))
                     for name, app in self.apps.items()}
        return twin

    def workload(self, service: str, target: DemoTarget) -> DemoAppWorkload:
        return DemoAppWorkload(self, self.app(target))

    def answer(self, name: str) -> tuple[int, dict[str, Any]]:
        """What `/{name}/health` answers: 200 when it runs a good version and nobody broke it, else 503 and why."""
        app = self.apps.get(name)
        version = {"version": app.version} if app else {}
        if not self.healthy.get(name, True):
            return 503, {"status": "down", "reason": "crashed (broken from the page; a restart brings it back)", **version}
        if app is not None:
            if app.starting:
                return 503, {"status": "starting", **version}
            if app.replicas == 0:
                return 503, {"status": "down", "reason": "scaled to 0 replicas", **version}
            if app.version.startswith(BAD_TAG):
                return 503, {"status": "failing", "reason": f"version {app.version} cannot reach its database", **version}
        return 200, {"status": "ok", **version}

    def to_json(self) -> dict[str, Any]:
        return {"healthy": dict(self.healthy), "apps": {name: {
            "revisions": [{"number": r.number, "image": r.image, "created_at": r.created_at.isoformat()} for r in app.revisions],
            "current": app.current, "replicas": app.replicas,
            "log": [[at.isoformat(), line] for at, line in app.log]} for name, app in self.apps.items()}}

    def restore(self, data: dict[str, Any]) -> None:
        """Take back a saved state; services and apps the catalog no longer names are left out."""
        for name, healthy in dict(data.get("healthy") or {}).items():
            if name in self.healthy:
                self.healthy[name] = bool(healthy)
        for name, saved in dict(data.get("apps") or {}).items():
            if name in self.apps:
                revisions = [AppRevision(int(r["number"]), str(r["image"]), datetime.fromisoformat(r["created_at"]))
                             for r in saved["revisions"]]
                self.apps[name] = DemoApp(name, revisions, int(saved["current"]), int(saved["replicas"]),
                                          log=[(datetime.fromisoformat(at), str(line)) for at, line in saved["log"]])


def _tag_of(image: str) -> str:
    name = image.rsplit("/", 1)[-1]
    return name.partition(":")[2] or "latest"


def _with_tag(image: str, tag: str) -> str:
    repository = image.rsplit(":", 1)[0] if ":" in image.rsplit("/", 1)[-1] else image
    return f"{repository}:{tag}"


class DemoAppWorkload:
    """A demo app as a workload: restarts, rolls back, deploys, scales and logs (`bot.executors.base` capabilities)."""

    def __init__(self, switches: DemoSwitches, app: DemoApp) -> None:
        self._switches, self._app, self._clock = switches, app, switches.clock

    @property
    def _subject(self) -> str:
        return f"demo app {self._app.name}"

    def describe(self) -> str:
        return f"{self._subject} (run by opsbot dev)"

    def _start_title(self) -> str:
        return "Start it and wait until it runs"

    async def _start(self, progress: Progress, why: str) -> float:
        """Stop, then start the current revision; a crash from the page is gone afterwards."""
        async with progress.step(self._start_title()) as step:
            started = self._clock.monotonic()
            self._app.starting = True
            try:
                await self._clock.sleep(self._switches.start_seconds)
                self._switches.healthy[self._app.name] = True
            finally:
                self._app.starting = False
            seconds = self._clock.monotonic() - started
            self._app.say(self._clock.now(), f"{why}: started {self._app.image}")
            step.detail = f"{self._app.image} up in {seconds:.1f} s"
        return seconds

    def restart_plan(self) -> list[str]:
        return [f"Stop {self._subject}", self._start_title()]

    async def restart(self, progress: Progress) -> str:
        async with progress.step(self.restart_plan()[0]) as step:
            self._app.say(self._clock.now(), f"stopped {self._app.image}")
            step.detail = f"{self._app.image} stopped"
        seconds = await self._start(progress, "restart")
        return f"Restarted {self._subject} ({self._app.image}): up in {seconds:.1f} s"

    def rollback_plan(self, to: str | None) -> list[str]:
        wanted = "the previous one" if to is None else f"revision {to}" if to.isdigit() else f"image {to}"
        return [f"Pick the revision to roll back to ({wanted})", f"Roll {self._subject} back to it", self._start_title()]

    def _choose(self, to: str | None) -> AppRevision:
        app = self._app
        others = [r for r in app.revisions if r.number != app.current]
        if to is None:
            if not others:
                raise ExecutorError(f"{self._subject} has run only {app.image}: there is no earlier revision",
                                    state=UNCHANGED, effect=Effect.UNTOUCHED)
            return others[-1]
        found = [r for r in app.revisions if str(r.number) == to or r.image == to or _tag_of(r.image) == to]
        if not found:
            known = ", ".join(f"{r.number} ({r.image})" for r in reversed(app.revisions))
            raise ExecutorError(f"{self._subject} has no revision or image {to}; it has {known}",
                                state=UNCHANGED, effect=Effect.UNTOUCHED)
        return found[-1]

    async def rollback(self, to: str | None, progress: Progress) -> str:
        pick, apply, _ = self.rollback_plan(to)
        before = f"revision {self._app.current} ({self._app.image})"
        async with progress.step(pick) as step:
            chosen = self._choose(to)
            step.detail = f"revision {chosen.number} ({chosen.image})"
        async with progress.step(apply) as step:
            now = self._app.activate(chosen.image, self._clock.now())
            step.detail = f"{chosen.image} is revision {now.number} now"
        seconds = await self._start(progress, "rollback")
        return f"Rolled {self._subject} back from {before} to {chosen.image} (now revision {now.number}): up in {seconds:.1f} s"

    async def revisions(self) -> list[Revision]:
        return [Revision(id=str(r.number), image=r.image, created_at=r.created_at, current=r.number == self._app.current)
                for r in reversed(self._app.revisions)]

    async def current_image(self) -> str:
        return self._app.image

    async def deploy(self, image: str, progress: Progress) -> str:
        """A bare tag keeps the app's repository, as `kubectl set image` with a tag does. Already set: no change."""
        wanted = image if ":" in image.rsplit("/", 1)[-1] else _with_tag(self._app.image, image)
        current = self._app.image
        async with progress.step(f"Set the image of {self._subject} to {wanted}") as step:
            if wanted == current:
                step.detail = f"already runs {wanted}"
                return f"{self._subject.capitalize()} already runs {wanted}; nothing was changed"
            revision = self._app.activate(wanted, self._clock.now())
            step.detail = f"{current} → {wanted}"
        seconds = await self._start(progress, "deploy")
        return f"{self._subject.capitalize()} runs {wanted} (was {current}, revision {revision.number}): up in {seconds:.1f} s"

    async def replicas(self) -> int:
        return self._app.replicas

    async def scale(self, replicas: int, progress: Progress) -> str:
        if isinstance(replicas, bool) or replicas < 0:
            raise ExecutorError(f"{replicas!r} is not a number of replicas; use 0 or more.",
                                state=UNCHANGED, effect=Effect.UNTOUCHED)
        before = self._app.replicas
        async with progress.step(f"Scale {self._subject} to {replicas}") as step:
            self._app.replicas = replicas
            self._app.say(self._clock.now(), f"scaled from {before} to {replicas}")
            step.detail = f"{before} → {replicas}"
        return f"Scaled {self._subject} from {before} to {replicas}"

    async def logs(self, since: timedelta, max_bytes: int = 1_000_000) -> list[tuple[str, str]]:
        start = self._clock.now() - since
        lines = [f"{at.isoformat()} {line}" for at, line in self._app.log if at >= start]
        return [(self._app.name, "\n".join(lines)[-max_bytes:])]
