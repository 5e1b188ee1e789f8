"""The log-errors check against real logs: a podman container that prints error lines, the Kubernetes API double's
pod logs; and its "Last errors" in the health report, pressed through signed Slack requests."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import aiohttp
import pytest

from bot.catalog_loading import CatalogInvalid, parse_catalog
from bot.checks import CheckDeps, Status, log_errors
from bot.checks.containers import PROJECT_LABEL
from bot.checks.last_errors import LastErrors
from bot.checks.log_errors import LogErrorsCheck, LogLine
from bot.executors.docker import DockerTarget
from bot.executors.kubernetes import KubernetesTarget
from bot.health import CheckResult, HealthRun
from bot.views.health import health_report, last_errors_message
from playground.payloads import block_action, slash_command
from playground.slack_api import FakeSlack, _block_problem
from tests.checks import run as check_run
from tests.conftest import RunningBot, free_port, make_settings, start_bot
from tests.k8s_api import K8sApi

if TYPE_CHECKING:
    from tests.podman import Containers, Images, Podman

pytest_plugins = ["tests.podman"]  # its fixtures: podman, images, docker_client, containers

TOKEN = "k8s-logs-s3cret-token"
ALICE, CHANNEL = "U0ALICE", "C0OPS"


async def run(spec: dict, deps: CheckDeps) -> tuple[Status, str]:
    return await check_run({"type": "log-errors", **spec}, deps)


def noisy(containers: Containers, images: Images, base: str, errors: int, *, labels: dict[str, str] | None = None,
          ) -> str:
    """A container that logs `errors` error lines among ordinary ones, then stays up."""
    name = containers.name(base)
    script = "; ".join([f"echo 'ERROR: payment {i} failed'; echo 'served request {i}'" for i in range(errors)]
                       + ["echo 'all good'", "sleep 3600"])
    containers.run(name, images.v1, command=["sh", "-c", script], labels=labels)
    return name


async def logged(containers: Containers, name: str, text: str) -> None:
    for _ in range(100):
        if text in containers.get(name).logs().decode():
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"{name} never logged {text!r}")


# --- Docker ---------------------------------------------------------------------------------------------


async def test_a_few_error_lines_in_the_services_containers_are_ok(
        podman: Podman, images: Images, containers: Containers, http: aiohttp.ClientSession) -> None:
    project = containers.name("proj")
    for base in ("web", "worker"):
        await logged(containers, noisy(containers, images, base, 3, labels={PROJECT_LABEL: project}), "all good")
    target = DockerTarget(type="docker", labels={PROJECT_LABEL: project}, docker_host=podman.base_url)
    deps = CheckDeps(http=http, environ={}, service="web", target=target)
    assert await run({}, deps) == (Status.OK, "6 lines matching /error/ in the last 24 h")


async def test_more_lines_than_the_limits_warn_then_go_critical(
        podman: Podman, images: Images, containers: Containers, http: aiohttp.ClientSession) -> None:
    name = noisy(containers, images, "api", 14)
    await logged(containers, name, "all good")
    target = DockerTarget(type="docker", container="unrelated", docker_host=podman.base_url)
    deps = CheckDeps(http=http, environ={}, service="api", target=target)  # `container:` wins, on the target's host
    assert await run({"container": name}, deps) == (
        Status.WARNING, "14 lines matching /error/ in the last 24 h (limit 10)")
    spec = {"container": name, "pattern": r"payment \d+ FAILED", "lines": {"warning": 5, "critical": 12}}
    assert await run(spec, deps) == (Status.CRITICAL, (r"14 lines matching /payment \d+ FAILED/ in the last 24 h "
                                                      "(limit 12)"))
    assert await run({"container": name, "pattern": "panic"}, deps) == (
        Status.OK, "0 lines matching /panic/ in the last 24 h")


async def test_a_containers_whole_window_is_counted_beyond_a_megabyte(
        podman: Podman, images: Images, containers: Containers, http: aiohttp.ClientSession) -> None:
    name = containers.name("chatty")
    line = "ERROR request $i failed " + "x" * 40
    script = f'i=0; while [ $i -lt 20000 ]; do echo "{line}"; i=$((i+1)); done; echo done; sleep 3600'
    containers.run(name, images.v1, command=["sh", "-c", script])
    await logged(containers, name, "\ndone\n")
    deps = CheckDeps(http=http, environ={}, service="api", target=DockerTarget(
        type="docker", container=name, docker_host=podman.base_url))
    assert await run({}, deps) == (Status.CRITICAL, "20000 lines matching /error/ in the last 24 h (limit 100)")
    found = await LogErrorsCheck(type="log-errors").matches(deps)
    assert len(found.lines) == 20 and found.lines[-1].text.startswith("ERROR request 19999 failed")


async def test_a_missing_container_is_critical(podman: Podman, containers: Containers,
                                               http: aiohttp.ClientSession) -> None:
    target = DockerTarget(type="docker", container=containers.name("gone"), docker_host=podman.base_url)
    status, reason = await run({}, CheckDeps(http=http, environ={}, service="api", target=target))
    assert (status, reason) == (Status.CRITICAL, (f"cannot read the logs: No Docker container named "
                                                 f"{containers.name('gone')}."))


async def test_an_unreachable_docker_api_is_critical(tmp_path: Path, http: aiohttp.ClientSession) -> None:
    host = f"unix://{tmp_path}/no-docker.sock"
    target = DockerTarget(type="docker", container="api", docker_host=host)
    status, reason = await run({}, CheckDeps(http=http, environ={}, service="api", target=target))
    assert status is Status.CRITICAL
    assert reason.startswith(f"cannot read the logs: Could not look up container api: cannot reach Docker at {host}")


async def test_a_docker_api_that_never_answers_times_out(tmp_path: Path, http: aiohttp.ClientSession) -> None:
    held: list[asyncio.StreamWriter] = []

    async def accept(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held.append(writer)

    path = tmp_path / "silent.sock"
    server = await asyncio.start_unix_server(accept, str(path))
    target = DockerTarget(type="docker", container="api", docker_host=f"unix://{path}")
    try:
        status = await run({"timeout": 0.3}, CheckDeps(http=http, environ={}, service="api", target=target))
        assert status == (Status.ERROR, "timed out after 0.3 s")
    finally:
        for writer in held:
            writer.close()
        server.close()


# --- Kubernetes -----------------------------------------------------------------------------------------


@pytest.fixture
async def api() -> AsyncIterator[K8sApi]:
    double = K8sApi(token=TOKEN)
    await double.start()
    yield double
    await double.stop()


def k8s_deps(http: aiohttp.ClientSession, api: K8sApi) -> CheckDeps:
    target = KubernetesTarget(type="kubernetes", deployment="api", api_url=api.url, token_env="K8S_TOKEN")
    return CheckDeps(http=http, environ={"K8S_TOKEN": TOKEN}, service="api", target=target)


def write_logs(api: K8sApi, recent: int, old: int) -> list[str]:
    """`recent` error lines per pod within the last hour, `old` ones two days ago; returns the pod names."""
    now = api.now()
    pods = [pod["metadata"]["name"] for pod in api.pods("api")]
    for pod in pods:
        lines = [(now - timedelta(days=2, minutes=i), f"ERROR stale {i}") for i in range(old)]
        lines += [(now - timedelta(minutes=50 - i), f"level=error msg=\"timeout talking to db\" n={i}")
                  for i in range(recent)]
        lines += [(now - timedelta(minutes=1), "level=info msg=ok")]
        api.set_pod_log(pod, lines)
    return pods


async def test_pod_logs_over_the_window_are_counted(api: K8sApi, http: aiohttp.ClientSession) -> None:
    api.add_deployment("api", replicas=2)
    write_logs(api, recent=6, old=50)
    assert await run({}, k8s_deps(http, api)) == (Status.WARNING, ("12 lines matching /error/ in the last 24 h "
                                                                  "(limit 10)"))
    assert await run({"window_hours": 0.5}, k8s_deps(http, api)) == (
        Status.OK, "0 lines matching /error/ in the last 0.5 h")
    assert (await run({"window_hours": 72}, k8s_deps(http, api)))[0] is Status.CRITICAL  # 112 lines


async def test_a_busy_pods_whole_window_is_counted_and_its_newest_errors_kept(
        api: K8sApi, http: aiohttp.ClientSession) -> None:
    api.add_deployment("api", replicas=1)
    [pod] = [pod["metadata"]["name"] for pod in api.pods("api")]
    now = api.now()
    # About 2.5 MB over 20 hours: more than the 1 MB a bounded read used to keep, the errors spread all over it.
    busy = [(now - timedelta(hours=20) + timedelta(seconds=2 * i),
             f"{'level=error' if i % 100 == 0 else 'level=info'} msg=\"request {i}\" {'x' * 40}") for i in range(30_000)]
    api.set_pod_log(pod, busy)
    assert await run({}, k8s_deps(http, api)) == (Status.CRITICAL, ("300 lines matching /error/ in the last 24 h "
                                                                   "(limit 100)"))
    found = await LogErrorsCheck(type="log-errors").matches(k8s_deps(http, api))
    assert found.matched == 300 and not found.cut
    assert [line.text.split('"')[1] for line in found.lines] == [f"request {i}" for i in range(28_000, 30_000, 100)]


async def test_a_log_beyond_the_bound_is_read_in_part_and_says_so(
        api: K8sApi, http: aiohttp.ClientSession, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(log_errors, "MAX_BYTES", 5000)
    api.add_deployment("api", replicas=1)
    [pod] = [pod["metadata"]["name"] for pod in api.pods("api")]
    now = api.now()
    api.set_pod_log(pod, [(now - timedelta(hours=10) + timedelta(seconds=i), f"ERROR {i:04} {'x' * 50}")
                          for i in range(1000)])
    status, reason = await run({}, k8s_deps(http, api))
    assert status is Status.WARNING
    assert re.fullmatch(rf"≥ \d\d lines matching /error/ in the last 24 h \(only the first 5 kB of {pod}'s logs read; "
                        r"limit 10\)", reason), reason
    assert 5000 // 100 < int(reason.split()[1]) <= 5000 // 80


async def test_a_crash_looping_pods_last_run_is_read(api: K8sApi, http: aiohttp.ClientSession) -> None:
    api.add_deployment("api", replicas=1)
    [pod] = write_logs(api, recent=3, old=0)
    api.crash_loop(pod)
    assert await run({}, k8s_deps(http, api)) == (Status.OK, "3 lines matching /error/ in the last 24 h")


async def test_an_unreachable_kubernetes_api_is_critical(http: aiohttp.ClientSession) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    target = KubernetesTarget(type="kubernetes", deployment="api", api_url=url)
    status, reason = await run({}, CheckDeps(http=http, environ={}, service="api", target=target))
    assert status is Status.CRITICAL
    assert reason.startswith(f"cannot read the logs: Could not read deployment default/api: cannot reach the "
                             f"Kubernetes API at {url}")


# --- the catalog ----------------------------------------------------------------------------------------

CATALOG = """
services:
  api:
    environment: prod
{target}    checks:
      - {check}
