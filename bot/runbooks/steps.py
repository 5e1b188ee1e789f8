"""What each runbook step kind does: its plan line (with read-only probes), its run, and its undo.

Each kind calls one executor method from `bot/executors/`; undos are "make it as it was" operations, safe to run
on a step that failed half-way or already put itself back. Not responsible for order, retries, timeouts or
state (`bot.runbooks.engine`).
"""

from __future__ import annotations

import html
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import asdict, dataclass
from datetime import timedelta
from typing import Any

from bot import adapters
from bot.actions import targets
from bot.actions.models import ActionKind, ActionRun, BackupLabel
from bot.context import Context
from bot.executors.base import Effect, ExecutorError, RecordingProgress
from bot.health import CheckResult, run_checks
from bot.ids import parse_id
from bot.runbooks.definitions import TRAITS, ConfigMapMaintenance, HttpMaintenance, on_failure
from bot.runbooks.params import Value, substitute
from bot.views import Message, escape, human_size
from bot.views.words import channel_ref, plural, try_of

log = logging.getLogger(__name__)
UNCHANGED = "unchanged: this step changed nothing"
_ARGS = {"check": ("attempts", "interval"), "start": ("replicas",), "deploy": ("image",), "rollback": ("to",),
         "scale": ("replicas",), "restore": ("backup",), "maintenance": ("mode",),
         "sql": ("statement", "engine", "dsn_env"), "terminate-queries": ("older_than_minutes", "dsn_env"),
         "flush-cache": ("engine", "url_env", "db", "address"), "collect-logs": ("minutes", "max_kb"),
         # url is refused a template at load
         "notify": ("text", "channel", "mention"), "http": ("url", "url_env", "method", "json_body", "expect_status"),
         "wait": ("seconds",)}


@dataclass(frozen=True)
class PlannedStep:
    """One step with its arguments resolved: what the approvers saw, and exactly what runs."""

    kind: str
    service: str | None
    args: dict[str, Any]
    title: str
    undo: str | None  # what reverses it, in words; None: nothing does
    on_failure: str
    timeout: float
    retries: int
    probe: str = ""  # what a read-only look found while planning ("runs app:1.0 now")

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def of(cls, data: dict[str, Any]) -> PlannedStep:
        return cls(**data)


class UndoBook:
    """What a step's undo will need, stored before the step changes anything (and when it learns more)."""

    def __init__(self, data: dict[str, Any], save: Callable[[dict[str, Any]], Awaitable[None]]) -> None:
        self.data, self._save = data, save

    async def keep(self, **items: Any) -> None:
        # The first capture wins: a retry or a resumed run must not take the half-changed state for the old one.
        fresh = {key: value for key, value in items.items() if key not in self.data}
        if fresh:
            self.data.update(fresh)
            await self._save(dict(self.data))


# --- planning -------------------------------------------------------------------------------------------------


async def plan(ctx: Context, spec: Any, values: dict[str, Value]) -> PlannedStep:
    """Resolve one catalog step against the parameter values; probes only read."""
    args = {name: getattr(spec, name) for name in _ARGS.get(spec.kind, ())}
    if spec.kind == "notify":  # values go into a message: Slack's control characters are escaped, the catalog's kept
        values = {key: escape(str(value)) for key, value in values.items()}
    args = substitute(args, values)
    service = getattr(spec, "service", None)
    title, probe = await _describe(ctx, spec.kind, service, args)
    traits = TRAITS[spec.kind]
    return PlannedStep(kind=spec.kind, service=service, args=args, title=spec.name or title, undo=traits.undo,
                       on_failure=on_failure(spec), timeout=spec.timeout, retries=spec.retries, probe=probe)


