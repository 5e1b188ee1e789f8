"""Every request is audited across a store outage: its entry is written before the work ("requested"), its outcome after;
an outcome the store did not take is retried by the chores until it lands, or completed from the incident or run the
request made once the process that knew it is gone; a request refused because its entry could not be written is
logged at warning with what it was. Both backends; a real outage of each (a PostgreSQL database taken away and
given back, a SQLite file made read-only), and an outage injected at every write of a flow."""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any, cast

import aiohttp
import asyncpg
import pytest

from bot.audit import AuditEntry, AuditOutbox, Outcome
from bot.audit_trail import SETTLE_AFTER, UNKNOWN_AFTER, AuditTooSlow, begin
from bot.clock import ManualClock
from bot.errors import StoreUnavailable
from bot.incidents.models import DeclareStage, Incident
from bot.runs.models import ActionKind, ActionRun
from bot.scheduling.scheduler import chores
from bot.store import Store, create_store
from playground.payloads import sign, slash_command
from playground.slack_api import FakeSlack
from tests.conftest import PG_ADMIN_DSN, RunningBot, make_settings, start_bot
from tests.store_faults import FaultyStore

ALICE, OPS = "U0ALICE", "C0OPS"
T0 = datetime(2026, 11, 23, 3, 0, tzinfo=UTC)
DOWN = StoreUnavailable.user_text
CATALOG = """
incidents:
  announce_channel: C0INCIDENTS
services:
  api:
    environment: production
"""
# A flow: a read, an incident declared, another read, help (no store at all but its audit entry).
FLOW = ("/ops backups api", "/incident declare P1 API is down", "/ops history", "/ops help")
WRITES_OF_THE_FLOW = 2 + 19 + 2 + 2


@pytest.fixture
async def clock() -> ManualClock:
    return ManualClock(T0)


@pytest.fixture
async def bot(slack: FakeSlack, database_url: str, http: aiohttp.ClientSession, clock: ManualClock) -> AsyncIterator[RunningBot]:
    running, runner = await start_bot(make_settings(slack, database_url), CATALOG, slack, http, clock=clock)
    yield running
    await runner.cleanup()


async def ask(bot: RunningBot, typed: str) -> str:
    """A slash command as Alice typed it; everything she was told."""
    command, text = typed.split(" ", 1)
    url = bot.slack.response_url()
    body, content_type = slash_command(command, text, user=ALICE, channel=OPS, response_url=url)
    async with bot.http.post(f"{bot.url}/slack/events", data=body,
                             headers={"Content-Type": content_type, **sign(body)}) as response:
        assert response.status == 200
        told = json.dumps(await response.json(), ensure_ascii=False) if response.content_type == "application/json" else ""
    await bot.settle()
    return told + "".join(json.dumps(c.args, ensure_ascii=False) for c in bot.slack.of("response_url") if url.endswith(c.path))


def succeeded(told: str) -> bool:
    """What the person saw: an answer, not a refusal or an error."""
    return DOWN not in told and "Reference" not in told and "nothing was done" not in told


async def audited(store: Store, typed: str) -> list[AuditEntry]:
    command, text = typed.split(" ", 1)
    return [e for e in await store.audit_entries(limit=500) if (e.name, e.args) == (command, text)]


def refusals(records: list[logging.LogRecord]) -> list[str]:
    return [r.getMessage() for r in records if r.name == "bot.audit_trail" and r.levelno == logging.WARNING
            and "refused and not in the audit log" in r.getMessage()]


async def settle_everything(bot: RunningBot, clock: ManualClock) -> None:
    """The store is back: leases a cut-short request could not release lapse, and the chores run (the scheduler's own
    round may hold a declaration's lease for a moment, so until nothing is left to finish)."""
    clock.advance(bot.ctx.settings.lease_seconds + 1)
    for _ in range(50):
        await chores(bot.ctx)
        await bot.settle()
        if not await bot.ctx.store.unfinished_declarations() and len(bot.ctx.audit_outbox) == 0:
            return
        await asyncio.sleep(0.05)


# --- the store's part, on both backends ------------------------------------------------------------------------