"""
TARGET = "    target: {type: docker, container: api}\n"


@pytest.mark.parametrize(("target", "check", "message"), [
    (TARGET, "{type: log-errors, pattern: 'error(s'}", ("pattern: not a regular expression: missing ), "
                                                       "unterminated subpattern at position 5")),
    ("", "{type: log-errors}", "log-errors needs `container:` or the service's `target:` to know whose logs"),
    (TARGET, "{type: log-errors, window_hours: 0}", "window_hours: must be > 0"),
    (TARGET, "{type: log-errors, lines: {warning: 100, critical: 10}}", "must not be above critical"),
    (TARGET, "{type: log-errors, since: 24}", "since: unknown key"),
])
def test_catalog_refuses_bad_log_errors_checks(target: str, check: str, message: str) -> None:
    with pytest.raises(CatalogInvalid) as refused:
        parse_catalog(CATALOG.format(target=target, check=check))
    assert message in str(refused.value) and "services.api.checks[0]" in str(refused.value)


def test_catalog_takes_a_log_errors_check_naming_a_container_without_a_target() -> None:
    catalog = parse_catalog(CATALOG.format(target="", check="{type: log-errors, container: gitte-app}"))
    assert catalog.services["api"].checks[0].label == "log errors gitte-app"


# --- "Last errors" through Slack ------------------------------------------------------------------------


async def ops(bot: RunningBot, text: str) -> dict:
    url = bot.slack.response_url()
    body, content_type = slash_command("/ops", text, user=ALICE, channel=CHANNEL, response_url=url)
    assert (await bot.post(body, content_type)).status == 200
    await bot.settle()
    return [c.args for c in bot.slack.of("response_url") if url.endswith(c.path)][-1]


async def press(bot: RunningBot, action_id: str, value: str, *, menu: bool = False) -> list[dict]:
    """Click a button (or choose a menu option) of the report; what came back through its response_url."""
    url = bot.slack.response_url()
    chosen = {"selected_option": {"value": value, "text": {"type": "plain_text", "text": "x"}}} if menu else None
    body, content_type = block_action(action_id, value, user=ALICE, channel=CHANNEL, response_url=url,
                                      element_type="overflow" if menu else "button", chosen=chosen)
    assert (await bot.post(body, content_type)).status == 200
    await bot.settle()
    return [c.args for c in bot.slack.of("response_url") if url.endswith(c.path)]


def accessory_of(report: dict, service: str) -> dict:
    [section] = [b for b in report["blocks"] if b["type"] == "section" and f"*{service}*" in b["text"]["text"]]
    return section["accessory"]


async def test_last_errors_from_the_report_menu_shows_the_newest_matching_lines(
        api: K8sApi, slack: FakeSlack, database_url: str, http: aiohttp.ClientSession) -> None:
    api.add_deployment("api", replicas=2)
    pods = write_logs(api, recent=60, old=0)
    catalog = f"""