async def _describe(ctx: Context, kind: str, service: str | None, args: dict[str, Any]) -> tuple[str, str]:
    where = ""
    if service is not None and kind in ("restart", "stop", "start", "deploy", "rollback", "scale", "collect-logs"):
        target = ctx.catalog.services[service].target
        where = f" ({_subject(target)})" if target is not None else ""
    if kind == "check":
        tries = f", up to {args['attempts']} tries {args['interval']:g} s apart" if args["attempts"] > 1 else ""
        return f"Check the health of {service}{tries}", ""
    if kind == "restart":
        return f"Restart {service}{where}", ""
    if kind == "stop":
        return f"Stop {service}{where}", ""
    if kind == "start":
        count = f" with {plural(int(args['replicas']), 'replica')}" if args.get("replicas") else ""
        return f"Start {service}{count}{where}", ""
    if kind in ("deploy", "rollback"):
        probe = await _probe(lambda: _current_image(ctx, service or ""), "runs {} now")
        if kind == "deploy":
            return f"Deploy {args['image']} to {service}{where}", probe
        return f"Roll {service} back to {args['to'] or 'the previous image'}{where}", probe
    if kind == "scale":
        probe = await _probe(lambda: _replicas(ctx, service or ""), "{} running now")
        return f"Scale {service} to {args['replicas']}{where}", probe
    if kind == "backup":
        return f"Back up {service} (verified)", ""
    if kind == "restore":
        backup_id = parse_id(str(args["backup"]))
        record = await ctx.store.get_backup(backup_id) if backup_id is not None else None
        what = (f"backup {record.id} of {record.created_at:%Y-%m-%d %H:%M} UTC, {human_size(record.size)}" if record
                else f"backup {args['backup']}")
        return f"Restore {service} from {what} (a safety backup is taken first)", ""
    if kind == "maintenance":
        return f"Turn maintenance mode {args['mode']} for {service} ({_maintenance_where(ctx, service or '')})", ""
    if kind == "sql":
        return f"Run on {service} ({args['engine']}): {args['statement']}", ""
    if kind == "terminate-queries":
        minutes = args["older_than_minutes"]
        probe = await _probe(lambda: _long_queries_now(ctx, service or "", args), "{}")
        return f"End the queries on {service} running longer than {minutes:g} min", probe
    if kind == "flush-cache":
        which = (f"Redis database {args['db']} ({args['url_env']})" if args["engine"] == "redis"
                 else f"Memcached at {args['address']}")
        return f"Flush {which}", ""
    if kind == "collect-logs":
        return f"Collect the last {args['minutes']:g} min of logs of {service}{where} as a file here", ""
    if kind == "notify":
        # A plain title like every step's (the views escape it and link the channel); the text was escaped for
        # posting, so it is unescaped here rather than shown escaped twice.
        to = channel_ref(args["channel"]) if args["channel"] else "this channel"
        return f"Post to {to}: {html.unescape(str(args['text']))[:150]}", ""
    if kind == "http":
        return f"{args['method']} {args['url'] or '$' + str(args['url_env'])}", ""
    assert kind == "wait"
    return f"Wait {float(args['seconds']):g} s", ""


async def _probe(read: Callable[[], Awaitable[Any]], shape: str) -> str:
    try:
        return "read-only look: " + shape.format(await read())
    except ExecutorError as exc:
        return f"read-only look failed: {exc}"


def _subject(target: Any) -> str:
    if target.type == "docker":
        return f"Docker {target.subject}"
    if target.type == "demo":
        return str(target.subject)
    return f"Kubernetes {target.subject}"


def _maintenance_where(ctx: Context, service: str) -> str:
    mode = ctx.catalog.services[service].maintenance
    if isinstance(mode, ConfigMapMaintenance):
        return f"ConfigMap {mode.configmap}, key {mode.key}"
    assert isinstance(mode, HttpMaintenance)
    return f"{mode.method} to the app's endpoint"


# --- running --------------------------------------------------------------------------------------------------


@asynccontextmanager
async def _workload(ctx: Context, service: str) -> AsyncIterator[Any]:
    workload = targets.workload_for(ctx, service, ActionKind.RESTART)
    try:
        yield workload
    finally:
        await targets.close(workload)


def _is_docker(ctx: Context, service: str) -> bool:
    target = ctx.catalog.services[service].target
    return target is not None and target.type == "docker"


