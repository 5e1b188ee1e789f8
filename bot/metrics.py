"""opsbot's own Prometheus metrics: one registry per Context, its instruments, and what is read at scrape time.

Not responsible for serving them (`bot.ops_endpoints`) nor for deciding anything: the core calls these at its
few central places (request path, chat port, health runner, run engine, approvals, locks, scheduler).
Labels are bounded by the code and the catalog (kinds, outcomes, Slack methods, severities): never a user,
channel, run or incident id.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Iterable
from datetime import datetime
from importlib.metadata import PackageNotFoundError, version
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Info, generate_latest
from slack_bolt.async_app import AsyncApp
from slack_bolt.request.async_request import AsyncBoltRequest
from slack_bolt.response import BoltResponse

from bot.errors import StoreUnavailable
from bot.runs.models import ActionState
from bot.tracing import NO_TRACER, Tracer, slack_span

if TYPE_CHECKING:
    from slack_sdk.socket_mode.aiohttp import SocketModeClient  # loaded only in Socket Mode (bot/app.py)

    from bot.store import Store

log = logging.getLogger(__name__)

# Slack wants an answer within 3 s: the buckets are dense around that limit so p99 near it is read precisely.
ACK_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 1.5, 2.0, 2.5, 3.0, 5.0)
CHECK_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0)
RUN_BUCKETS = (1.0, 5.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0, 7200.0)
WAIT_BUCKETS = (10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0, 7200.0, 86400.0)
LAG_BUCKETS = (0.1, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0)
ALERT_SOURCES = ("alertmanager", "grafana")  # the alerts intake comes later; its series exist from the start
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
_SLACK_METHOD = re.compile(r"[a-z]+(\.[A-Za-z]+)+")


def build_version() -> str:
    try:
        return version("opsbot")
    except PackageNotFoundError:
        return "unknown"


def slack_kind(body: object) -> str:
    """Which kind of Slack request a body is: command, action, view, event, options, shortcut or other."""
    if not isinstance(body, dict):
        return "other"
    if "command" in body:
        return "command"
    kind = body.get("type")
    return {
        "block_actions": "action", "interactive_message": "action", "view_submission": "view",
        "view_closed": "view", "event_callback": "event", "url_verification": "event", "block_suggestion": "options",
        "shortcut": "shortcut", "message_action": "shortcut",
    }.get(kind if isinstance(kind, str) else "", "other")


def api_method(url: str) -> str:
    """The Web API method a request URL names; a response_url (which carries tokens in its path) is one label."""
    last = url.rstrip("/").rsplit("/", 1)[-1]
    return last if _SLACK_METHOD.fullmatch(last) else "response_url"


class Metrics:
    """The instruments, on a registry of their own (so two Contexts in one process, as in tests, never mix)."""

    def __init__(self, build: str | None = None) -> None:
        self.registry = r = CollectorRegistry()
        self.slack_requests = Counter("opsbot_slack_requests", "Slack requests by kind and outcome",
                                      ["kind", "outcome"], registry=r)
        self.ack_seconds = Histogram("opsbot_slack_ack_seconds", "Time from a Slack request's arrival to its ack",
                                     ["kind"], buckets=ACK_BUCKETS, registry=r)
        self.api_calls = Counter("opsbot_slack_api_calls", "Slack Web API calls by method and outcome",
                                 ["method", "outcome"], registry=r)
        self.api_rate_limited = Counter("opsbot_slack_api_rate_limited", "Slack answers of 429 (rate limited), retried "
                                        "or not", ["method"], registry=r)
        self.socket_connected = Gauge("opsbot_socket_mode_connected", "1 while the Socket Mode connection is up "
                                      "(0 when down or in HTTP mode)", registry=r)
        self.socket_enabled = Gauge("opsbot_socket_mode_enabled", "1 when this replica talks to Slack over Socket Mode",
                                    registry=r)
        self.socket_reconnects = Counter("opsbot_socket_mode_reconnects", "Socket Mode reconnections after the first "
                                         "connection", registry=r)
        self.socket_outages = Counter("opsbot_socket_mode_outages", "Socket Mode outages that lasted longer than "
                                      "SOCKET_DOWN_SECONDS (each turned /readyz 503)", registry=r)
        self.check_seconds = Histogram("opsbot_check_duration_seconds", "Health check duration by kind", ["kind"],
                                       buckets=CHECK_BUCKETS, registry=r)
        self.check_results = Counter("opsbot_check_results", "Health check results by kind and status",
                                     ["kind", "status"], registry=r)
        self.runs = Counter("opsbot_runs", "Finished runs by kind and outcome", ["kind", "outcome"], registry=r)
        self.run_seconds = Histogram("opsbot_run_duration_seconds", "Run duration from start to end, by kind",
                                     ["kind"], buckets=RUN_BUCKETS, registry=r)
        self.runs_running = Gauge("opsbot_runs_running", "Runs in the running state (store-wide, read at scrape)",
                                  registry=r)
        self.oldest_run_seconds = Gauge("opsbot_run_oldest_running_seconds", "Age of the oldest running run (store-wide, "
                                        "read at scrape; 0 when none)", registry=r)
        self.approvals = Counter("opsbot_approvals", "Approval requests decided, by outcome (approved, denied, expired)",
                                 ["outcome"], registry=r)
        self.approval_wait = Histogram("opsbot_approval_wait_seconds", "Time an approval request waited for its "
                                       "outcome", ["outcome"], buckets=WAIT_BUCKETS, registry=r)
        self.approvals_pending = Gauge("opsbot_approvals_pending", "Approval requests waiting (store-wide, read at "
                                       "scrape)", registry=r)
        self.leases_held = Gauge("opsbot_leases_held", "Leases this replica holds now", registry=r)
        self.leases_lost = Counter("opsbot_leases_lost", "Leases this replica lost while working under them",
                                   registry=r)
        self.scheduler_lag = Histogram("opsbot_scheduler_lag_seconds", "How late a scheduled occurrence started after "
                                       "it was due", buckets=LAG_BUCKETS, registry=r)
        self.incidents_open = Gauge("opsbot_incidents_open", "Open incidents by severity (store-wide, read at scrape)",
                                    ["severity"], registry=r)
        self.store_up = Gauge("opsbot_store_up", "1 when the store answered the last scrape's reads", registry=r)
        self.alerts_received = Counter("opsbot_alerts_received", "Alerts received by source", ["source"], registry=r)
        self.alerts_deduplicated = Counter("opsbot_alerts_deduplicated", "Alerts received again and merged, by source",
                                           ["source"], registry=r)
        Info("opsbot_build", "The running opsbot's version", registry=r).info({"version": build or build_version()})
        for source in ALERT_SOURCES:
            self.alerts_received.labels(source)
            self.alerts_deduplicated.labels(source)
        for outcome in ("approved", "denied", "expired"):
            self.approvals.labels(outcome)
        self._severities: set[str] = set()

    def known_severities(self, names: Iterable[str]) -> None:
        """The catalog's severities: each gets a series at 0, so "no open incident" reads as 0, not as absent."""
        for name in names:
            self._severities.add(name)
            self.incidents_open.labels(name).set(0)

    # --- called by the core ---------------------------------------------------------------------------

    def request_done(self, kind: str, outcome: str, seconds: float) -> None:
        self.slack_requests.labels(kind, outcome).inc()
        self.ack_seconds.labels(kind).observe(seconds)

    def api_call_done(self, method: str, outcome: str) -> None:
        self.api_calls.labels(method, outcome).inc()

    def check_done(self, kind: str, status: str, seconds: float) -> None:
        self.check_results.labels(kind, status).inc()
        self.check_seconds.labels(kind).observe(seconds)

    def run_done(self, kind: str, outcome: str, started: datetime | None, ended: datetime) -> None:
        self.runs.labels(kind, outcome).inc()
        if started is not None:
            self.run_seconds.labels(kind).observe(max(0.0, (ended - started).total_seconds()))

    def approval_done(self, outcome: str, requested: datetime, decided: datetime) -> None:
        self.approvals.labels(outcome).inc()
        self.approval_wait.labels(outcome).observe(max(0.0, (decided - requested).total_seconds()))

    def watch_socket(self, client: SocketModeClient) -> None:
        """Follow a Socket Mode client: connected is read from it at scrape time; every connect after the first (the
        client reconnects by calling its own `connect`) is counted."""

        def connected() -> float:
            session = client.current_session
            return float(not client.closed and not client.stale and session is not None and not session.closed)

        self.socket_enabled.set(1)
        self.socket_connected.set_function(connected)
        connect = client.connect
        first = True

        async def counted() -> None:
            nonlocal first
            if not first:
                self.socket_reconnects.inc()
            first = False
            await connect()

        # slack_sdk offers no hook for a reconnect; its reconnect paths all call self.connect().
        client.connect = counted  # type: ignore[method-assign]

    # --- read at scrape time --------------------------------------------------------------------------

    async def refresh(self, store: Store, now: datetime) -> None:
        """Set the store-wide gauges from the store. A store that does not answer is `opsbot_store_up 0` and the
        gauges keep their last values: the scrape itself never fails."""
        try:
            running = await store.actions(states=[ActionState.RUNNING], limit=1000)
            pending = await store.actions(states=[ActionState.PENDING], limit=1000)
            incidents = await store.incidents(open_only=True, limit=1000)
        except StoreUnavailable:
            self.store_up.set(0)
            return
        self.store_up.set(1)
        self.runs_running.set(len(running))
        starts = [run.started_at for run in running if run.started_at is not None]
        self.oldest_run_seconds.set(max(((now - at).total_seconds() for at in starts), default=0.0))
        self.approvals_pending.set(len(pending))
        counts = dict.fromkeys(self._severities, 0)
        for incident in incidents:
            counts[incident.severity] = counts.get(incident.severity, 0) + 1
        for severity, count in counts.items():
            self.incidents_open.labels(severity).set(count)

    def exposition(self) -> bytes:
        return generate_latest(self.registry)