services:
  api:
    environment: prod
    target: {{type: kubernetes, deployment: api, api_url: "{api.url}", token_env: K8S_TOKEN}}
    checks:
      - {{type: log-errors, pattern: "timeout", lines: {{warning: 10, critical: 100}}}}
"""
    bot, runner = await start_bot(make_settings(slack, database_url), catalog, slack, http,
                                  environ={"K8S_TOKEN": TOKEN})
    try:
        report = await ops(bot, "health api")
        assert "120 lines matching /timeout/ in the last 24 h (limit 100)" in json.dumps(report)
        menu = accessory_of(report, "api")
        assert menu["type"] == "overflow" and menu["action_id"] == "health.more"
        assert [o["text"]["text"] for o in menu["options"]] == ["Restart…", "Last errors"]
        value = menu["options"][1]["value"]
        assert value == "errors:api:log errors"
        [answer] = await press(bot, "health.more", value, menu=True)
        assert answer.get("response_type", "ephemeral") == "ephemeral" and not answer.get("replace_original")
        text = answer["blocks"][0]["text"]["text"]
        assert text == "*api* · `log errors`: 120 lines matching /timeout/ in the last 24 h; the last 20:"
        block = answer["blocks"][1]["text"]["text"]
        shown = block.strip("`\n").splitlines()
        assert len(shown) == 20 and all("timeout talking to db" in line for line in shown)
        # Newest last: both pods' last ten lines (n=50…59), stamped by the log, named by pod.
        assert shown[-1].endswith(f'{pods[1]}: level=error msg="timeout talking to db" n=59')
        assert {line.rsplit("n=", 1)[1] for line in shown} == {str(n) for n in range(50, 60)}
        assert TOKEN not in json.dumps(answer)
    finally:
        await runner.cleanup()


async def test_last_errors_button_of_a_service_without_a_target(
        podman: Podman, images: Images, containers: Containers, slack: FakeSlack, database_url: str,
        http: aiohttp.ClientSession, monkeypatch: pytest.MonkeyPatch) -> None:
    name = noisy(containers, images, "worker", 3)
    await logged(containers, name, "all good")
    monkeypatch.setenv("DOCKER_HOST", podman.base_url)  # no target: the Docker host comes from the environment
    catalog = f"""