async def _current_image(ctx: Context, service: str) -> str:
    async with _workload(ctx, service) as workload:
        return str(await workload.current_image())


async def _replicas(ctx: Context, service: str) -> int:
    async with _workload(ctx, service) as workload:
        return int(await (workload.running_count() if _is_docker(ctx, service) else workload.replicas()))


async def _quiet(_: str) -> None:
    return None


async def perform(ctx: Context, run: ActionRun, step: PlannedStep, book: UndoBook,
                  note: Callable[[str], Awaitable[None]] = _quiet) -> str:
    """Run one step once; returns its short result. Raises ExecutorError (with the state left) when it fails.
    `note` shows how a long step is getting on (a health gate's "try 2 of 3") before it ends."""
    kind, service, args = step.kind, step.service or "", step.args
    progress = RecordingProgress()
    if kind == "check":
        return await _check(ctx, service, int(args["attempts"]), float(args["interval"]), note)
    if kind in ("restart", "stop", "start", "deploy", "rollback", "scale"):
        async with _workload(ctx, service) as workload:
            return await _change(ctx, kind, service, args, workload, progress, book)
    if kind == "backup":
        from bot.actions.service import take_backup

        record = await take_backup(ctx, service, run.id, targets.backups_for(ctx, service, ActionKind.BACKUP), progress,
                                   BackupLabel.MANUAL)
        return f"backup {record.id} written and verified, {human_size(record.size)}"
    if kind == "restore":
        return await _restore(ctx, run, service, int(args["backup"]), progress, book)
    if kind == "maintenance":
        return await _maintenance(ctx, service, str(args["mode"]), book)
    if kind == "sql":
        # The database clients are imported only for a catalog with a sql step (`bot.adapters`).
        ran: str = await adapters.module("bot.executors.databases").run_statement(
            args["engine"], _dsn(ctx, service, args), args["statement"], step.timeout)
        return ran
    if kind == "terminate-queries":
        ended: list[Any] = await adapters.module("bot.executors.databases").terminate_queries(
            _dsn(ctx, service, args), float(args["older_than_minutes"]))
        return f"ended {len(ended)}: " + _queries(ended) if ended else "none was running that long"
    if kind == "flush-cache":
        return await _flush(ctx, args)
    if kind == "collect-logs":
        return await _collect_logs(ctx, run, service, args)
    if kind == "notify":
        return await _notify(ctx, run, args)
    if kind == "http":
        return await _http(ctx, args)
    assert kind == "wait"
    await ctx.clock.sleep(float(args["seconds"]))
    return "done"


async def _change(ctx: Context, kind: str, service: str, args: dict[str, Any], workload: Any,
                  progress: RecordingProgress, book: UndoBook) -> str:
    docker = _is_docker(ctx, service)
    if kind == "restart":
        return str(await workload.restart(progress))
    if kind in ("deploy", "rollback"):
        await book.keep(image=await workload.current_image())
        if kind == "rollback":
            to = args.get("to")
            return str(await workload.rollback(None if to is None else str(to), progress))
        deploy = workload.deploy if docker else workload.set_image
        return str(await deploy(str(args["image"]), progress))
    if docker:
        await book.keep(running=await workload.is_running(), replicas=await workload.running_count())
        if kind == "stop":
            return str(await workload.stop(progress))
        if kind == "start":
            return str(await workload.start(progress))
        return str(await workload.scale(int(args["replicas"]), progress))
    current = await workload.replicas()
    await book.keep(replicas=current)
    if kind == "stop":
        return str(await workload.scale(0, progress))
    if kind == "start":
        if current > 0:
            return f"already running {plural(current, 'replica')}"
        return str(await workload.scale(int(args.get("replicas") or 1), progress))
    return str(await workload.scale(int(args["replicas"]), progress))


