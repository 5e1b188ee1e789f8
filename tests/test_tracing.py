"""Traces: a span per Slack request, per check and per run step, with the aiohttp, asyncpg and redis instrumentations,
collected by the SDK's in-memory exporter from a running bot; `opsbot serve` exporting to a collector over OTLP with
the ids in its JSON logs; nothing of OpenTelemetry loaded when off; one clear line when the extra is missing.
"""

from __future__ import annotations

import asyncio
import json
import logging
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from bot import tracing_otel
from bot.logs import formatter
from bot.runs.models import ActionState
from bot.settings import Settings
from bot.tracing import MISSING_EXTRA, Tracing, slack_request_name
from playground.payloads import SIGNING_SECRET, sign, slash_command
from playground.slack_api import FakeSlack
from tests.conftest import REDIS_URL, RunningBot, free_port, make_settings, start_bot
from tests.targets import Targets
from tests.test_approvals import ALICE, BOB, button, click, ops, submit
from tests.test_cli import ROOT, base_env, wait_healthy

CHANNEL = "C0OPS"


@pytest.fixture(scope="module")
def traced() -> Iterator[tuple[Tracing, InMemorySpanExporter]]:
    """Tracing on, into memory: one provider per process (OpenTelemetry's global one can be set once), emptied per test."""
    exporter = InMemorySpanExporter()
    tracing = tracing_otel.start(exporter, "opsbot-test", batch=False)
    yield tracing, exporter
    tracing.shutdown()


@pytest.fixture
def spans(traced: tuple[Tracing, InMemorySpanExporter]) -> InMemorySpanExporter:
    traced[1].clear()
    return traced[1]


def catalog(targets: Targets, tmp: Path) -> str:
    (tmp / "data").mkdir(parents=True, exist_ok=True)
    (tmp / "data" / "orders.csv").write_text("1,10.5\n")
    return f"""
approvals:
  environments:
    production: {{default: {{approvals: 1, approvers: [S0LEADS]}}}}
    staging: {{default: {{approvals: 0}}}}
services:
  web:
    environment: production
    checks:
      - {{type: http, url: "{targets.url('/ok')}"}}
      - {{type: redis, url: "{REDIS_URL}"}}
  payments:
    environment: production
    checks:
      - {{type: http, url: "{targets.url('/fail')}"}}
  files:
    environment: staging
    backup: {{type: directory, paths: ["{tmp / 'data'}"], directory: "{tmp / 'backups'}"}}
runbooks:
  look:
    description: Look at web, then say so.
    services: [web]
    steps:
      - {{kind: check, service: web}}
      - {{kind: notify, channel: {CHANNEL}, text: "web looked at"}}
"""


@pytest.fixture
async def bot(traced: tuple[Tracing, InMemorySpanExporter], slack: FakeSlack, targets: Targets, pg_database: str,
              http: aiohttp.ClientSession, tmp_path: Path) -> AsyncIterator[RunningBot]:
    slack.groups = {"S0LEADS": [BOB]}
    settings = make_settings(slack, pg_database, redis_url=REDIS_URL)  # PostgreSQL store and Redis locks: both traced
    running, runner = await start_bot(settings, catalog(targets, tmp_path), slack, http, tracer=traced[0].tracer)
    yield running
    await runner.cleanup()


def named(spans: InMemorySpanExporter, name: str) -> list[ReadableSpan]:
    return [span for span in spans.get_finished_spans() if span.name == name]


def children(spans: InMemorySpanExporter, parent: ReadableSpan, name: str | None = None) -> list[ReadableSpan]:
    assert parent.context is not None
    return [span for span in spans.get_finished_spans() if span.parent is not None
            and span.parent.span_id == parent.context.span_id and (name is None or span.name == name)]


def under(spans: InMemorySpanExporter, ancestor: ReadableSpan) -> list[ReadableSpan]:
    """Every span below `ancestor`, at any depth."""
    found, frontier = [], [ancestor]
    while frontier:
        below = children(spans, frontier.pop())
        found += below
        frontier += below
    return found


