"""Alerts, the fast part: parsing both senders' payloads, authentication (bearer, Grafana's signature), routing,
the catalog's checks, idempotent storage on both backends, the message, and the webhook endpoints' answers through
a running bot with a fake Slack. The real Alertmanager is tests/test_alerts_alertmanager.py."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import pytest

from bot.alerts import auth
from bot.alerts.models import NewGroup, StoredAlert
from bot.alerts.payloads import Alert, AlertStatus, PayloadInvalid, Source, parse
from bot.alerts.routing import AlertSettings, render_parameters, route
from bot.catalog_loading import CatalogInvalid, parse_catalog
from bot.store import Store
from bot.views.alerts import ACK_ACTION, DECLARE_ACTION, HEALTH_ACTION, RUN_ACTION, alert_message
from playground.payloads import block_action
from playground.slack_api import FakeSlack
from tests.conftest import RunningBot, make_settings, start_bot

TOKEN = "alerts-token-0123456789"
CHANNEL = "C0ALERTS"
CATALOG = f"""
services:
  api:
    environment: production
    channel: C0APITEAM
runbooks:
  page:
    services: [api]
    parameters:
      host: {{type: string, pattern: "[a-z0-9.-]+"}}
    steps:
      - {{kind: notify, channel: {CHANNEL}, text: "look at {{{{ params.host }}}}"}}
alerts:
  channel: {CHANNEL}
  routes:
    - match: {{service: api}}
      match_re: {{alertname: "Api.*"}}
      service: api
      runbook: page
      parameters: {{host: "{{{{ labels.instance }}}}"}}
    - {{match: {{team: web}}, service: api, health: true}}
