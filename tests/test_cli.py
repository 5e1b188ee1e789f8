"""The `opsbot` command as an operator runs it: the README's run command, check-config, migrate, healthcheck."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest

from playground.payloads import SIGNING_SECRET, sign, slash_command
from playground.slack_api import FakeSlack
from tests.conftest import free_port

ROOT = Path(__file__).resolve().parent.parent


def readme_commands() -> list[str]:
    block = re.search(r"```sh\n(.*?)```", (ROOT / "README.md").read_text(), re.DOTALL)
    assert block, "the README starts with a sh block holding the two commands"
    return [line for line in block.group(1).splitlines() if line and not line.startswith("#")]


def opsbot(*args: str, env: dict[str, str] | None = None, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "bot", *args], capture_output=True, text=True, env=env, cwd=cwd, timeout=60)


def base_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("SLACK_", "DATABASE_URL", "REDIS_URL", "OPSBOT_", "PORT", "LOG_LEVEL"))}
    env.update(extra)
    env["PYTHONPATH"] = str(ROOT)  # this checkout's code, whatever is installed
    return env


def test_readme_has_the_run_and_the_test_command_and_ci_runs_the_test_one() -> None:
    run, test = readme_commands()
    assert run == "pip install -e . && opsbot dev"  # tests/test_playground.py runs `opsbot dev` itself
    assert test == "scripts/test"
    assert "exec scripts/test" in (ROOT / ".ci" / "run").read_text()


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[str, subprocess.Popen[str], dict[str, str]]]:
    """`opsbot serve` on its embedded default with the example catalog and placeholder tokens, from a fresh
    directory, on a free port: what a user starts before connecting Slack."""
    port = free_port()
    env = base_env(SLACK_BOT_TOKEN="xoxb-replace-me", SLACK_SIGNING_SECRET="replace-me",
                   OPSBOT_CONFIG=str(ROOT / "opsbot.example.yml"), PORT=str(port), LOG_LEVEL="DEBUG")
    proc = subprocess.Popen([sys.executable, "-m", "bot", "serve"], cwd=tmp_path, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    yield f"http://127.0.0.1:{port}", proc, env
    if proc.poll() is None:
        proc.kill()
        proc.wait()


async def wait_healthy(url: str, proc: subprocess.Popen[str]) -> aiohttp.ClientResponse:
    async with aiohttp.ClientSession() as http:
        for _ in range(150):
            assert proc.poll() is None, proc.communicate()[1]
            try:
                async with http.get(f"{url}/healthz") as response:
                    await response.read()
                    return response
            except aiohttp.ClientConnectionError:
                await asyncio.sleep(0.1)
    raise AssertionError("opsbot serve never answered /healthz")


async def test_serve_answers_healthz_on_sqlite_and_stops_cleanly(served, tmp_path: Path) -> None:
    url, proc, env = served
    response = await wait_healthy(url, proc)
    assert response.status == 200
    assert (tmp_path / "data" / "opsbot.db").exists()

    healthcheck = subprocess.run([sys.executable, "-m", "bot", "healthcheck"], env=env, capture_output=True, text=True,
                                 timeout=30)
    assert healthcheck.returncode == 0, healthcheck.stdout

    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=20)
    assert proc.returncode == 0, err
    assert "opsbot is up on http://0.0.0.0:" in out and "store SQLite at data/opsbot.db" in out
    assert "Traceback" not in err


async def test_serve_logs_never_show_the_tokens(tmp_path: Path) -> None:
    fake = FakeSlack()
    await fake.start()
    port = free_port()
    token = "xoxb-1234-5678-SECRETSECRET"
    env = base_env(SLACK_BOT_TOKEN=token, SLACK_SIGNING_SECRET=SIGNING_SECRET, SLACK_API_URL=fake.api_url,
                   PORT=str(port), OPSBOT_CONFIG=str(ROOT / "opsbot.example.yml"), LOG_LEVEL="DEBUG")
    proc = subprocess.Popen([sys.executable, "-m", "bot", "serve"], cwd=tmp_path, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        await wait_healthy(f"http://127.0.0.1:{port}", proc)
        body, content_type = slash_command("/ops", "health host", user="U1", channel="C1", response_url=fake.response_url())
        async with aiohttp.ClientSession() as http, http.post(f"http://127.0.0.1:{port}/slack/events", data=body,
                             headers={"Content-Type": content_type, **sign(body)}) as response:
            assert response.status == 200
        await fake.wait_for("response_url", count=2)  # the "⏳ Running" note deleted, then the report: nothing in flight
        assert fake.of("auth.test"), "Bolt authorised with the token against the fake Slack"
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=20)
        await fake.stop()
    assert "DEBUG" in err
    assert token not in err and "SECRETSECRET" not in err and SIGNING_SECRET not in err


def test_serve_without_tokens_says_which_are_missing_in_one_line_each(tmp_path: Path) -> None:
    result = opsbot("serve", env=base_env(), cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        "opsbot: SLACK_BOT_TOKEN is not set: the Bot User OAuth Token, xoxb-… (Slack app → OAuth & Permissions)",
        "opsbot: SLACK_SIGNING_SECRET is not set: Slack app → Basic Information → Signing Secret",
    ]


def test_serve_with_a_bad_catalog_lists_its_problems(tmp_path: Path) -> None:
    catalog = tmp_path / "opsbot.yml"
    catalog.write_text("services:\n  api:\n    environment: prod\n    checks:\n      - {type: tcp, host: x, port: 0}\n")
    result = opsbot("serve", env=base_env(SLACK_BOT_TOKEN="xoxb-1", SLACK_SIGNING_SECRET="s", OPSBOT_CONFIG=str(catalog)),
                    cwd=tmp_path)
    assert result.returncode == 1
    assert f"{catalog}:5: services.api.checks[0].port: must be >= 1" in result.stderr
    assert "Traceback" not in result.stderr


def test_serve_with_an_unreachable_database_says_so(tmp_path: Path) -> None:
    env = base_env(SLACK_BOT_TOKEN="xoxb-1", SLACK_SIGNING_SECRET="s", OPSBOT_CONFIG=str(ROOT / "opsbot.example.yml"),
                   DATABASE_URL=f"postgresql://opsbot:pw@127.0.0.1:{free_port()}/opsbot", PORT=str(free_port()))
    result = opsbot("serve", env=env, cwd=tmp_path)
    assert result.returncode == 1
    assert result.stderr.startswith("opsbot: cannot connect to PostgreSQL")
    assert "Traceback" not in result.stderr and ":pw@" not in result.stderr


def test_check_config_ok_and_failing(tmp_path: Path) -> None:
    ok = opsbot("check-config", str(ROOT / "opsbot.example.yml"), env=base_env())
    assert ok.returncode == 0
    assert ok.stdout.splitlines()[-1].endswith("opsbot.example.yml: OK — 4 services, 5 checks, 0 runbooks, 0 digests posted, 0 "
                                               "scheduled backups")
    assert "environment variable OPSBOT_DB_URL is not set here" in ok.stdout

    bad = tmp_path / "bad.yml"
    bad.write_text("services:\n  api:\n    environment: prod\n    checks:\n      - {type: http, url: 'http://x/', timeout: -1}\n")
    result = opsbot("check-config", env=base_env(OPSBOT_CONFIG=str(bad)))
    assert result.returncode == 1
    assert result.stdout.splitlines() == [f"{bad}:5: services.api.checks[0].timeout: must be > 0", f"1 problem(s) in {bad}"]


def test_migrate_applies_once_then_reports_up_to_date(tmp_path: Path, pg_database: str) -> None:
    for url in (f"sqlite:///{tmp_path / 'm.db'}", pg_database):
        first = opsbot("migrate", env=base_env(DATABASE_URL=url))
        assert (first.returncode, first.stdout.strip()) == (
            0, "applied migrations [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14]"), first.stderr
        again = opsbot("migrate", env=base_env(DATABASE_URL=url))
        assert again.stdout.strip() == "the store is up to date"


def test_healthcheck_fails_when_nothing_answers() -> None:
    result = opsbot("healthcheck", env=base_env(PORT=str(free_port())))
    assert result.returncode == 1 and result.stdout.startswith("unreachable")


async def test_a_catalog_secret_that_breaks_a_client_never_reaches_the_log(tmp_path: Path) -> None:
    fake = FakeSlack()
    await fake.start()
    catalog = tmp_path / "opsbot.yml"
    catalog.write_text("services:\n  db:\n    environment: prod\n    checks:\n      - {type: postgres, dsn_env: BROKEN_DSN}\n")
    port = free_port()
    env = base_env(SLACK_BOT_TOKEN="xoxb-1-2", SLACK_SIGNING_SECRET=SIGNING_SECRET, SLACK_API_URL=fake.api_url, PORT=str(port),
                   OPSBOT_CONFIG=str(catalog), LOG_LEVEL="DEBUG",
                   BROKEN_DSN="postgresql://app:s3cr#et-pa55@127.0.0.1:5432/app")  # '#' unencoded: the URL does not parse
    proc = subprocess.Popen([sys.executable, "-m", "bot", "serve"], cwd=tmp_path, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        await wait_healthy(f"http://127.0.0.1:{port}", proc)
        body, content_type = slash_command("/ops", "health db", user="U1", channel="C1", response_url=fake.response_url())
        async with aiohttp.ClientSession() as http, http.post(
                f"http://127.0.0.1:{port}/slack/events", data=body,
                headers={"Content-Type": content_type, **sign(body)}) as response:
            assert response.status == 200
        _, report = await fake.wait_for("response_url", count=2)  # the "⏳ Running" note is deleted, then the report
        assert "check failed" in str(report.args) and "s3cr" not in str(report.args)
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=20)
        await fake.stop()
    assert "check db" not in err or "s3cr" not in err
    assert "s3cr" not in err and "pa55" not in err


@pytest.mark.parametrize(("environ", "chosen"), [
    ({}, ("WARNING", "text")),
    ({"LOG_FORMAT": "JSON ", "LOG_LEVEL": "info"}, ("INFO", "json")),
    ({"LOG_FORMAT": "", "LOG_LEVEL": ""}, ("WARNING", "text")),
    ({"LOG_FORMAT": "yaml"}, "LOG_FORMAT='yaml' is not a format: use text or json"),
    ({"LOG_LEVEL": "loud"}, "LOG_LEVEL='loud' is not a level: use DEBUG, INFO, WARNING, ERROR"),
])
def test_opsbot_dev_reads_log_format_and_level_as_serve_does(environ: dict[str, str], chosen: object) -> None:
    from bot.cli import _dev_logging

    assert _dev_logging(environ) == chosen


def test_opsbot_dev_refuses_an_unknown_log_format_before_starting_anything() -> None:
    done = opsbot("dev", "--port", str(free_port()), env=base_env(LOG_FORMAT="xml"))
    assert done.returncode == 2
    assert "LOG_FORMAT='xml' is not a format: use text or json" in done.stderr
