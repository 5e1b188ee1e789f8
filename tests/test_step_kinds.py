"""Step kinds as modules: the registry, capabilities checked at catalog load, a new kind in one module, built-in steps.

In memory and fast: a real catalog, the playground's demo apps as the target, a manual clock, a dict for backups.
"""

from __future__ import annotations

import typing
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import pytest

from bot.catalog_loading import CatalogInvalid, parse_catalog
from bot.clock import ManualClock
from bot.executors.base import (
    ConfigValues,
    Deploys,
    Effect,
    Execs,
    Logs,
    PreviewsScale,
    Prunes,
    Recreates,
    Restarts,
    RollsBack,
    Scales,
    StartsStops,
)
from bot.executors.docker import DockerWorkload
from bot.executors.kubernetes import KubernetesWorkload
from bot.runbooks import definitions, validation
from bot.runbooks.definitions import Runbook
from bot.runs import steps, targets
from bot.runs.models import SCHEDULER, ActionKind, ActionRun, BackupLabel, BackupRecord
from bot.runs.steps.base import (
    PlannedStep,
    StepDeps,
    StepKind,
    Traits,
    UndoBook,
    _ServiceStep,
    register,
    unregister,
)
from playground.demo_apps import DemoAppWorkload, DemoSwitches

KINDS = {"check", "restart", "stop", "start", "deploy", "rollback", "scale", "backup", "retention", "restore",
         "maintenance", "sql", "terminate-queries", "flush-cache", "collect-logs", "notify", "http", "wait", "exec",
         "manual", "query", "recreate", "prune"}
CATALOG = """
services:
  web:
    environment: production
    target: {type: demo, app: web}
    backup: {type: directory, paths: [/tmp/web], directory: /tmp/web-backups, retention_days: 7, keep_min: 2}
  api: {environment: production, target: {type: docker, container: api}}
  jobs: {environment: production, target: {type: kubernetes, deployment: jobs}}
"""


@dataclass
class Ledger:
    records: dict[int, BackupRecord] = field(default_factory=dict)

    async def add_backup(self, record: BackupRecord) -> int:
        self.records[len(self.records) + 1] = record
        return len(self.records)

    async def get_backup(self, backup_id: int) -> BackupRecord | None:
        return self.records.get(backup_id)

    async def backups(self, service: str | None = None, *, include_deleted: bool = False,
                      limit: int = 50) -> list[BackupRecord]:
        return [r for r in self.records.values() if service in (None, r.service)][:limit]

    async def mark_backup_deleted(self, backup_id: int, at: datetime) -> None:
        return None

    async def record_deploy(self, service: str, image: str, digest: str | None, seen_at: datetime) -> None:
        return None

    async def deploy_history(self, service: str, limit: int = 20) -> list[Any]:
        return []


@dataclass
class Deps:
    """The ports step kinds use, without a Context: what an engine test hands them."""

    catalog: Any
    clock: ManualClock
    demo_workloads: DemoSwitches
    store: Ledger = field(default_factory=Ledger)
    environ: Mapping[str, str] = field(default_factory=dict)
    chat: Any = None
    http: Any = None

    async def check(self, service: str, only: Any = ()) -> Any:
        raise AssertionError("no health check in these tests")


@pytest.fixture
def deps() -> Deps:
    clock = ManualClock(datetime(2026, 3, 1, 12, 0, tzinfo=UTC))
    catalog = parse_catalog(CATALOG)
    switches = DemoSwitches(["web"], clock, start_seconds=0)
    switches.add_apps(catalog)
    return Deps(catalog, clock, switches)


def _run() -> ActionRun:
    at = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
    return ActionRun(service="web", kind=ActionKind.RUNBOOK, environment="production", target="web", requested_by="U1",
                     created_at=at, expires_at=at, id=1)


def test_the_registry_holds_every_kind_and_the_catalog_reads_it() -> None:
    assert set(steps.REGISTRY) == KINDS
    for name, kind in steps.REGISTRY.items():
        assert typing.get_args(kind.args.model_fields["kind"].annotation) == (name,)
        assert definitions.TRAITS[name] is kind.traits is steps.traits(name)
    assert dict(definitions.TRAITS) == {name: kind.traits for name, kind in steps.REGISTRY.items()}