"""
START = datetime(2026, 12, 3, 10, 0, tzinfo=UTC)


def am_payload(*alerts: dict[str, Any], group: str = "ApiDown", status: str = "firing") -> dict[str, Any]:
    return {"version": "4", "groupKey": f'{{}}:{{alertname="{group}"}}', "status": status, "receiver": "opsbot",
            "groupLabels": {"alertname": group}, "commonLabels": {"alertname": group},
            "commonAnnotations": {}, "externalURL": "http://alertmanager.example:9093", "truncatedAlerts": 0,
            "alerts": list(alerts)}


def am_alert(fingerprint: str = "fp1", *, status: str = "firing", instance: str = "web-1", name: str = "ApiDown",
             starts: datetime = START, ends: datetime | None = None) -> dict[str, Any]:
    return {"status": status, "labels": {"alertname": name, "service": "api", "instance": instance},
            "annotations": {"summary": f"{name} on {instance}", "runbook_url": "https://wiki.example/api-down"},
            "startsAt": starts.isoformat(), "endsAt": (ends or datetime(1, 1, 1, tzinfo=UTC)).isoformat(),
            "generatorURL": "http://prometheus.example/graph?g0.expr=up", "fingerprint": fingerprint}


# --- parsing -------------------------------------------------------------------------------------------------------


def test_an_alertmanager_payload_becomes_one_delivery() -> None:
    body = json.dumps(am_payload(am_alert(), am_alert("fp2", instance="web-2"))).encode()
    delivery = parse(Source.ALERTMANAGER, body)
    assert delivery.group_key == '{}:{alertname="ApiDown"}' and delivery.group_labels == {"alertname": "ApiDown"}
    first = delivery.alerts[0]
    assert (first.fingerprint, first.status, first.starts_at, first.ends_at) == ("fp1", AlertStatus.FIRING, START, None)
    assert first.links == (("Source", "http://prometheus.example/graph?g0.expr=up"),
                           ("Runbook", "https://wiki.example/api-down"))
    assert first.summary == "ApiDown on web-1"


def test_bad_bodies_are_refused_naming_the_problem() -> None:
    with pytest.raises(PayloadInvalid, match="not JSON"):
        parse(Source.ALERTMANAGER, b"{nope")
    with pytest.raises(PayloadInvalid, match="not an object"):
        parse(Source.ALERTMANAGER, b"[1]")
    missing = am_payload(am_alert())
    del missing["version"]
    with pytest.raises(PayloadInvalid, match=r"Alertmanager webhook \(version 4\): version: Field required"):
        parse(Source.ALERTMANAGER, json.dumps(missing).encode())
    wrong = am_payload({**am_alert(), "startsAt": "yesterday"})
    with pytest.raises(PayloadInvalid, match=r"alerts\[0\]\.startsAt"):
        parse(Source.ALERTMANAGER, json.dumps(wrong).encode())


def test_a_grafana_payload_keeps_its_dashboard_links_and_drops_unsafe_ones() -> None:
    alert = {**am_alert(), "dashboardURL": "https://grafana.example/d/abc", "panelURL": "javascript:alert(1)",
             "silenceURL": "https://grafana.example/silence", "values": {"A": 1.0}}
    payload = {k: v for k, v in am_payload(alert).items() if k != "version"} | {"orgId": 1}
    delivery = parse(Source.GRAFANA, json.dumps(payload).encode())
    assert ("Dashboard", "https://grafana.example/d/abc") in delivery.alerts[0].links
    assert all(label != "Panel" for label, _ in delivery.alerts[0].links)


# --- authentication ------------------------------------------------------------------------------------------------


def test_bearer_tokens_are_compared_exactly() -> None:
    assert auth.bearer(TOKEN, f"Bearer {TOKEN}").allowed
    assert auth.bearer(TOKEN, f"Bearer {TOKEN}x") is auth.Verdict.WRONG
    assert auth.bearer(TOKEN, None) is auth.Verdict.MISSING


def test_grafana_signatures_are_checked_with_their_timestamp() -> None:
    body, now = b'{"alerts": []}', time.time()
    headers = auth.sign_grafana(TOKEN, body, int(now))
    signature, stamp = headers[auth.SIGNATURE_HEADER], headers[auth.TIMESTAMP_HEADER]
    assert auth.grafana_signature(TOKEN, body, signature, stamp, now).allowed
    assert auth.grafana_signature(TOKEN, body + b" ", signature, stamp, now) is auth.Verdict.WRONG
    assert auth.grafana_signature("another-secret-value", body, signature, stamp, now) is auth.Verdict.WRONG
    assert auth.grafana_signature(TOKEN, body, signature, stamp, now + 301) is auth.Verdict.STALE
    assert auth.grafana_signature(TOKEN, body, signature, None, now) is auth.Verdict.NO_TIMESTAMP


# --- routing and the catalog ---------------------------------------------------------------------------------------


def test_the_first_matching_route_wins_and_unrouted_alerts_go_to_the_default_channel() -> None:
    settings = AlertSettings.model_validate({"channel": CHANNEL, "routes": [
        {"match": {"service": "api"}, "match_re": {"alertname": "Api.*"}, "service": "api"},
        {"match": {"service": "api"}, "channel": "C0SECOND"}]})
    first = route(settings, {"service": "api", "alertname": "ApiDown"}, {"api": "C0APITEAM"})
    assert (first.index, first.channel, first.service) == (0, "C0APITEAM", "api")  # the service's channel
    # match_re matches the whole value: "XApiDown" does not start with Api.
    assert route(settings, {"service": "api", "alertname": "XApiDown"}, {}).channel == "C0SECOND"
    unrouted = route(settings, {"service": "db"}, {})
    assert (unrouted.index, unrouted.channel, unrouted.runbook) == (None, CHANNEL, None)


def test_parameters_are_rendered_from_labels_in_the_sandbox() -> None:
    rendered = render_parameters({"host": "{{ labels.instance }}"}, {"instance": "web-1"}, {})
    assert rendered == type(rendered)({"host": "web-1"}, None)
    missing = render_parameters({"host": "{{ labels.pod }}"}, {"instance": "web-1"}, {})
    assert missing.problem is not None and "host" in missing.problem and "pod" in missing.problem
    sneaky = render_parameters({"host": "{{ labels.__class__.__mro__ }}"}, {}, {})
    assert sneaky.problem is not None


def test_check_config_names_unknown_services_runbooks_and_parameters_at_their_path() -> None:
    broken = CATALOG.replace("service: api\n      runbook: page", "service: apu\n      runbook: pgae")
    with pytest.raises(CatalogInvalid) as raised:
        parse_catalog(broken)
    found = str(raised.value)
    assert "alerts.routes[0].service: unknown service 'apu'; did you mean `api`?" in found
    assert "alerts.routes[0].runbook: unknown runbook 'pgae'; did you mean `page`?" in found
    with pytest.raises(CatalogInvalid, match=r"alerts.routes\[0\].parameters.hots: unknown parameter"):
        parse_catalog(CATALOG.replace("{host: ", "{hots: "))
    with pytest.raises(CatalogInvalid, match=r"alerts.routes\[0\].match_re.alertname"):
        parse_catalog(CATALOG.replace('"Api.*"', '"Api(.*"'))


# --- storage: both backends ----------------------------------------------------------------------------------------


def _new(settings_channel: str = CHANNEL) -> NewGroup:
    return NewGroup(Source.ALERTMANAGER, "hash-1", "{}:{alertname=\"ApiDown\"}", {"alertname": "ApiDown"},
                    settings_channel, 0, "api", "page", {"host": "web-1"}, None, "http://am:9093", START)


def _alert(status: AlertStatus = AlertStatus.FIRING, starts: datetime = START, fingerprint: str = "fp1") -> Alert:
    ends = starts + timedelta(minutes=5) if status is AlertStatus.RESOLVED else None
    return Alert(fingerprint, status, {"alertname": "ApiDown", "instance": "web-1"}, {"summary": "down"}, starts, ends,
                 (("Source", "http://prom/graph"),))


async def test_a_delivery_seen_again_changes_nothing(store: Store) -> None:
    first = await store.record_delivery(_new(), [_alert()], START)
    again = await store.record_delivery(_new(), [_alert()], START + timedelta(seconds=30))
    assert (first.created, first.changes) == (True, 1)
    assert (again.created, again.changes, again.group.id) == (False, 0, first.group.id)
    assert again.group.version == first.group.version  # nothing to show: the message is not touched
    resolved = await store.record_delivery(_new(), [_alert(AlertStatus.RESOLVED)], START + timedelta(minutes=6))
    assert (resolved.changes, resolved.group.status) == (1, AlertStatus.RESOLVED)
    # A late, re-sent "firing" of the same alert does not bring it back.
    late = await store.record_delivery(_new(), [_alert()], START + timedelta(minutes=7))
    assert (late.changes, late.group.status) == (0, AlertStatus.RESOLVED)
    [stored] = await store.group_alerts(first.group.id)
    assert stored.alert.status is AlertStatus.RESOLVED and stored.alert.ends_at == START + timedelta(minutes=5)
    # The same alert firing again (a new startsAt) is a new state change.
    refired = await store.record_delivery(_new(), [_alert(starts=START + timedelta(hours=1))], START + timedelta(hours=1))
    assert (refired.changes, refired.group.status) == (1, AlertStatus.FIRING)


async def test_acknowledging_and_silencing_are_compare_and_set(store: Store) -> None:
    group = (await store.record_delivery(_new(), [_alert()], START)).group
    assert await store.acknowledge_group(group.id, "U1", START)
    assert not await store.acknowledge_group(group.id, "U2", START)
    assert await store.set_group_silence(group.id, "s-1", "U1", START + timedelta(hours=1), previous=None)
    assert not await store.set_group_silence(group.id, "s-2", "U2", START, previous=None)
    assert await store.set_group_silence(group.id, None, None, None, previous="s-1")
    await store.link_group(group.id, run_id=7)
    now = await store.alert_group(group.id)
    assert now is not None and (now.acked_by, now.silence_id, now.run_id) == ("U1", None, 7)


# --- the message ---------------------------------------------------------------------------------------------------


def _blocks_text(message: Any) -> str:
    return json.dumps(message.blocks)


async def test_the_message_shows_what_fires_and_what_resolved(store: Store) -> None:
    group = (await store.record_delivery(_new(), [_alert(), _alert(fingerprint="fp2")], START)).group
    two = [StoredAlert(_alert(), START),
           StoredAlert(Alert("fp2", AlertStatus.RESOLVED, {"alertname": "ApiDown", "instance": "web-2"},
                             {"summary": "web-2 down"}, START, START + timedelta(minutes=12), ()), START)]
    text = _blocks_text(alert_message(group, two))
    assert "*FIRING*" in text and "1 of 2 alerts firing" in text
    assert f"<!date^{int(START.timestamp())}^" in text and "10:00:00 UTC" in text
    assert "`instance=web-2`" in text and "lasted 12 min" in text  # the label that differs; the duration
    assert "<http://prom/graph|Source>" in text
    actions = next(b for b in alert_message(group, two).blocks if b["type"] == "actions")
    assert [e["action_id"] for e in actions["elements"]] == [
        "alert.ack", "alert.silence.1h", "alert.silence.4h", "alert.silence.until", "alert.health", "alert.run",
        "alert.declare"]
    resolved = [StoredAlert(Alert("fp1", AlertStatus.RESOLVED, {}, {}, START, START + timedelta(hours=1), ()), START)]
    assert "*RESOLVED*" in _blocks_text(alert_message(group, resolved))


# --- the endpoints, through a running bot --------------------------------------------------------------------------


@pytest.fixture
async def bot(slack: FakeSlack, http: aiohttp.ClientSession, tmp_path: Any) -> AsyncIterator[RunningBot]:
    settings = make_settings(slack, f"sqlite:///{tmp_path / 'opsbot.db'}", opsbot_alerts_token=TOKEN)
    running, runner = await start_bot(settings, CATALOG, slack, http)
    yield running
    await running.settle()
    await runner.cleanup()


async def _post(bot: RunningBot, path: str, body: bytes, headers: dict[str, str]) -> tuple[int, str]:
    async with bot.http.post(f"{bot.url}{path}", data=body, headers={"Content-Type": "application/json", **headers}) as r:
        return r.status, (await r.json())["message"]


async def test_refused_requests_are_answered_and_store_nothing(bot: RunningBot) -> None:
    body = json.dumps(am_payload(am_alert())).encode()
    assert (await _post(bot, "/alerts/alertmanager", body, {}))[0] == 401
    status, said = await _post(bot, "/alerts/alertmanager", body, {"Authorization": "Bearer wrong-token-0123456789"})
    assert (status, said) == (401, "unauthorized: wrong credentials")
    bearer = {"Authorization": f"Bearer {TOKEN}"}
    status, said = await _post(bot, "/alerts/alertmanager", b"{not json", bearer)
    assert status == 400 and "not JSON" in said
    status, said = await _post(bot, "/alerts/alertmanager", json.dumps({"version": "4"}).encode(), bearer)
    assert status == 400 and "groupKey: Field required" in said
    big = b'{"pad": "' + b"x" * (1024 * 1024) + b'"}'
    assert (await _post(bot, "/alerts/alertmanager", big, bearer))[0] == 413

    async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: the read itself stops at 1 MiB
        for _ in range(20):
            yield b"x" * 65536

    async with bot.http.post(f"{bot.url}/alerts/alertmanager", data=chunks(), headers=bearer) as response:
        assert response.status == 413
    stale = auth.sign_grafana(TOKEN, body, int(time.time()) - 600)
    status, said = await _post(bot, "/alerts/grafana", body, stale)
    assert (status, said) == (401, f"unauthorized: {auth.Verdict.STALE.value}")
    await bot.settle()
    assert bot.slack.of("chat.postMessage") == [] and await bot.ctx.store.alert_group(1) is None


async def test_no_token_means_alerts_are_not_configured(slack: FakeSlack, http: aiohttp.ClientSession, tmp_path: Any) -> None:
    running, runner = await start_bot(make_settings(slack, f"sqlite:///{tmp_path / 'x.db'}"), CATALOG, slack, http)
    try:
        status, said = await _post(running, "/alerts/alertmanager", b"{}", {"Authorization": f"Bearer {TOKEN}"})
        assert (status, said) == (404, "alerts are not configured on this opsbot: OPSBOT_ALERTS_TOKEN is not set")
    finally:
        await runner.cleanup()


async def test_a_signed_grafana_delivery_posts_one_message_and_a_duplicate_posts_nothing(bot: RunningBot) -> None:
    payload = {k: v for k, v in am_payload(am_alert(name="ApiLatency")).items() if k != "version"}
    body = json.dumps(payload).encode()
    status, said = await _post(bot, "/alerts/grafana", body, auth.sign_grafana(TOKEN, body, int(time.time())))
    assert (status, said) == (200, "recorded: 1 new state change(s) in alert group 1")
    status, said = await _post(bot, "/alerts/grafana", body, {"Authorization": f"Bearer {TOKEN}"})
    assert (status, said) == (200, "recorded: nothing new (a repeated delivery) in alert group 1")
    [post] = bot.slack.of("chat.postMessage")
    assert post.args["channel"] == "C0APITEAM"  # routed to the api service; its channel
    assert bot.slack.of("chat.update") == []


async def test_acknowledge_and_run_buttons(bot: RunningBot) -> None:
    body = json.dumps(am_payload(am_alert(name="ApiDown"))).encode()
    assert (await _post(bot, "/alerts/alertmanager", body, {"Authorization": f"Bearer {TOKEN}"}))[0] == 200
    assert len(bot.slack.of("chat.postMessage")) == 1
    opened = await bot.ctx.store.alert_group(1)
    assert opened is not None and opened.message_ts is not None
    ts = opened.message_ts
    click, kind = block_action(ACK_ACTION, "1", user="U0ONCALL", channel="C0APITEAM", response_url=bot.slack.response_url())
    await bot.post(click, kind)
    await bot.settle()
    [update] = await bot.slack.wait_for("chat.update")
    assert update.args["ts"] == ts and "Acknowledged by <@U0ONCALL>" in json.dumps(update.args["blocks"])
    click, kind = block_action(RUN_ACTION, "1", user="U0ONCALL", channel="C0APITEAM", response_url=bot.slack.response_url())
    await bot.post(click, kind)
    await bot.settle()
    group = await bot.ctx.store.alert_group(1)
    assert group is not None and group.run_id is not None
    run = await bot.ctx.store.get_action(group.run_id)
    assert run is not None and run.params["values"] == {"host": "web-1"}
    assert any("Run #" in json.dumps(u.args["blocks"]) for u in bot.slack.of("chat.update"))
    assert len(bot.slack.of("chat.postMessage")) == 1  # one message, updated in place


async def test_health_on_arrival_the_health_button_and_declare(bot: RunningBot) -> None:
    alert = am_alert(name="WebSlow")
    alert["labels"] = {"alertname": "WebSlow", "team": "web", "instance": "web-1"}
    body = json.dumps(am_payload(alert, group="WebSlow")).encode()
    assert (await _post(bot, "/alerts/alertmanager", body, {"Authorization": f"Bearer {TOKEN}"}))[0] == 200
    await bot.settle()
    group = await bot.ctx.store.alert_group(1)
    assert group is not None and group.health_run_id is not None  # `health: true`: checked on arrival, and shown
    [update] = await bot.slack.wait_for("chat.update")
    assert "Health of *api*: it has no checks" in json.dumps(update.args["blocks"])
    click, kind = block_action(HEALTH_ACTION, "1", user="U0ONCALL", channel="C0APITEAM",
                               response_url=bot.slack.response_url())
    await bot.post(click, kind)
    await bot.settle()
    assert len(bot.slack.of("chat.postMessage")) == 2  # the alert's message, then the health report in its channel
    click, kind = block_action(DECLARE_ACTION, "1", user="U0ONCALL", channel="C0APITEAM",
                               response_url=bot.slack.response_url())
    await bot.post(click, kind)
    await bot.settle()
    [opened] = bot.slack.of("views.open")
    form = json.dumps(opened.args["view"])
    assert "WebSlow on web-1" in form  # the title from the alert's summary


async def test_a_bad_parameter_value_disables_the_run_button_with_the_reason(bot: RunningBot) -> None:
    body = json.dumps(am_payload(am_alert(instance="Web_1!"))).encode()
    assert (await _post(bot, "/alerts/alertmanager", body, {"Authorization": f"Bearer {TOKEN}"}))[0] == 200
    [post] = bot.slack.of("chat.postMessage")
    blocks = json.dumps(post.args["blocks"])
    assert "Run `page` is unavailable: host:" in blocks and RUN_ACTION not in blocks