async def test_an_entry_is_requested_then_finished_and_only_the_requests_own_outcome_replaces_an_inferred_one(
    store: Store
) -> None:
    entry_id = await store.record_audit(AuditEntry(at=T0, kind="command", name="/ops", outcome=Outcome.REQUESTED,
                                                   actor_id=ALICE, args="backups api"))
    assert [p.id for p in await store.requested_audits(T0 + timedelta(seconds=1))] == [entry_id]
    assert await store.requested_audits(T0) == []  # only those written before the bound
    assert await store.finish_audit(entry_id, Outcome.UNKNOWN, "inferred", None, inferred=True)
    assert not await store.finish_audit(entry_id, Outcome.ERROR, "inferred again", None, inferred=True)
    assert await store.finish_audit(entry_id, Outcome.OK, None, 12.5)  # the request's own outcome, landing late
    assert not await store.finish_audit(entry_id, Outcome.ERROR, "twice", 1.0)
    [found] = await store.audit_entries()
    assert (found.outcome, found.detail, found.duration_ms, found.inferred) == (Outcome.OK, None, 12.5, False)
    assert await store.requested_audits(T0 + timedelta(days=1)) == []


async def test_what_a_request_made_is_found_by_its_audit_id(store: Store) -> None:
    incident_id = await store.create_incident(Incident(title="x", severity="P1", declared_by=ALICE, declared_at=T0,
                                                       declare_stage=DeclareStage.CREATING, audit_id=7))
    run_id = await store.create_action(ActionRun(service="api", kind=ActionKind.RESTART, environment="production",
                                                 target="t", requested_by=ALICE, created_at=T0,
                                                 expires_at=T0 + timedelta(minutes=5), audit_id=8))
    made = {m.audit_id: (m.kind, m.id, m.state) for m in await store.made_by_requests([7, 8, 9])}
    assert made == {7: ("incident", incident_id, "creating"), 8: ("run", run_id, "draft")}
    assert [i.id for i in await store.unfinished_declarations()] == [incident_id]


# --- an outage injected at every write of a flow ------------------------------------------------------------