async def _check(ctx: Context, service: str, attempts: int, interval: float,
                 note: Callable[[str], Awaitable[None]]) -> str:
    failing: list[CheckResult] = []
    for attempt in range(1, attempts + 1):
        checked = await run_checks(ctx.catalog, (service,), ctx.check_deps, ctx.clock)
        failing = [r for r in checked.results if r.status.failing]
        if not failing:
            return f"{plural(len(checked.results), 'check')} green" + (f" on try {attempt}" if attempt > 1 else "")
        if attempt < attempts:
            reasons = "; ".join(f"{r.check}: {r.reason}" for r in failing)
            await note(f"{try_of(attempt + 1, attempts)} in {interval:g} s (last: {reasons})")
            await ctx.clock.sleep(interval)
    reasons = "; ".join(f"{r.check}: {r.reason}" for r in failing)
    tries = f" after {attempts} tries" if attempts > 1 else ""
    raise ExecutorError(f"{service} is not healthy{tries}: {reasons}", state=f"{service} fails its health checks",
                        effect=Effect.UNTOUCHED)  # checking changes nothing


async def _restore(ctx: Context, run: ActionRun, service: str, backup_id: int, progress: RecordingProgress,
                   book: UndoBook) -> str:
    from bot.actions.service import artifact_of, take_backup

    record = await ctx.store.get_backup(backup_id)
    if record is None or record.service != service or record.deleted_at is not None:
        raise ExecutorError(f"backup {backup_id} of {service} is gone", state=UNCHANGED, effect=Effect.UNTOUCHED)
    backups = targets.backups_for(ctx, service, ActionKind.RESTORE)
    safety = await take_backup(ctx, service, run.id, backups, progress, BackupLabel.SAFETY)
    await book.keep(safety_backup=safety.id)
    try:
        summary = await backups.restore(artifact_of(record), progress)
    except ExecutorError as exc:
        raise ExecutorError(str(exc), state=f"{exc.state}; the state before is in safety backup {safety.id}",
                            effect=exc.effect) from exc
    return f"{summary} (safety backup {safety.id} first)"


async def _maintenance(ctx: Context, service: str, mode: str, book: UndoBook) -> str:
    setting = ctx.catalog.services[service].maintenance
    if isinstance(setting, ConfigMapMaintenance):
        async with _workload(ctx, service) as workload:
            await book.keep(value=await workload.config_value(setting.configmap, setting.key))
            value = setting.on_value if mode == "on" else setting.off_value
            return str(await workload.set_config_value(setting.configmap, setting.key, value))
    assert isinstance(setting, HttpMaintenance)
    # The app's endpoint cannot be asked what it was; the undo of "on" is "off" and the reverse.
    await book.keep(mode="off" if mode == "on" else "on")
    return await _maintenance_call(ctx, setting, mode)


async def _maintenance_call(ctx: Context, setting: HttpMaintenance, mode: str) -> str:
    url = setting.on_url if mode == "on" else setting.off_url
    headers = {}
    if setting.token_env:
        token = ctx.environ.get(setting.token_env)
        if not token:
            raise ExecutorError(f"environment variable {setting.token_env} is not set", state=UNCHANGED, effect=Effect.UNTOUCHED)
        headers["Authorization"] = f"Bearer {token}"
    return await _request(ctx, setting.method, url, None, headers, list(range(200, 300)), setting.timeout, secret=False)


def _dsn(ctx: Context, service: str, args: dict[str, Any]) -> str:
    env = args.get("dsn_env") or getattr(ctx.catalog.services[service].backup, "dsn_env", None)
    value = ctx.environ.get(env or "")
    if not value:
        raise ExecutorError(f"environment variable {env} is not set (the database to connect to)", state=UNCHANGED,
                            effect=Effect.UNTOUCHED)
    return value


def _queries(found: list[Any]) -> str:
    return "; ".join(f"pid {q.pid} ({q.seconds / 60:.0f} min, {q.user}): {q.query[:80]}" for q in found[:10])


async def _long_queries_now(ctx: Context, service: str, args: dict[str, Any]) -> str:
    found: list[Any] = await adapters.module("bot.executors.databases").long_queries(
        _dsn(ctx, service, args), float(args["older_than_minutes"]))
    return f"{len(found)} running that long now" + (": " + _queries(found) if found else "")