async def test_ops_health_is_a_request_span_over_a_health_run_over_one_span_per_check(
        bot: RunningBot, spans: InMemorySpanExporter) -> None:
    await ops(bot, "health web payments")

    [request] = named(spans, "slack command /ops")
    assert request.attributes == {"slack.kind": "command", "slack.name": "/ops", "http.response.status_code": 200}
    assert request.parent is not None  # the aiohttp server instrumentation's span of POST /slack/events
    [server] = [s for s in spans.get_finished_spans() if s.context and s.context.span_id == request.parent.span_id]
    assert server.kind is SpanKind.SERVER
    [handled] = children(spans, request, "handle command /ops")
    assert handled.attributes is not None and handled.attributes["opsbot.outcome"] == "ok"
    [run] = children(spans, handled, "health run")
    assert run.attributes == {"opsbot.services": 2, "opsbot.checks": 3, "opsbot.health.status": "critical"}
    checks = sorted(((s.name, s.attributes or {}) for s in children(spans, run)), key=lambda c: str(c[1]["opsbot.service"]))
    assert [(name, attrs["opsbot.service"], attrs["opsbot.check.status"]) for name, attrs in checks] == [
        ("check http", "payments", "critical"), ("check http", "web", "ok"), ("check redis", "web", "ok")]
    # The instrumentations: each check's own call is a child of its span; the store's statements are traced too.
    [web_http] = [s for s in children(spans, run) if (s.attributes or {}).get("opsbot.service") == "web"
                  and s.name == "check http"]
    assert [s.kind for s in children(spans, web_http)] == [SpanKind.CLIENT]
    [redis_check] = named(spans, "check redis")
    assert any((s.attributes or {}).get("db.system") == "redis" or (s.attributes or {}).get("db.system.name") == "redis"
               for s in under(spans, redis_check))
    assert any((s.attributes or {}).get("db.system") == "postgresql" or
               (s.attributes or {}).get("db.system.name") == "postgresql" for s in under(spans, handled))
    # No span is named after a person; no user id in any span's name.
    assert not any(ALICE in s.name for s in spans.get_finished_spans())


async def test_an_approved_runbook_is_a_run_span_with_one_span_per_step(bot: RunningBot, spans: InMemorySpanExporter) -> None:
    run_id = await request(bot, "run look")
    await click(bot, "approval.approve", str(run_id), BOB)
    await until_final(bot, run_id)

    [approve] = named(spans, "slack action approval.approve")
    [handled] = children(spans, approve, "handle action approval.approve")
    [run] = [s for s in under(spans, handled) if s.name == "run runbook"]  # the run the approval started
    assert run.attributes == {"opsbot.run_id": run_id, "opsbot.run.kind": "runbook", "opsbot.service": "web",
                              "opsbot.run.outcome": "succeeded"}
    steps = sorted(children(spans, run), key=lambda s: (s.attributes or {}).get("opsbot.step.index", 0))
    assert [(s.name, s.attributes) for s in steps if s.name.startswith("step ")] == [
        ("step check", {"opsbot.run_id": run_id, "opsbot.step.index": 1, "opsbot.step.kind": "check",
                        "opsbot.step.outcome": "succeeded"}),
        ("step notify", {"opsbot.run_id": run_id, "opsbot.step.index": 2, "opsbot.step.kind": "notify",
                         "opsbot.step.outcome": "succeeded"}),
    ]
    # The notify step's chat.postMessage is the aiohttp client's span under it.
    [notify] = [s for s in steps if s.name == "step notify"]
    assert any(s.kind is SpanKind.CLIENT for s in under(spans, notify))


async def test_a_backup_run_has_a_span_per_step_it_reports(bot: RunningBot, spans: InMemorySpanExporter) -> None:
    run_id = await request(bot, "backup files")  # staging: no approval needed
    await until_final(bot, run_id)

    [run] = named(spans, "run backup")
    assert (run.attributes or {})["opsbot.run.outcome"] == "succeeded"
    # A backup is the plan [backup, retention]: a span per step, named by the step's kind.
    steps = children(spans, run, "step backup") + children(spans, run, "step retention")
    assert len(steps) == 2 and all((s.attributes or {})["opsbot.run_id"] == run_id for s in steps)
    assert {(s.attributes or {})["opsbot.step.outcome"] for s in steps} == {"succeeded"}
    assert {(s.attributes or {})["opsbot.step.kind"] for s in steps} == {"backup", "retention"}