def test_the_capability_table_says_what_each_executor_implements() -> None:
    every = (Restarts, RollsBack, Deploys, Scales, StartsStops, Logs, ConfigValues, Execs, PreviewsScale, Recreates,
             Prunes)
    for executor, target_type in ((DockerWorkload, "docker"), (KubernetesWorkload, "kubernetes"),
                                  (DemoAppWorkload, "demo")):
        assert {c for c in every if issubclass(executor, c)} == targets.CAPABILITIES[target_type], target_type


def test_a_step_whose_target_lacks_the_capability_is_refused_at_load() -> None:
    def catalog(target: str, maintenance: str) -> str:
        return f"""
services:
  api: {{environment: production, target: {target}, maintenance: {maintenance}}}
runbooks:
  quiet:
    services: [api]
    steps:
      - {{kind: maintenance, service: api, mode: on}}
"""

    configmap = "{type: configmap, configmap: flags, key: maintenance}"
    with pytest.raises(CatalogInvalid) as raised:
        parse_catalog(catalog("{type: docker, container: api}", configmap))
    assert ("runbooks.quiet.steps[1].kind: `maintenance` needs a target that can set ConfigMap values, but "
            "services.api.target is docker, which cannot; use a kubernetes target") in str(raised.value)
    # The same step on a Kubernetes target, or with the app's own endpoint on Docker, loads.
    parse_catalog(catalog("{type: kubernetes, deployment: api}", configmap))
    parse_catalog(catalog("{type: docker, container: api}", "{type: http, on_url: 'http://api/on', off_url: 'http://api/off'}"))


class PingStep(_ServiceStep):
    kind: Literal["ping"]
    word: str = "ping"


async def _describe(deps: StepDeps, service: str | None, args: dict[str, Any]) -> tuple[str, str]:
    return f"Say {args['word']} to {service}{targets.where(deps, service)}", ""


async def _perform(deps: StepDeps, run: ActionRun, step: PlannedStep, book: UndoBook, note: Any) -> str:
    async with targets.capable(deps, step.service or "", ConfigValues) as found:
        workload: ConfigValues = found
        await book.keep(value=await workload.config_value("flags", "ping"))
        return await workload.set_config_value("flags", "ping", str(step.args["word"]))


@pytest.fixture
def ping() -> typing.Iterator[StepKind]:
    kind = register(StepKind("ping", PingStep, Traits(changes=True, undo="unsay it", cut_short=Effect.UNKNOWN,
                                                      needs="target", capability=(ConfigValues,)),
                             _describe, _perform))
    yield kind
    unregister("ping")


async def test_a_new_kind_is_one_module_that_validation_and_planning_learn_from_the_registry(
    ping: StepKind, deps: Deps
) -> None:
    def errors(service: str) -> list[str]:
        runbook = Runbook.model_construct(description="", services=[service], parameters={}, approvals=None,
                                          steps=[PingStep(kind="ping", service=service, word="{{ params.who }}")],
                                          schedule=None, schedule_values={})
        catalog = deps.catalog.model_copy(update={"runbooks": {"hello": runbook}})
        return [f"{'.'.join(map(str, f.path))}: {f.message}" for f in validation.errors(catalog)]

    undeclared = ("runbooks.hello.steps.0.word: uses parameter 'who', which is not declared "
                  "(parameters: none declared)")
    assert errors("jobs") == [undeclared]
    assert errors("api") == [undeclared, ("runbooks.hello.steps.0.kind: `ping` needs a target that can set ConfigMap "
                                          "values, but services.api.target is docker, which cannot; use a kubernetes "
                                          "target")]
    planned = await steps.plan(deps, PingStep(kind="ping", service="jobs", word="{{ params.who }}"), {"who": "hi"})
    assert (planned.title, planned.args, planned.undo, planned.on_failure) == (
        "Say hi to jobs (Kubernetes deployment default/jobs)", {"word": "hi"}, "unsay it", "rollback")
    assert definitions.TRAITS["ping"] is ping.traits
    # The demo app cannot hold config values: the registry's capability lookup refuses it before it acts.
    with pytest.raises(Exception, match="web's target cannot set ConfigMap values") as raised:
        await steps.perform(deps, _run(), await steps.plan_builtin(deps, "ping", "web", {}), UndoBook({}, _save))
    assert getattr(raised.value, "effect", None) is Effect.UNTOUCHED