async def _flush(ctx: Context, args: dict[str, Any]) -> str:
    # redis-py and pymemcache are imported only for a catalog with a flush-cache step (`bot.adapters`).
    caches = adapters.module("bot.executors.caches")
    if args["engine"] == "redis":
        url = ctx.environ.get(str(args["url_env"]))
        if not url:
            raise ExecutorError(f"environment variable {args['url_env']} is not set", state=UNCHANGED, effect=Effect.UNTOUCHED)
        return f"{plural(await caches.flush_redis(url, int(args['db'])), 'key')} removed"
    host, _, port = str(args["address"]).rpartition(":")
    return f"{plural(await caches.flush_memcached(host, int(port)), 'item')} removed"


async def _collect_logs(ctx: Context, run: ActionRun, service: str, args: dict[str, Any]) -> str:
    if not run.channel_id:
        raise ExecutorError("the run has no channel to upload the logs to", state=UNCHANGED, effect=Effect.UNTOUCHED)
    minutes, limit = float(args["minutes"]), int(args["max_kb"]) * 1024
    async with _workload(ctx, service) as workload:
        if _is_docker(ctx, service):
            found = await workload.logs(ctx.clock.now() - timedelta(minutes=minutes), max_bytes=limit)
        else:
            found = await workload.logs(int(minutes * 60), max_bytes=limit)
    content = "\n".join(f"==> {name} <==\n{text}" for name, text in found) or "(no log lines in the window)"
    stamp = ctx.clock.now().strftime("%Y%m%d-%H%M%S")
    await ctx.chat.upload(run.channel_id, filename=f"{service}-logs-{stamp}.txt",
                          title=f"Logs of {service}, last {minutes:g} min",
                          content=content, comment=f"Logs of `{service}` collected by runbook run #{run.id}.")
    return f"{plural(len(found), 'log')}, {human_size(len(content.encode()))} uploaded"


async def _notify(ctx: Context, run: ActionRun, args: dict[str, Any]) -> str:
    channel = args.get("channel") or run.channel_id
    if not channel:
        raise ExecutorError("no channel to post to", state=UNCHANGED, effect=Effect.UNTOUCHED)
    mentions = " ".join(f"<!subteam^{i}>" if i.startswith("S") else f"<@{i}>" for i in args.get("mention") or [])
    text = f"{mentions} {args['text']}".strip()
    from slack_sdk.models.blocks import SectionBlock

    await ctx.chat.post(channel, Message.of(text[:3000], [SectionBlock(text=text[:3000])]))
    return f"posted to {channel_ref(channel)}"


async def _http(ctx: Context, args: dict[str, Any]) -> str:
    url = args.get("url")
    if url is None:
        url = ctx.environ.get(str(args["url_env"]))
        if not url:
            raise ExecutorError(f"environment variable {args['url_env']} is not set", state=UNCHANGED, effect=Effect.UNTOUCHED)
    return await _request(ctx, str(args["method"]), url, args.get("json_body"), {}, list(args["expect_status"]), 30,
                          secret=args.get("url") is None)