async def request(bot: RunningBot, command: str) -> int:
    """`/ops <command>` by Alice, then Request (with a reason when the modal asks for one); the run's id."""
    plan = await ops(bot, command, ALICE)
    run_id = int(button(plan, "action.request")["value"])
    opened = len(bot.slack.of("views.open"))
    await click(bot, "action.request", str(run_id), ALICE)
    if len(bot.slack.of("views.open")) > opened:
        await submit(bot, bot.slack.of("views.open")[-1].args["view"], "routine", ALICE)
    return run_id


async def until_final(bot: RunningBot, run_id: int) -> None:
    for _ in range(300):
        run = await bot.ctx.store.get_action(run_id)
        if run is not None and run.state.final:
            await bot.settle()
            assert run.state is ActionState.SUCCEEDED, run
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"run {run_id} did not finish")


def test_json_log_lines_carry_the_current_trace_and_span_ids(traced: tuple[Tracing, InMemorySpanExporter]) -> None:
    tracing, exporter = traced
    record = logging.LogRecord("opsbot", logging.INFO, __file__, 1, "checked", None, None)
    json_lines = formatter("json", trace_ids=tracing.trace_ids)
    assert "trace_id" not in json.loads(json_lines.format(record))  # outside any span: no ids
    with tracing.tracer.span("check http"):
        line = json.loads(json_lines.format(record))
    [span] = [s for s in exporter.get_finished_spans() if s.name == "check http"][-1:]
    assert span.context is not None
    assert (line["trace_id"], line["span_id"]) == (f"{span.context.trace_id:032x}", f"{span.context.span_id:016x}")


@pytest.mark.parametrize(("body", "name"), [
    ({"command": "/ops", "user_id": "U0ALICE"}, "/ops"),
    ({"type": "block_actions", "actions": [{"action_id": "approval.approve", "value": "7"}]}, "approval.approve"),
    ({"type": "view_submission", "view": {"callback_id": "runbook.params"}}, "runbook.params"),
    ({"type": "event_callback", "event": {"type": "reaction_added", "user": "U0ALICE"}}, "reaction_added"),
    ({"type": "block_actions", "actions": [{"action_id": "a b; drop"}]}, None),  # not an id: the span has the kind only
    ({"command": "x" * 500}, None),
    ([1, 2], None),
])
def test_a_slack_request_span_is_named_by_its_command_or_action_id_never_by_free_text(body: object, name: str | None) -> None:
    assert slack_request_name(body) == name


def test_a_collector_url_that_is_not_http_is_refused_naming_what_is_valid() -> None:
    with pytest.raises(ValueError, match="collector's http:// or https:// URL"):
        Settings(slack_bot_token="xoxb-1", slack_signing_secret="s", otel_exporter_otlp_endpoint="otel-collector:4318")
    settings = Settings(slack_bot_token="xoxb-1", slack_signing_secret="s", otel_exporter_otlp_endpoint="")
    assert settings.otel_exporter_otlp_endpoint is None  # set but empty, as a template leaves it: off


def test_span_urls_keep_no_password_query_or_token() -> None:
    assert tracing_otel.safe_url("https://user:pw@hooks.slack.test:8443/actions/T1/123/AbCdEfGhIjKlMnOpQrStUvWx?x=1") == (
        "https://hooks.slack.test:8443/actions/T1/123/[redacted]")


# --- `opsbot serve` as an operator runs it ---------------------------------------------------------------------

# Runs `opsbot serve`; `block` makes OpenTelemetry uninstallable in that process, as without the extra. redis-py
# imports OpenTelemetry's metrics SDK by itself when it is installed: what opsbot adds is measured beyond that.
SERVE = """
import json, sys
if {block}:
    class Missing:
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] == "opentelemetry":
                raise ModuleNotFoundError(f"No module named {{name!r}}", name=name)
    sys.meta_path.insert(0, Missing())
import redis.asyncio
baseline = {{m for m in sys.modules if m.startswith("opentelemetry")}}
from bot.cli import main
code = main(["serve"])
added = sorted(m for m in sys.modules if m.startswith(("opentelemetry", "bot.tracing_otel")) and m not in baseline)
print("ADDED " + json.dumps(added), flush=True)
sys.exit(code)
"""