services:
  worker:
    environment: prod
    checks:
      - {{type: log-errors, container: {name}, lines: {{warning: 1, critical: 2}}}}
"""
    bot, runner = await start_bot(make_settings(slack, database_url), catalog, slack, http)
    try:
        report = await ops(bot, "health worker")
        button = accessory_of(report, "worker")
        assert button == {"type": "button", "action_id": "health.errors", "value": f"worker:log errors {name}",
                          "text": {"type": "plain_text", "text": "Last errors", "emoji": True}}
        [answer] = await press(bot, "health.errors", button["value"])
        assert answer["blocks"][0]["text"]["text"] == (f"*worker* · `log errors {name}`: 3 lines matching /error/ in "
                                                       "the last 24 h:")
        shown = answer["blocks"][1]["text"]["text"].strip("`\n").splitlines()
        assert [line.split(": ", 1)[1] for line in shown] == [f"ERROR: payment {i} failed" for i in range(3)]
        assert all(f" {name}: " in line for line in shown)
        [stale] = await press(bot, "health.errors", "worker:log errors gone")
        assert "This button is out of date; run `/ops health` again." in json.dumps(stale)
    finally:
        await runner.cleanup()


async def test_last_errors_that_take_too_long_time_out(
        slack: FakeSlack, database_url: str, http: aiohttp.ClientSession, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    held: list[asyncio.StreamWriter] = []

    async def accept(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held.append(writer)  # accepted, never answered

    path = tmp_path / "silent.sock"
    server = await asyncio.start_unix_server(accept, str(path))
    monkeypatch.setenv("DOCKER_HOST", f"unix://{path}")
    catalog = """
services:
  worker:
    environment: prod
    checks:
      - {type: log-errors, container: worker, timeout: 0.5}