@pytest.mark.parametrize("down_at", range(1, WRITES_OF_THE_FLOW + 1, 2))
async def test_every_request_seen_to_succeed_has_its_outcome_after_an_outage_at_any_write(
    bot: RunningBot, clock: ManualClock, down_at: int, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    real = bot.ctx.store
    faulty = FaultyStore(real, down_at=down_at)
    bot.ctx.store = cast(Store, faulty)
    told = {typed: await ask(bot, typed) for typed in FLOW}
    faulty.recover()
    await settle_everything(bot, clock)

    for typed, answer in told.items():
        rows = await audited(real, typed)
        if succeeded(answer):
            assert [e.outcome for e in rows] == [Outcome.OK], (typed, answer, rows)
        elif rows:  # refused during the work: the entry says so
            assert [e.outcome for e in rows] == [Outcome.ERROR], (typed, rows)
        else:  # refused before its entry could be written: only the log keeps it, with what it was
            assert any(typed.split(" ", 1)[1] in line for line in refusals(caplog.records)), (typed, caplog.text)
    assert not [e for e in await real.audit_entries(limit=500) if e.outcome is Outcome.REQUESTED]
    assert len(bot.ctx.audit_outbox) == 0


async def test_an_outcome_lost_with_its_process_is_completed_from_the_incident_the_request_made(
    bot: RunningBot, clock: ManualClock
) -> None:
    real = bot.ctx.store
    faulty = FaultyStore(real)
    bot.ctx.store = cast(Store, faulty)
    faulty.down_at = 19  # the declaration is whole; its outcome is the write that fails
    told = await ask(bot, "/incident declare P1 API is down")
    assert "declared" in told and faulty.writes[-1] == "finish_audit"
    bot.ctx.audit_outbox = AuditOutbox()  # the process that held the outcome died; a new one runs the chores
    faulty.recover()
    await chores(bot.ctx)
    [entry] = await audited(real, "/incident declare P1 API is down")
    assert entry.outcome is Outcome.REQUESTED  # too fresh: its request may still be running somewhere

    clock.advance(SETTLE_AFTER.total_seconds() + 1)
    await chores(bot.ctx)
    [incident] = await real.incidents()
    [entry] = await audited(real, "/incident declare P1 API is down")
    assert (entry.outcome, entry.inferred) == (Outcome.OK, True)
    assert f"{incident.key} declared" in (entry.detail or "")


async def test_an_outcome_lost_with_nothing_to_read_it_from_becomes_unknown_not_requested_forever(
    bot: RunningBot, clock: ManualClock
) -> None:
    real = bot.ctx.store
    faulty = FaultyStore(real, down_at=2)  # /ops backups: its entry is written, its outcome is not
    bot.ctx.store = cast(Store, faulty)
    assert succeeded(await ask(bot, "/ops backups api"))
    bot.ctx.audit_outbox = AuditOutbox()
    faulty.recover()
    clock.advance(SETTLE_AFTER.total_seconds() + 1)
    await chores(bot.ctx)
    assert [e.outcome for e in await audited(real, "/ops backups api")] == [Outcome.REQUESTED]
    clock.advance(UNKNOWN_AFTER.total_seconds())
    await chores(bot.ctx)
    [entry] = await audited(real, "/ops backups api")
    assert (entry.outcome, entry.inferred) == (Outcome.UNKNOWN, True)


# --- a real outage of each backend ----------------------------------------------------------------------------


class Blocker:
    """Makes the real store unreachable and reachable again without losing what it holds."""

    def __init__(self, database_url: str, bot: RunningBot) -> None:
        self.database_url, self.bot = database_url, bot
        self.name = database_url.rsplit("/", 1)[1]
        self.away = f"{self.name}_away_{uuid.uuid4().hex[:6]}"

    async def block(self) -> None:
        if self.database_url.startswith("sqlite"):  # every write is refused with SQLITE_READONLY
            await self._sqlite("PRAGMA query_only = ON")
            return
        # The database goes away under the bot's pool (its connections closed) and comes back under the same name. The
        # pool may reconnect between the two statements: then the rename is refused (55006) and tried again.
        for _ in range(50):
            try:
                await _admin(f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{self.name}'",
                             f'ALTER DATABASE "{self.name}" RENAME TO "{self.away}"')
                return
            except asyncpg.ObjectInUseError:
                await asyncio.sleep(0.02)
        raise AssertionError(f"could not take {self.name} away")

    async def unblock(self) -> None:
        if self.database_url.startswith("sqlite"):
            await self._sqlite("PRAGMA query_only = OFF")
            return
        await _admin(f'ALTER DATABASE "{self.away}" RENAME TO "{self.name}"')

    async def _sqlite(self, sql: str) -> None:
        """On the store's own connection (the pragma is per connection), outside any transaction."""
        await self.bot.ctx.store._call(lambda conn: conn.execute(sql))  # type: ignore[attr-defined]


async def _admin(*statements: str) -> None:
    admin = await asyncpg.connect(PG_ADMIN_DSN)
    try:
        for sql in statements:
            await admin.execute(sql)
    finally:
        await admin.close()


async def test_every_request_seen_to_succeed_is_audited_across_a_real_store_outage(
    bot: RunningBot, database_url: str, clock: ManualClock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    blocker = Blocker(database_url, bot)
    before = await ask(bot, "/ops backups api")
    await blocker.block()
    try:
        during = await ask(bot, "/ops help x")
        during_read = await ask(bot, "/ops backups api")
    finally:
        await blocker.unblock()
    after = await ask(bot, "/incident declare P1 API is down")
    await settle_everything(bot, clock)

    assert succeeded(before) and succeeded(after)
    assert DOWN in during and DOWN in during_read  # nothing is done that cannot be audited
    store = bot.ctx.store
    assert [e.outcome for e in await audited(store, "/ops backups api")] == [Outcome.OK]  # the one before
    assert [e.outcome for e in await audited(store, "/incident declare P1 API is down")] == [Outcome.OK]
    assert await audited(store, "/ops help x") == []
    logged = refusals(caplog.records)
    assert any("/ops" in line and "'help x'" in line and ALICE in line for line in logged), logged
    assert not [r for r in caplog.records if r.exc_info or r.levelno >= logging.ERROR]


async def test_the_store_lost_right_after_slack_made_the_channel_leaves_a_whole_incident_and_its_audit_entry(
    bot: RunningBot, database_url: str, clock: ManualClock, caplog: pytest.LogCaptureFixture
) -> None:
    """The issue's case, with a real outage: the store goes away between Slack making the channel and the write of
    its id. Alice is told it is declared and will be finished; when the store is back the chores finish it, and the
    request's outcome, kept meanwhile, lands."""
    caplog.set_level(logging.INFO)
    blocker = Blocker(database_url, bot)
    bot.slack.before_answering("conversations.create", blocker.block)
    try:
        told = await ask(bot, "/incident declare P1 Checkout fails")
    finally:
        await blocker.unblock()
    assert "INC-1 declared" in told and "no need to declare it again" in told and DOWN not in told
    assert len(bot.ctx.audit_outbox) == 1  # its outcome waits for the store
    await settle_everything(bot, clock)

    [incident] = await bot.ctx.store.incidents()
    assert incident.declare_stage is DeclareStage.DECLARED and incident.channel_id is not None
    assert [c["id"] for c in bot.slack.channels.values() if c["name"] == incident.channel_name] == [incident.channel_id]
    assert incident.header_ts in bot.slack.pins.get(incident.channel_id, [])
    [entry] = await audited(bot.ctx.store, "/incident declare P1 Checkout fails")
    assert (entry.outcome, entry.inferred) == (Outcome.OK, False)
    assert len(bot.ctx.audit_outbox) == 0
    assert not [r for r in caplog.records if r.exc_info or r.levelno >= logging.ERROR]


async def test_a_pooled_connection_the_server_closed_is_an_outage_not_an_internal_error(pg_database: str) -> None:
    """asyncpg answers a query on an idle pooled connection the server terminated with ConnectionDoesNotExistError or
    InternalClientError ("another operation is in progress"), depending on timing: both are the store going away."""
    name = pg_database.rsplit("/", 1)[1]
    store = create_store(pg_database)
    await store.open()
    await store.migrate()
    try:
        for _ in range(10):
            await _admin(f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}'")
            for _ in range(3):  # each pooled connection may be one the server closed
                try:
                    await store.audit_entries()
                except StoreUnavailable:
                    pass  # said once per outage; a later query reconnects
    finally:
        await store.close()


class _SlowAudit:
    """The real store, whose audit writes wait until released: a store that answers, but later than Slack waits."""

    def __init__(self, real: Store) -> None:
        self.real, self.release = real, asyncio.Event()

    async def record_audit(self, entry: AuditEntry) -> int:
        await self.release.wait()
        return await self.real.record_audit(entry)


async def test_an_entry_the_store_takes_too_late_refuses_the_request_in_time_and_lands_as_rejected(store: Store) -> None:
    slow, outbox = _SlowAudit(store), AuditOutbox()
    ctx = cast("Any", SimpleNamespace(store=slow, audit_outbox=outbox))
    entry = AuditEntry(at=T0, kind="command", name="/ops", outcome=Outcome.REQUESTED, actor_id=ALICE,
                       channel_id=OPS, args="restart api")
    started = asyncio.get_running_loop().time()
    with pytest.raises(AuditTooSlow):
        await begin(ctx, entry, within=0.1)
    assert asyncio.get_running_loop().time() - started < 1, "refused within the budget, before Slack's 3 s"
    assert len(outbox) == 0
    slow.release.set()
    for _ in range(100):
        if len(outbox):
            break
        await asyncio.sleep(0.01)
    [late] = outbox.waiting()
    assert late.outcome is Outcome.REJECTED and "longer than 0.1 s" in (late.detail or "")
    [written] = [e for e in await store.audit_entries(limit=10) if e.args == "restart api"]
    assert written.outcome is Outcome.REQUESTED, "written late; the outbox turns it into rejected when the chores run"
