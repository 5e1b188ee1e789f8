"""The `opsbot` command: serve, check-config, schema, migrate, healthcheck, import.

Each failure is one clear line (or one line per catalog problem) and a non-zero exit, never a traceback.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import sys
import urllib.error
import urllib.request
from collections.abc import Mapping
from pathlib import Path

from bot.catalog_loading import CatalogInvalid, catalog_warnings, load_catalog, missing_envs
from bot.catalog_schema import schema_text
from bot.clock import SystemClock
from bot.errors import ConfigError, OpsbotError, StoreUnavailable
from bot.logs import LogFormat, configure_logging, formatter, log_secrets, redact
from bot.settings import Settings, StoreSettings, load_settings
from bot.store import create_store
from bot.tracing import start_tracing


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="opsbot", description="Slack chat-ops bot: runbooks as slash commands.")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    commands.add_parser("serve", help="run the bot (HTTP on $PORT, or Socket Mode when SLACK_APP_TOKEN is set)")
    dev = commands.add_parser("dev", help="try opsbot without Slack: the bot, a local Slack in the browser and demo services")
    dev.add_argument("--port", type=_port, default=os.environ.get("PLAYGROUND_PORT", "8765"),
                     help="the page's port (default 8765)")
    dev.add_argument("--config", type=Path, default=None,
                     help="your own catalog instead of the demo (default: $OPSBOT_CONFIG if set, else the demo)")
    check = commands.add_parser("check-config", help="validate the catalog and print each problem with its YAML path")
    check.add_argument("path", nargs="?", type=Path, help="catalog file (default: $OPSBOT_CONFIG or ./opsbot.yml)")
    commands.add_parser("schema", help="print the catalog's JSON Schema (for editors; the reference is docs/catalog.md)")
    commands.add_parser("migrate", help="apply pending store migrations to $DATABASE_URL")
    commands.add_parser("healthcheck", help="exit 0 when the local bot's /healthz answers 200 (for container HEALTHCHECK)")
    imports = commands.add_parser("import", help="read a Markdown runbook into a catalog `runbooks:` draft and a report "
                                  "(parses its commands, runs nothing)")
    imports.add_argument("runbook", type=Path, help="the Markdown runbook")
    imports.add_argument("--service", action="append", default=[], help="a catalog service its commands may name "
                         "(repeat; none: every name found is taken as a service to define)")
    imports.add_argument("-o", "--output", type=Path, default=None, help="write the draft here (default: stdout)")
    imports.add_argument("--merge", type=Path, default=None, metavar="CATALOG",
                         help="propose the draft's new elements into this catalog as a unified diff (the file is only "
                              "read); a re-import of the same runbook also shows what changed")
    postmortem = commands.add_parser("postmortem", help="print an incident's post-mortem (Markdown) from the store")
    postmortem.add_argument("key", help="the incident, e.g. INC-42")
    args = parser.parse_args(argv)

    try:
        if args.command == "serve":
            return _serve()
        if args.command == "dev":
            return _dev(args.port, args.config)
        if args.command == "check-config":
            return _check_config(args.path)
        if args.command == "schema":
            print(schema_text(), end="")
            return 0
        if args.command == "migrate":
            return _migrate()
        if args.command == "healthcheck":
            return _healthcheck()
        if args.command == "import":
            return _import(args.runbook, tuple(args.service), args.output, args.merge)
        if args.command == "postmortem":
            return _postmortem(args.key)
    except ConfigError as exc:
        for line in str(exc).splitlines():
            print(f"opsbot: {line}", file=sys.stderr)
        return 2
    except StoreUnavailable as exc:
        print(f"opsbot: {exc}", file=sys.stderr)
        return 1
    parser.print_help()
    return 2


def _serve() -> int:
    # Imported here, not at the top: the app loads Slack Bolt, the web server and every handler, which
    # check-config, migrate and healthcheck (run by the container every few seconds) do without.
    from bot.app import serve

    settings = load_settings(Settings)
    assert isinstance(settings, Settings)
    try:
        catalog = load_catalog(settings.opsbot_config)
    except CatalogInvalid as exc:
        print(exc, file=sys.stderr)
        print(f"opsbot: the catalog has {len(exc.problems)} problem(s); fix them and start again", file=sys.stderr)
        return 1
    secrets = log_secrets(settings, catalog, os.environ)
    handler = configure_logging(settings.log_level, secrets, fmt=settings.log_format)
    # Before the app is built: the instrumentations must wrap aiohttp, asyncpg and redis before sessions and pools open.
    tracing = start_tracing(settings.otel_exporter_otlp_endpoint, settings.otel_service_name)
    if tracing.trace_ids is not None:  # each log line then carries the trace and span it was written in
        handler.setFormatter(formatter(settings.log_format, secrets, trace_ids=tracing.trace_ids))
    try:
        asyncio.run(serve(settings, catalog, ready=lambda line: print(line, flush=True), tracer=tracing.tracer))
    except (ConfigError, StoreUnavailable):
        raise
    except Exception as exc:
        logging.getLogger("opsbot").debug("start-up failed", exc_info=True)
        print(f"opsbot: could not start: {type(exc).__name__}: {redact(str(exc), secrets)}", file=sys.stderr)
        return 1
    finally:
        tracing.shutdown()  # sends the spans still batched
    return 0


def _port(value: str) -> int:
    if not value.isdigit() or not 1 <= int(value) <= 65535:
        raise argparse.ArgumentTypeError(f"{value!r} is not a port number (1-65535)")
    return int(value)


def _dev(port: int, config: Path | None) -> int:
    # The playground (a local Slack and demo services) is a separate package only `opsbot dev` needs.
    from playground.dev import PortInUse
    from playground.dev import main as dev_main

    if config is None and os.environ.get("OPSBOT_CONFIG"):
        config = Path(os.environ["OPSBOT_CONFIG"])
    chosen = _dev_logging(os.environ)
    if isinstance(chosen, str):
        print(f"opsbot: {chosen}", file=sys.stderr)
        return 2
    configure_logging(*chosen)
    try:
        return dev_main(port, config)
    except CatalogInvalid as exc:
        return _catalog_problems(exc, config or Path("examples/demo.yml"))
    except PortInUse as exc:
        print(f"opsbot: {exc}", file=sys.stderr)
        return 1


_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")


def _dev_logging(environ: Mapping[str, str]) -> tuple[str, LogFormat] | str:
    """`opsbot dev`'s LOG_LEVEL (default WARNING: the page is the interface) and LOG_FORMAT, read as `serve` reads
    them; a value that is neither is said, naming the valid ones."""
    level = environ.get("LOG_LEVEL", "").strip().upper() or "WARNING"
    fmt = environ.get("LOG_FORMAT", "").strip().lower() or "text"
    if level not in _LEVELS:
        return f"LOG_LEVEL={environ['LOG_LEVEL']!r} is not a level: use {', '.join(_LEVELS)}"
    if fmt == "json":
        return level, "json"
    if fmt == "text":
        return level, "text"
    return f"LOG_FORMAT={environ['LOG_FORMAT']!r} is not a format: use text or json"


def _catalog_problems(exc: CatalogInvalid, path: Path) -> int:
    """What check-config says of a catalog it refuses, and its exit code."""
    print(exc)
    print(f"{len(exc.problems)} problem(s) in {path}")
    return 1


def _import(runbook: Path, services: tuple[str, ...], output: Path | None, merge: Path | None = None) -> int:
    """The draft to stdout (or `output`), the report to stderr: `opsbot import r.md > draft.yml` keeps them apart."""
    # Imported here, not at the top: the Markdown and bash parsers are for this command only (not the healthcheck).
    from bot.importing.draft import import_runbook, render, report

    try:
        text = runbook.read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        print(f"opsbot: cannot read {runbook}: {exc.strerror}", file=sys.stderr)
        return 1
    draft = import_runbook(text, runbook.name, services)
    if merge is not None:  # the draft into the catalog as a diff (`-o`: the diff's file)
        from bot.importing.proposal import propose

        print(report(draft), end="", file=sys.stderr)
        return propose(render(draft), draft.source, merge, output)
    from bot.importing.merge import finish_stamps, stamped

    # Stamped as `--merge` stamps what it adds: a draft adopted whole is brought up to date by a later re-import.
    text = finish_stamps(stamped(render(draft), draft.source))
    if output is None:
        print(text, end="")
    else:
        output.write_text(text, encoding="utf-8")
    print(report(draft), end="", file=sys.stderr)
    return 0


def _check_config(path: Path | None) -> int:
    path = path or Path(os.environ.get("OPSBOT_CONFIG", "opsbot.yml"))
    try:
        catalog = load_catalog(path)
    except CatalogInvalid as exc:
        return _catalog_problems(exc, path)
    unset = missing_envs(catalog.secret_envs(), os.environ)
    if unset:
        print(f"warning: {path}: {unset}")
    schedules = catalog.schedules
    unposted = [name for name in schedules.digests if not schedules.channels_of(name)]
    if unposted:
        print(f"warning: {path}: schedules: digests {', '.join(unposted)} have no channel, so they are not posted "
              "(set schedules.channel, or the digest's channels)")
    for warning in catalog_warnings(catalog):
        print(f"warning: {path}: {warning}")
    backups = sum(1 for s in catalog.services.values() if s.backup is not None and s.backup.schedule is not None)
    runbooks = sum(1 for r in catalog.runbooks.values() if r.schedule is not None)  # said only when there are some
    print(f"{path}: OK — {len(catalog.services)} services, {catalog.check_count()} checks, "
          f"{len(catalog.runbooks)} runbooks, {len(schedules.digests) - len(unposted)} digests posted, "
          f"{backups} scheduled backups" + (f", {runbooks} scheduled runbooks" if runbooks else ""))
    return 0


def _migrate() -> int:
    settings = load_settings(StoreSettings)

    async def run() -> list[int]:
        store = create_store(settings.database_url)
        await store.open()
        try:
            return await store.migrate()
        finally:
            await store.close()

    applied = asyncio.run(run())
    print(f"applied migrations {applied}" if applied else "the store is up to date")
    return 0


def _postmortem(key: str) -> int:
    # Imported here for the same reason as the app in _serve(): it loads the Slack SDK (through bot.context).
    from bot.incidents.documents import build, parse_key

    settings = load_settings(StoreSettings)
    path = Path(os.environ.get("OPSBOT_CONFIG", "opsbot.yml"))
    try:
        catalog = load_catalog(path)
        incident_id = parse_key(key)
    except (CatalogInvalid, OpsbotError) as exc:
        print(f"opsbot: {exc}", file=sys.stderr)
        return 1

    async def run() -> str | None:
        store = create_store(settings.database_url)
        await store.open()
        try:
            incident = await store.get_incident(incident_id)
            return await build(store, catalog, SystemClock(), incident) if incident else None
        finally:
            await store.close()

    text = asyncio.run(run())
    if text is None:
        print(f"opsbot: there is no incident {key.upper()} in {settings.database_url.split('@')[-1]}", file=sys.stderr)
        return 1
    print(text)
    return 0


def _healthcheck() -> int:
    port = os.environ.get("PORT", "3000")
    host = os.environ.get("HOST", "0.0.0.0")  # noqa: S104 - the server's own default, only compared here
    host = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host  # noqa: S104 - the same
    try:
        with urllib.request.urlopen(f"http://{host}:{port}/healthz", timeout=5) as response:
            print(json.loads(response.read()))
            return 0
    except urllib.error.HTTPError as exc:
        print(f"unhealthy: {exc.code} {exc.read()[:200].decode(errors='replace')}")
    except (urllib.error.URLError, OSError) as exc:
        print(f"unreachable: {exc}")
    return 1


if __name__ == "__main__":
    sys.exit(main())