"""
    bot, runner = await start_bot(make_settings(slack, database_url), catalog, slack, http)
    try:
        report = await ops(bot, "health worker")
        assert "timed out after 0.5 s" in json.dumps(report)
        button = accessory_of(report, "worker")
        [answer] = await press(bot, "health.errors", button["value"])
        assert answer["blocks"][0]["text"]["text"] == ("*worker* · `log errors worker`: reading the logs timed out "
                                                       "after 0.5 s.")
    finally:
        for writer in held:
            writer.close()
        server.close()
        await runner.cleanup()


# --- the views ------------------------------------------------------------------------------------------


def report_with(kinds: list[tuple[str, Status]]) -> list[dict]:
    now = datetime(2026, 11, 24, 1, 0, tzinfo=UTC)
    results = tuple(CheckResult("api", "prod", f"{kind} {i}", kind, status, "x", 1.0, now)
                    for i, (kind, status) in enumerate(kinds))
    run = HealthRun(scope=(), services=("api",), started_at=now, finished_at=now, results=results, id=1)
    return health_report(run, restartable={"api"}, offers={"api": ["a", "b", "c", "d"]}).blocks


def test_last_errors_joins_restart_and_runbooks_within_slacks_five_options() -> None:
    blocks = report_with([("log-errors", Status.CRITICAL), ("log-errors", Status.ERROR), ("http", Status.CRITICAL)])
    menu = blocks[1]["accessory"]
    assert [o["text"]["text"] for o in menu["options"]] == [
        "Restart…", "Last errors: log-errors 0", "Last errors: log-errors 1", "Run a…", "Run b…"]
    assert menu["options"][1]["value"] == "errors:api:log-errors 0"
    # A log-errors line that only warns offers nothing new: the service's menu stays as it was.
    plain = report_with([("log-errors", Status.WARNING), ("http", Status.CRITICAL)])[1]["accessory"]
    assert [o["value"] for o in plain["options"]] == ["restart:api", *(f"runbook:{r}" for r in "abcd")]


def test_last_errors_message_keeps_the_newest_lines_within_slacks_limits() -> None:
    check = LogErrorsCheck(type="log-errors", container="app")
    lines = [LogLine("app", f"2026-11-24T00:{i:02}:00", f"ERROR <{i}> ``` " + "x" * 400) for i in range(20)]
    message = last_errors_message(LastErrors("api", check, 250, lines))
    assert _block_problem(message.blocks) is None
    body = message.blocks[1]["text"]["text"]
    assert body.startswith("```\n") and body.endswith("\n```") and body.count("```") == 2
    assert "ERROR &lt;19&gt;" in body and "ERROR &lt;0&gt;" not in body  # the oldest go first
    kept = len(body.splitlines()) - 2
    assert message.blocks[0]["text"]["text"].endswith(f"250 lines matching /error/ in the last 24 h; the last {kept}:")


def test_last_errors_message_says_when_only_part_of_the_logs_was_read() -> None:
    check = LogErrorsCheck(type="log-errors", container="app")
    lines = [LogLine("app", "2026-11-24T00:00:00", "ERROR boom")]
    message = last_errors_message(LastErrors("api", check, 35, lines, "only the first 64 MB of app's logs read"))
    assert message.blocks[0]["text"]["text"] == (
        "*api* · `log errors app`: at least 35 lines matching /error/ in the last 24 h "
        "(only the first 64 MB of app's logs read); the last 1:")


def test_a_line_logged_in_parts_still_matches_once() -> None:
    # podman splits a line at its read buffer and stamps each part: the parts come back glued, stamps inside.
    check = LogErrorsCheck(type="log-errors", container="app")
    chunks = [b"2026-11-24T02:53:41Z ERR2026-11-24T02:53:41Z OR request 7 failed\n",
              b"2026-11-24T02:53:42Z ERROR re2026-11-24T02:53:42.123Z quest 8 failed\n",
              b"2026-11-24T02:53:43Z 2026-11-24T02:53:43Z INFO the app's own stamp stays\n",
              # Split after the line's first character: podman cuts wherever its 8 KB read ends (about one line
              # in 200 of the 20 000-line test), and now and then that is one character into a line.
              b"2026-11-24T02:53:44Z E2026-11-24T02:53:44.5Z RROR request 9 failed\n",
              # A runtime outside UTC stamps with its offset.
              b"2026-11-24T03:53:45+01:00 ERROR req2026-11-24T03:53:45.1+01:00 uest 10 failed\n"]
    scanned = check._read("app", iter(chunks), deadline=float("inf"))
    assert scanned.matched == 4
    assert [line.text for line in scanned.last] == ["ERROR request 7 failed", "ERROR request 8 failed",
                                                    "ERROR request 9 failed", "ERROR request 10 failed"]