async def _save(data: dict[str, Any]) -> None:
    return None


async def test_built_in_steps_are_planned_like_catalog_ones(deps: Deps) -> None:
    async def planned(kind: str, **args: Any) -> PlannedStep:
        return await steps.plan_builtin(deps, kind, "web", args)

    restart = await planned("restart")
    assert (restart.title, restart.undo, restart.on_failure) == ("Restart web (demo app web)", None, "rollback")
    rollback = await planned("rollback", to=None)
    assert (rollback.title, rollback.probe) == ("Roll web back to the previous image (demo app web)",
                                                "read-only look: runs demo:1.0.0 now")
    assert (await planned("backup")).title == "Back up web (verified)"
    retention = await planned("retention")
    assert (retention.title, retention.on_failure) == ("Apply retention (7 days, keep at least 2)", "continue")
    assert (await planned("restore", backup=5)).title == "Restore web from backup 5 (a safety backup is taken first)"
    check = await planned("check", attempts=3, interval=2, on_failure="stop")
    assert (check.title, check.on_failure, check.args) == ("Check the health of web, up to 3 tries 2 s apart", "stop",
                                                           {"checks": None, "attempts": 3, "interval": 2,
                                                            "warning_passes": False})
    with pytest.raises(ValueError, match="replicas"):
        await planned("scale")  # checked by the kind's catalog model like a catalog step


async def test_a_step_runs_and_is_undone_through_the_registry(deps: Deps) -> None:
    scale = await steps.plan_builtin(deps, "scale", "web", {"replicas": 3})
    assert (scale.title, scale.probe) == ("Scale web to 3 (demo app web)", "read-only look: 1 running now")
    book = UndoBook({}, _save)
    assert await steps.perform(deps, _run(), scale, book) == "Scaled demo app web from 1 to 3"
    assert book.data == {"replicas": 1}
    assert steps.can_undo(scale, book.data)
    assert steps.undo_title(scale, book.data) == "Undo “Scale web to 3 (demo app web)”: scale back to 1"
    await steps.undo(deps, scale, book.data)
    assert deps.demo_workloads.apps["web"].replicas == 1
    wait = await steps.plan_builtin(deps, "wait", "web", {"seconds": 1})
    assert not steps.can_undo(wait, {"x": 1})
    with pytest.raises(Exception, match="has no undo"):
        await steps.undo(deps, wait, {})


async def test_a_backup_step_labels_a_scheduled_runs_backup_so_and_retention_expires_old_ones(
    deps: Deps, tmp_path: Path
) -> None:
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "a.txt").write_text("a")
    deps.catalog = parse_catalog(CATALOG.replace("/tmp/web-backups", str(tmp_path / "backups")).replace(
        "/tmp/web", str(tmp_path / "data")).replace("keep_min: 2", "keep_min: 1"))
    backup = await steps.plan_builtin(deps, "backup", "web", {})
    await steps.perform(deps, replace(_run(), requested_by=SCHEDULER), backup, UndoBook({}, _save))
    deps.clock.advance(8 * 24 * 3600)  # past the 7 days' retention
    await steps.perform(deps, _run(), backup, UndoBook({}, _save))
    assert [r.label for r in deps.store.records.values()] == [BackupLabel.SCHEDULED, BackupLabel.MANUAL]
    retention = await steps.plan_builtin(deps, "retention", "web", {})
    assert await steps.perform(deps, _run(), retention, UndoBook({}, _save)) == "1 removed, 1 kept"
    assert not deps.store.records[1].path.exists() and deps.store.records[2].path.exists()