class MeasuredApp(AsyncApp):
    """Bolt's app, counting every request it dispatches and timing it to its ack: both doors (HTTP's
    `/slack/events` and the Socket Mode client) call `async_dispatch`, which returns once the listener acked."""

    def __init__(self, metrics: Metrics, *, tracer: Tracer = NO_TRACER, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.metrics, self.tracer = metrics, tracer

    async def async_dispatch(self, req: AsyncBoltRequest) -> BoltResponse:
        kind = slack_kind(req.body)
        if not self.tracer.on:
            return await self._measured(req, kind)
        # Bolt's global middleware runs one after another, not nested, so the span is opened here. It ends at the ack;
        # the listener's work runs in tasks started inside it, which carry it as their parent.
        name, attributes = slack_span(req.body, kind)
        with self.tracer.span(name, attributes) as span:
            response = await self._measured(req, kind)
            span.set({"http.response.status_code": response.status})
            return response

    async def _measured(self, req: AsyncBoltRequest, kind: str) -> BoltResponse:
        begun = time.perf_counter()
        try:
            response = await super().async_dispatch(req)
        except BaseException:
            self.metrics.request_done(kind, "error", time.perf_counter() - begun)
            raise
        outcome = "ok" if response.status < 400 else "error"
        self.metrics.request_done(kind, outcome, time.perf_counter() - begun)
        return response