async def serve_once(tmp_path: Path, fake: FakeSlack, *, block: bool = False, **extra: str) -> tuple[str, str]:
    """Start `opsbot serve`, ask `/ops health host` and wait for its report, stop it with SIGTERM; (stdout, stderr)."""
    port = free_port()
    env = base_env(SLACK_BOT_TOKEN="xoxb-1234-trace", SLACK_SIGNING_SECRET=SIGNING_SECRET, SLACK_API_URL=fake.api_url,
                   PORT=str(port), OPSBOT_CONFIG=str(ROOT / "opsbot.example.yml"), **extra)
    proc = subprocess.Popen([sys.executable, "-c", SERVE.format(block=block)], cwd=tmp_path, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        await wait_healthy(f"http://127.0.0.1:{port}", proc)
        body, content_type = slash_command("/ops", "health host", user="U1", channel="C1", response_url=fake.response_url())
        async with aiohttp.ClientSession() as http, http.post(f"http://127.0.0.1:{port}/slack/events", data=body,
                                                              headers={"Content-Type": content_type, **sign(body)}) as response:
            assert response.status == 200
        await fake.wait_for("response_url", count=2)
    finally:
        proc.send_signal(signal.SIGTERM)
        # In a thread: this loop also serves the collector the stopping bot sends its last spans to.
        out, err = await asyncio.to_thread(proc.communicate, timeout=30)
    assert proc.returncode == 0, err
    return out, err


def added_modules(out: str) -> list[str]:
    [line] = [line for line in out.splitlines() if line.startswith("ADDED ")]
    return list(json.loads(line.removeprefix("ADDED ")))


async def test_with_tracing_off_serving_requests_imports_nothing_of_opentelemetry(slack: FakeSlack, tmp_path: Path) -> None:
    out, err = await serve_once(tmp_path, slack)
    assert added_modules(out) == []
    assert "otel" not in err


async def test_with_the_endpoint_set_but_the_extra_missing_one_line_names_it_and_the_bot_serves(
        slack: FakeSlack, tmp_path: Path) -> None:
    out, err = await serve_once(tmp_path, slack, block=True, OTEL_EXPORTER_OTLP_ENDPOINT="http://127.0.0.1:9")
    assert added_modules(out) == []
    expected = MISSING_EXTRA % "opentelemetry"
    assert [line for line in err.splitlines() if "OpenTelemetry" in line] == [
        line for line in err.splitlines() if line.endswith(expected)]
    assert len([line for line in err.splitlines() if "pip install 'opsbot[otel]'" in line]) == 1
    assert "opsbot is up" in out


async def test_serve_exports_spans_over_otlp_and_its_json_logs_carry_their_ids(slack: FakeSlack, tmp_path: Path) -> None:
    received: list[ExportTraceServiceRequest] = []

    async def traces(request: web.Request) -> web.Response:
        export = ExportTraceServiceRequest()
        export.ParseFromString(await request.read())
        received.append(export)
        return web.Response(body=b"", content_type="application/x-protobuf")

    collector = web.Application()
    collector.router.add_post("/v1/traces", traces)
    runner = web.AppRunner(collector)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        out, err = await serve_once(tmp_path, slack, OTEL_EXPORTER_OTLP_ENDPOINT=f"http://127.0.0.1:{runner.addresses[0][1]}/",
                                    OTEL_SERVICE_NAME="opsbot-ci", LOG_FORMAT="json", LOG_LEVEL="DEBUG")
    finally:
        await runner.cleanup()
    assert "bot.tracing_otel" in added_modules(out), err
    assert received, err[-3000:]
    exported = [(span.name, span.trace_id.hex(), span.span_id.hex())
                for export in received for resource in export.resource_spans for scope in resource.scope_spans
                for span in scope.spans]
    names = {name for name, _, _ in exported}
    assert {"slack command /ops", "handle command /ops", "health run"} <= names
    assert any(name.startswith("check ") for name in names)
    services = {attribute.value.string_value for export in received for resource in export.resource_spans
                for attribute in resource.resource.attributes if attribute.key == "service.name"}
    assert services == {"opsbot-ci"}
    # A JSON log line written inside a span names that span and its trace.
    lines = [json.loads(line) for line in err.splitlines() if line.startswith("{")]
    assert lines, err
    ids = {(trace, span) for _, trace, span in exported}
    with_ids = [line for line in lines if "trace_id" in line]
    assert with_ids and all((line["trace_id"], line["span_id"]) in ids for line in with_ids)