async def _request(ctx: Context, method: str, url: str, body: Any, headers: dict[str, str], expect: list[int],
                   timeout: float, *, secret: bool) -> str:
    from urllib.parse import urlsplit

    import aiohttp

    # A webhook URL kept in the environment is a secret (its path is the key): only its host is shown.
    try:
        parts = urlsplit(url)
        shown = f"{parts.scheme}://{parts.hostname}/…" if secret else url
    except ValueError:
        shown = "the URL in the environment" if secret else url
    try:
        async with ctx.http.request(method, url, json=body, headers=headers,
                                    timeout=aiohttp.ClientTimeout(total=timeout)) as response:
            text = (await response.text(errors="replace"))[:200]
            if response.status not in expect:
                # A 4xx is the endpoint refusing the request; anything else (a 5xx, an unexpected 2xx) may have acted.
                refused = 400 <= response.status < 500
                raise ExecutorError(f"{method} {shown} answered {response.status}: {text}",
                                    state="unchanged: the endpoint refused the request" if refused
                                    else "unknown: the endpoint answered, and may or may not have acted",
                                    effect=Effect.UNTOUCHED if refused else Effect.UNKNOWN)
            return f"{method} {shown}: {response.status}"
    except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
        # aiohttp quotes the URL in some errors (a malformed one, a redirect): a secret one is never shown.
        why = type(exc).__name__ if secret else f"{type(exc).__name__} {exc}"
        # No connection (or no valid URL): the request never left; otherwise it went, and no answer came back.
        unsent = isinstance(exc, (aiohttp.ClientConnectorError, ValueError))
        raise ExecutorError(f"{method} {shown} failed: {why}"[:300],
                            state="unchanged: the request was not sent" if unsent else "unknown: no answer came back",
                            effect=Effect.UNTOUCHED if unsent else Effect.UNKNOWN) from exc


# --- undoing --------------------------------------------------------------------------------------------------


async def undo(ctx: Context, step: PlannedStep, data: dict[str, Any]) -> str:
    """Put back what `data` (captured before the step changed anything) says was there."""
    service, progress = step.service or "", RecordingProgress()
    if step.kind in ("deploy", "rollback"):
        async with _workload(ctx, service) as workload:
            deploy = workload.deploy if _is_docker(ctx, service) else workload.set_image
            return str(await deploy(str(data["image"]), progress))
    if step.kind in ("stop", "start", "scale"):
        async with _workload(ctx, service) as workload:
            if not _is_docker(ctx, service):
                return str(await workload.scale(int(data["replicas"]), progress))
            # Docker has no replicas: what ran before was all, none, or some — which some, opsbot does not guess.
            before, total = int(data.get("replicas") or 0), await workload.container_count()
            if 0 < before < total:
                raise ExecutorError(f"{before} of {total} containers ran before this step; opsbot does not guess "
                                    "which to stop again", state=f"{service} is left as the step made it",
                                    effect=Effect.UNTOUCHED)
            return str(await (workload.start(progress) if before else workload.stop(progress)))
    if step.kind == "maintenance":
        setting = ctx.catalog.services[service].maintenance
        if isinstance(setting, ConfigMapMaintenance):
            async with _workload(ctx, service) as workload:
                return str(await workload.set_config_value(setting.configmap, setting.key, data.get("value")))
        assert isinstance(setting, HttpMaintenance)
        return await _maintenance_call(ctx, setting, str(data["mode"]))
    if step.kind == "restore":
        from bot.actions.service import artifact_of

        record = await ctx.store.get_backup(int(data["safety_backup"]))
        if record is None:
            raise ExecutorError(f"safety backup {data['safety_backup']} is gone", state="the restored data stays",
                                effect=Effect.UNTOUCHED)
        backups = targets.backups_for(ctx, service, ActionKind.RESTORE)
        return str(await backups.restore(artifact_of(record), progress))
    raise ExecutorError(f"`{step.kind}` has no undo", state="its change stays", effect=Effect.UNTOUCHED)


def can_undo(step: PlannedStep, data: dict[str, Any] | None) -> bool:
    """Whether there is something to put back: an undo exists and what it needs was captured in time."""
    if step.undo is None or not data:
        return False
    if step.kind == "restore":
        return "safety_backup" in data
    return True


def undo_title(step: PlannedStep, data: dict[str, Any]) -> str:
    what = step.undo or "undo"
    if step.kind in ("deploy", "rollback"):
        what = f"deploy {data.get('image')} again"
    elif step.kind == "scale" or (step.kind in ("stop", "start") and "running" not in data):
        what = f"scale back to {data.get('replicas')}"
    elif step.kind == "maintenance" and "value" in data:
        what = f"set it back to {json.dumps(data['value'])}" if data["value"] is not None else "remove the key again"
    elif step.kind == "restore":
        what = f"restore safety backup {data.get('safety_backup')}"
    return f"Undo “{step.title}”: {what}"
